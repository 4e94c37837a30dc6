"""Real data for the performance benchmarks: the Friends pairs and their general-tower vectors.

``rows(split)`` reads ``../shared/data/mqd-friends/{split}.jsonl.gz``; ``query_vectors(split,
limit)`` embeds the unique queries of a split with the app's general tower (the vectors recall
searches) and caches them under ``~/.cache/confidant-bench`` (``CONFIDANT_BENCH_CACHE``), since
embedding 30k sentences takes minutes on 2 cores and the vectors never change.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from bench.common import friends_dir


def rows(split: str = "train", path: Path | None = None) -> list[dict]:
    with gzip.open(path or friends_dir() / f"{split}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def cache_dir() -> Path:
    return Path(os.environ.get("CONFIDANT_BENCH_CACHE", Path.home() / ".cache" / "confidant-bench"))


def query_vectors(split: str, limit: int | None = None) -> np.ndarray:
    """Unit general-tower vectors of the split's unique queries (file order), at most ``limit``."""
    texts = list(dict.fromkeys(r["query"].strip() for r in rows(split)))[:limit]
    from assistant.settings import load_settings
    from profiles.encoding import Encoders

    settings = load_settings()
    key = hashlib.sha256("\n".join([str(settings.embedder_path), *texts]).encode()).hexdigest()[:16]
    path = cache_dir() / f"queries-{split}-{len(texts)}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = Encoders(settings.embedder_path, settings.data_dir / "encoder").queries(texts, progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
