"""Would bf16 batches keep speaker detection? float32 against bf16 autocast on real dialogues.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.precision [--responder rachel_green] [--limit 1500]
        [--out docs/results/perf/precision.json]

bf16 is what would make imports 2-3x faster (``bench.ingest``, docs/performance.md §3); this
says what it would cost. One frozen-transformer pass over R's train and test dialogues in each
precision, a questioner head trained on each (same seed and query clusters), then speaker
detection as ``bench.speaker_id`` scores it (nearest prototype, balanced accuracy) in three set-ups:

- ``float32``: everything in float32 (what ships);
- ``mixed``: prototypes from bf16 vectors (a bf16 import) but messages probed in float32 (a
  turn's single texts) with the float32 head: what turning bf16 on for batches alone gave;
- ``bf16``: head trained on bf16 states, prototypes and probes all in bf16.

Also: the cosine between the two precisions' vectors of the same dialogue, the margin between
the nearest and second-nearest prototype (how close the people are), and the transformer's
speed in each precision.
"""

from __future__ import annotations

import time
import numpy as np

from bench import common
from bench.speaker_id import balanced_accuracy, load_rows, prototypes, to_dialogue

RESPONDER = "rachel_green"


def frozen(encoder, dialogues, bf16: bool):
    started = time.perf_counter()
    general, states, ids = encoder.frozen_pass(dialogues, batch_size=64, bf16=bf16)
    tokens = sum(len(i) for i in ids)
    return general, states, ids, tokens / (time.perf_counter() - started)


def detect(train_vectors, train_labels, test_vectors, test_labels) -> tuple[float, np.ndarray, np.ndarray]:
    classes, protos = prototypes(train_vectors, train_labels)
    scores = test_vectors @ protos.T
    guesses = np.argmax(scores, axis=1)
    top2 = np.sort(scores, axis=1)[:, -2:]
    accuracy = balanced_accuracy(test_labels, [classes[i] for i in guesses])
    return accuracy, guesses, top2[:, 1] - top2[:, 0]


def run(responder: str, limit: int | None, seed: int) -> dict:
    from assistant.settings import load_settings
    from profiles.clusters import cluster_queries
    from profiles.contrastive import train_questioner
    from profiles.tower import QuestionerEncoder, load_general_tower

    train = [r for r in load_rows(common.friends_dir(), "train") if r["responder"] == responder][:limit]
    known = {r["querier"] for r in train}  # detection can only name people it has prototypes of
    test = [r for r in load_rows(common.friends_dir(), "test") if r["responder"] == responder and r["querier"] in known]
    train_d, test_d = [to_dialogue(r) for r in train], [to_dialogue(r) for r in test]
    train_q, test_q = [r["querier"] for r in train], [r["querier"] for r in test]
    model_path = load_settings().embedder_path
    general = load_general_tower(model_path)
    probe = QuestionerEncoder(model_path, general=general, tap_layer=4)
    clusters = cluster_queries(general.encode([d.query for d in train_d], normalize_embeddings=True), seed=seed)

    passes, heads, speed = {}, {}, {}
    for name, bf16 in (("float32", False), ("bf16", True)):
        g_train, s_train, ids_train, speed[name] = frozen(probe, train_d, bf16)
        g_test, s_test, _, _ = frozen(probe, test_d, bf16)
        passes[name] = (g_train, s_train, g_test, s_test)
        heads[name], _ = train_questioner(train_d, train_q, cluster_labels=clusters.labels, model_path=model_path,
                                          general=general, cached=(s_train, ids_train), seed=seed, progress=False)

    def dual(head, g, s):
        return heads[head].combine(g, heads[head].embed_states(s))

    f32, b16 = passes["float32"], passes["bf16"]
    vectors = {  # set-up -> (prototype source vectors, probe vectors)
        "float32": (dual("float32", f32[0], f32[1]), dual("float32", f32[2], f32[3])),
        "mixed": (dual("float32", b16[0], b16[1]), dual("float32", f32[2], f32[3])),
        "bf16": (dual("bf16", b16[0], b16[1]), dual("bf16", b16[2], b16[3])),
    }
    results, guesses = {}, {}
    for setup, (train_vectors, test_vectors) in vectors.items():
        accuracy, guesses[setup], margin = detect(train_vectors, train_q, test_vectors, test_q)
        results[setup] = {"balanced_accuracy": round(accuracy, 4),
                          "same_guess_as_float32": None if setup == "float32" else
                          round(float(np.mean(guesses[setup] == guesses["float32"])), 4),
                          "prototype_margin_p50": round(float(np.median(margin)), 5)}
    same_head = dual("float32", b16[2], b16[3])  # the float32 head over bf16 states vs over float32 states
    cosine = np.sum(same_head * vectors["float32"][1], axis=1)
    general_cosine = np.sum(b16[2] * f32[2], axis=1)
    return {
        "responder": responder, "train": len(train), "test": len(test), "queriers": len(set(train_q)),
        "chance": round(1 / len(set(train_q)), 4), "setups": results,
        "cosine_bf16_vs_float32": {"dual_p50": round(float(np.median(cosine)), 5),
                                   "dual_p5": round(float(np.percentile(cosine, 5)), 5),
                                   "general_p50": round(float(np.median(general_cosine)), 6)},
        "transformer_tokens_per_s": {k: round(v) for k, v in speed.items()},
        "speedup_bf16": round(speed["bf16"] / speed["float32"], 2),
    }


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--responder", default=RESPONDER)
    parser.add_argument("--limit", type=int, default=1500, help="train dialogues (the head's training set)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return common.finish(run(args.responder, args.limit, args.seed), args.out, "bench.precision", argv)


if __name__ == "__main__":
    main()
