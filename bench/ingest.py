"""Import throughput: Friends exchanges per second through ``Memory.ingest`` (embed, cluster,
index, store), as ``confidant import FILE --format mqd --responder NAME`` does it.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.ingest [--responder rachel_green] [--limit N] [--trained]
        [--out docs/results/perf/ingest.json]

A fresh data dir per run; the general tower is loaded before the clock starts (start-up is
``bench.startup``'s business). Reported: exchanges/s over the wall clock and per CPU-second of
this process (the machine is shared: ``machine.load_average`` says how much), the time in each
stage (wrapped calls), and the tokens the transformer reads per exchange, which bound the rate:
every exchange is one pass over its query and one over its dialogue (query, reply, context).
``--trained`` first trains the questioner tower on the same file in another data dir and imports
with it (dialogue vectors then come from the dual tower), the state of a store after ``confidant
train``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench import common
from bench.common import Clock, Steps

RESPONDER = "rachel_green"


def memory_at(data_dir: Path):
    from assistant.memory.memory import Memory
    from assistant.settings import load_settings
    from assistant.store.store import Store

    settings = load_settings(data_dir=data_dir)
    return Memory(settings, Store(settings.database_path))


def load_batch(responder: str, limit: int | None, path: Path | None = None):
    from assistant.people.importers import ImportBatch, mqd

    batch = mqd.parse(path or common.friends_dir() / "train.jsonl.gz", responder)
    if limit is None:
        return batch
    kept, left = [], limit
    for conversation in batch.conversations:
        if left <= 0:
            break
        conversation.exchanges = conversation.exchanges[:left]
        left -= len(conversation.exchanges)
        kept.append(conversation)
    return ImportBatch(batch.source, kept, batch.problems)


def instrument(memory) -> Steps:
    import assistant.memory.memory as memory_module

    steps = Steps()
    steps.wrap(memory, "encode", "embed")
    steps.wrap(memory_module, "store_batch", "store")
    steps.wrap(memory.vectors, "put", "store")
    steps.wrap(memory.clusters, "recluster", "cluster")
    steps.wrap(memory.vectors, "assign_clusters", "cluster")
    steps.wrap(memory.prototypes, "refresh", "prototypes")
    steps.wrap(memory, "save", "index")
    return steps


def token_counts(memory, batch) -> dict:
    """Mean tokens per exchange that the transformer reads for the query and the dialogue."""
    from profiles.tower import Dialogue, dialogue_text

    tokenizer = memory.encoders.general.tokenizer
    limit = memory.encoders.general.max_seq_length
    exchanges = batch.exchanges
    query = [min(limit, len(ids)) for ids in tokenizer([e.query for e in exchanges])["input_ids"]]
    texts = [dialogue_text(Dialogue(e.query, e.context, e.reply)) for e in exchanges]
    dialogue = [min(limit, len(ids)) for ids in tokenizer(texts)["input_ids"]]
    return {"query": round(float(np.mean(query)), 1), "dialogue": round(float(np.mean(dialogue)), 1)}


def trained_encoder(batch, into: Path) -> None:
    """Train the questioner tower on ``batch`` in a scratch dir and copy it to ``into``/encoder."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-train-") as scratch:
        memory = memory_at(Path(scratch))
        memory.ingest(batch, progress=False)
        memory.train(seed=0, progress=False)
        shutil.copytree(Path(scratch) / "encoder", into / "encoder")


