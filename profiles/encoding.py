"""The towers the app encodes with: the general tower always, the questioner tower once trained.

Contract:
- ``Encoders(embedder_path, encoder_dir)`` loads the general tower lazily (once per process and
  path) and the trained questioner encoder from ``encoder_dir`` if one has been saved there.
- ``queries(texts)`` gives general-tower vectors of messages (WHAT is asked); a single message's
  vector is kept for the next few calls (the turn, its recall and its remembering ask for it).
- ``dialogues(dialogues)`` gives the vectors that tell people apart (WHO is asking): the dual
  embedding when a questioner tower is trained, else the general tower over the dialogue text,
  so identification and prototypes work (less well) before the first training.
- ``version`` names what produced the dialogue vectors; vectors from another version are stale.
- Batches (an import, a re-encoding) run the transformer on all threads, in bf16 if ``bf16``;
  a turn's single texts in float32 on one thread (``profiles.tower.batch_precision``).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from profiles.dialogue import Dialogue, dialogue_from, dialogue_text  # noqa: F401 (dialogue_from: callers' import)
from profiles.tower import QuestionerEncoder, batch_precision, load_general_tower

RECENT = 16  # messages whose general-tower vectors are kept: a turn asks for its message's more than once
_general_cache: dict[str, object] = {}
_general_lock = threading.Lock()


def shared_general_tower(path: Path):
    with _general_lock:
        key = str(path)
        if key not in _general_cache:
            _general_cache[key] = load_general_tower(path)
        return _general_cache[key]


class Encoders:
    def __init__(self, embedder_path: Path, encoder_dir: Path, bf16: bool = False):
        self.embedder_path = Path(embedder_path)
        self.bf16 = bf16
        self.encoder_dir = Path(encoder_dir)
        self._questioner: QuestionerEncoder | None = None
        self._loaded_version: str | None = None
        self._meta: dict | None = None
        self._meta_stamp: int | None = None
        self._single = lru_cache(maxsize=RECENT)(self._encode_single)  # the last messages' vectors

    @property
    def general(self):
        return shared_general_tower(self.embedder_path)

    @property
    def meta(self) -> dict | None:
        """The saved encoder's metadata (when trained, on how much), or None before training.

        Read again only when the file changes (a retrain here or in another process): this is
        asked on every turn, and a stat is all it should cost.
        """
        path = self.encoder_dir / "meta.json"
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if stamp != self._meta_stamp:
            self._meta, self._meta_stamp = json.loads(path.read_text()), stamp
        return self._meta

    @property
    def version(self) -> str:
        meta = self.meta
        return f"questioner:{meta['trained_at']}" if meta else "general"

    @property
    def questioner(self) -> QuestionerEncoder | None:
        version = self.version
        if version == "general":
            return None
        if self._questioner is None or self._loaded_version != version:
            self._questioner = QuestionerEncoder.load(self.encoder_dir, self.embedder_path, general=self.general)
            self._loaded_version = version
        return self._questioner

    def queries(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if len(texts) == 1:  # one turn embeds its message up to three times: once is enough
            return self._single(texts[0])[None].copy()
        return self._encode_general(texts, batch_size, progress)

    def _encode_single(self, text: str) -> np.ndarray:
        return self._encode_general([text])[0]

    def _encode_general(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        with batch_precision(len(texts), self.bf16):
            vectors = self.general.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                          show_progress_bar=progress)
        return np.asarray(vectors, dtype=np.float32)

    def dialogues(self, dialogues: Sequence[Dialogue], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        encoder = self.questioner
        if encoder is None:
            return self.queries([dialogue_text(d) for d in dialogues], batch_size, progress)
        return encoder.encode_dual(list(dialogues), batch_size, bf16=self.bf16)
