"""How the per-turn costs outside the model grow with memory size and with the number of people.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.growth [--sizes 10000 100000 1000000] [--people 10 100 1000]
        [--turns 20] [--out docs/results/perf/growth.json]
    .venv/bin/python -m bench.growth --plot docs/results/perf/growth.json docs/results/perf/recall.json \\
        --png docs/results/perf/growth.png

For each configuration (every size with 100 people, and the middle size with each ``--people``)
a real store is filled directly through SQL: N complete exchanges with real Friends texts,
synthetic vectors (``bench.recall``), owners drawn with Zipf weights, query clusters set. Then,
for ``--turns`` askers drawn by activity, the calls one turn makes are timed one by one:
``memory_ids`` (the asker's exchange ids, SQL), ``recall`` (``recall_memories``: two encodes,
the ids, the index search, ranking), ``remember`` (``Memory.remember`` after a reply) and
``detect`` (who is speaking, against every prototype). Start-up cost: opening the memory (the
vectors read from SQLite and the saved index read back). RSS is this process's after opening.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from bench import common, friends
from bench.recall import owners, stored

PEOPLE_AT_SIZE = 100


def fill(store, n: int, people: int, rng: np.random.Generator, real_limit: int | None = None) -> None:
    """N complete exchanges of ``people`` people, with vectors and query clusters, via SQL."""
    from assistant.store import bulk
    from profiles.clusters import cluster_queries

    texts = friends.rows("train")
    real = friends.query_vectors("train", real_limit)
    vectors = stored(real, n, rng)
    owner, _ = owners(n, people, rng)
    sample = rng.choice(n, size=min(n, 20_000), replace=False)
    clusters = cluster_queries(vectors[sample], k=8, seed=0)
    labels = clusters.assign(vectors)
    batches = [range(start, min(n, start + 50_000)) for start in range(0, n, 50_000)]
    exchanges = ([(i + 1, int(owner[i]) + 1, texts[i % len(texts)]["query"], texts[i % len(texts)]["response"],
                   int(labels[i])) for i in rows] for rows in batches)
    vector_rows = ([(i + 1, vectors[i], vectors[i]) for i in rows] for rows in batches)
    bulk.load(store, people, exchanges, vector_rows, clusters.centroids, np.bincount(labels, minlength=clusters.k))


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def configuration(n: int, people: int, turns: int, real_limit: int | None = None, seed: int = 0) -> dict:
    from assistant.memory.memory import Memory
    from assistant.memory.recall import recall_memories
    from assistant.settings import load_settings
    from assistant.store.store import GenerationStats, Store
    from assistant.store.turn_log import TurnLog
    from assistant.people.identification import detect

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        store = Store(settings.database_path)
        with common.Clock() as filling:
            fill(store, n, people, rng, real_limit)
        memory = Memory(settings, store)
        memory.refresh_prototypes()
        memory.encoders.general
        with common.Clock() as first_open:
            memory.index  # builds the index from the store and saves it
        memory = Memory(settings, store)
        with common.Clock() as reopen:
            memory.index  # start-up: vectors from SQLite, the saved index read back
        memory.refresh_prototypes()  # as after each person's first turn since start-up (that one reads their vectors)
        weights = 1.0 / np.arange(1, people + 1)
        weights /= weights.sum()  # askers drawn by activity, like the owners (bench.recall.owners)
        messages = [r["query"] for r in friends.rows("test")]
        costs = {"memory_ids": [], "recall": [], "remember": [], "detect": []}
        for turn in range(turns):
            person = store.profile(int(rng.choice(people, p=weights)) + 1)
            text = messages[turn % len(messages)]
            costs["memory_ids"].append(timed(lambda: store.memory_ids(person.id)))
            costs["recall"].append(timed(lambda: recall_memories(memory, person, text, [], settings)))
            exchange_id = TurnLog(store).begin_exchange(person.id, person.id, text)
            exchange = TurnLog(store).complete_exchange(exchange_id, "ok", GenerationStats("local", "bench", 1.0, 1, 1.0))
            costs["remember"].append(timed(lambda: memory.remember(exchange)))
            costs["detect"].append(timed(lambda: detect(*memory.parts()[:3], text, [], 0.5, 0.05)))
        rss = psutil.Process().memory_info().rss / 2**20
        store.close()
    return {"stored": n, "people": people, "index_kind": memory.index.kind,
            "per_turn_ms": {name: common.stats(values) for name, values in costs.items()},
            "fill": filling.describe(), "index_build": first_open.describe(), "open_memory": reopen.describe(),
            "rss_mb": round(rss, 1)}


def run(sizes, people_counts, turns: int, real_limit: int | None = None) -> dict:
    middle = sorted(sizes)[len(sizes) // 2]
    configs = [(n, PEOPLE_AT_SIZE) for n in sizes] + [(middle, p) for p in people_counts if p != PEOPLE_AT_SIZE]
    return {"turns": turns, "results": [configuration(n, p, turns, real_limit) for n, p in configs]}


def plot(growth: Path, recall: Path | None, png: Path) -> None:
    """Per-turn costs against memory size (log-log) and against people, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = json.loads(growth.read_text())["results"]
    fig, (by_size, by_people) = plt.subplots(1, 2, figsize=(11, 4.2))
    at_size = sorted((r for r in rows if r["people"] == PEOPLE_AT_SIZE), key=lambda r: r["stored"])
    for name in ("memory_ids", "recall", "remember", "detect"):
        by_size.plot([r["stored"] for r in at_size], [r["per_turn_ms"][name]["p50"] for r in at_size], "o-", label=name)
    if recall is not None:
        found = [r for r in json.loads(recall.read_text())["results"] if r["people"] == PEOPLE_AT_SIZE]
        found.sort(key=lambda r: r["stored"])
        by_size.plot([r["stored"] for r in found], [r["latency_ms"]["p95"] for r in found], "s--", label="index search p95")
    by_size.set(xscale="log", yscale="log", xlabel="stored exchanges", ylabel="ms per turn (p50)",
                title=f"by memory size ({PEOPLE_AT_SIZE} people)")
    middle = [r for r in rows if r["stored"] == sorted({r["stored"] for r in rows})[len({r['stored'] for r in rows}) // 2]]
    middle.sort(key=lambda r: r["people"])
    for name in ("memory_ids", "recall", "remember", "detect"):
        by_people.plot([r["people"] for r in middle], [r["per_turn_ms"][name]["p50"] for r in middle], "o-", label=name)
    by_people.set(xscale="log", yscale="log", xlabel="people", ylabel="ms per turn (p50)",
                  title=f"by people ({middle[0]['stored'] if middle else '?'} exchanges)")
    for axes in (by_size, by_people):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main(argv=None) -> dict | None:
    parser = common.parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--people", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--real", type=int, default=None, help="use at most this many real vectors (smoke tests)")
    parser.add_argument("--plot", type=Path, nargs="+", metavar="JSON", help="draw growth.json [recall.json] instead")
    parser.add_argument("--png", type=Path, default=Path("docs/results/perf/growth.png"))
    args = parser.parse_args(argv)
    if args.plot:
        plot(args.plot[0], args.plot[1] if len(args.plot) > 1 else None, args.png)
        return None
    return common.finish(run(args.sizes, args.people, args.turns, args.real), args.out, __spec__.name, argv)


if __name__ == "__main__":
    main()