def run(responder: str, limit: int | None, trained: bool = False, path: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        data_dir = Path(tmp) / "data"
        with Clock() as parsing:
            batch = load_batch(responder, limit, path)
        if trained:
            trained_encoder(batch, data_dir)
        memory = memory_at(data_dir)
        memory.encoders.general  # loaded before the clock: start-up is not import throughput
        memory.encoders.questioner
        tokens = token_counts(memory, batch)
        steps = instrument(memory)
        with Clock() as clock:
            ids = memory.ingest(batch, progress=False)
        stages = {name: round(ms / 1000, 2) for name, ms in steps.take().items()}
        n = len(ids)
        rate = n / clock.wall
        embed = stages.get("embed", 0.0)
        return {
            "responder": responder, "exchanges": n, "people": len(batch.people), "trained_encoder": trained,
            "batch_bf16": memory.encoders.bf16,
            "parse": parsing.describe(), "ingest": clock.describe(),
            "exchanges_per_s": round(rate, 1),
            "exchanges_per_cpu_s": round(n / clock.cpu, 1) if clock.cpu else None,
            "stages_s": stages,
            "tokens_per_exchange": tokens,
            # what bounds the rate: the transformer's token throughput, and the rate if it cost nothing
            "transformer_tokens_per_s": round(n * (tokens["query"] + tokens["dialogue"]) / embed) if embed else None,
            "exchanges_per_s_without_embedding": round(n / (clock.wall - embed), 1) if clock.wall > embed else None,
            "targets": {"exchanges_per_s_min": 400, "met": rate >= 400},
        }


def file_order_encode(memory, queries, dialogues, chunk: int = 256):
    """How ``Memory.encode`` worked before: chunks in file order (the A/B baseline)."""
    parts = [(memory.encoders.queries(queries[s : s + chunk]), memory.encoders.dialogues(dialogues[s : s + chunk]))
             for s in range(0, len(queries), chunk)]
    return np.vstack([q for q, _ in parts]), np.vstack([d for _, d in parts])


def encode_ab(responder: str, n: int, rounds: int = 2) -> dict:
    """The embedding step of an import three ways, in rotating order on the same exchanges:
    ``before`` (file-order chunks, float32), ``sorted`` (length-sorted chunks, float32) and
    ``sorted_bf16`` (what ``Memory.encode`` does on a CPU with native bf16)."""
    from profiles.tower import Dialogue, native_bf16

    batch = load_batch(responder, n)
    queries = [e.query for e in batch.exchanges]
    dialogues = [Dialogue(e.query, e.context, e.reply) for e in batch.exchanges]
    variants = {  # name -> (bf16, embedding step)
        "before": (False, lambda memory: file_order_encode(memory, queries, dialogues)),
        "sorted": (False, lambda memory: memory.encode(queries, dialogues, progress=False)),
    }
    if native_bf16():
        variants["sorted_bf16"] = (True, variants["sorted"][1])
    with tempfile.TemporaryDirectory(prefix="bench-ingest-ab-") as tmp:
        memory = memory_at(Path(tmp))
        memory.encoders.general
        times, vectors = {name: [] for name in variants}, {}
        for i in range(rounds * len(variants)):
            name = list(variants)[(i + i // len(variants)) % len(variants)]  # rotate who goes first
            memory.encoders.bf16, step = variants[name]
            with Clock() as clock:
                vectors[name] = step(memory)
            times[name].append(clock.wall)
    cosine = {name: round(float(min(np.min(np.sum(a * b, axis=1)) for a, b in zip(vectors[name], vectors["before"]))), 6)
              for name in variants if name != "before"}
    return {"exchanges": len(queries),
            "seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
            "exchanges_per_s": {k: round(len(queries) / float(np.median(v)), 1) for k, v in times.items()},
            "speedup_vs_before": {k: common.ratio(times["before"], times[k]) for k in variants if k != "before"},
            "min_cosine_to_before": cosine}


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--responder", default=RESPONDER)
    parser.add_argument("--limit", type=int, help="import only the first N exchanges")
    parser.add_argument("--trained", action="store_true", help="import with a trained questioner tower")
    parser.add_argument("--file", type=Path, help="an MQD file other than the Friends train file")
    parser.add_argument("--ab", type=int, metavar="N", help="instead: time the embedding of N exchanges as "
                        "before (file order), length-sorted, and length-sorted in bf16, in rotation")
    args = parser.parse_args(argv)
    result = encode_ab(args.responder, args.ab) if args.ab else run(args.responder, args.limit, args.trained, args.file)
    versions = common.versions("torch", "sentence-transformers", "faiss-cpu")
    return common.finish({**result, "versions": versions}, args.out, __spec__.name, argv)


if __name__ == "__main__":
    main()
