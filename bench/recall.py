"""Recall latency and quality of the memory index against exact search, by memory size and people.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.recall [--sizes 10000 100000 1000000] [--people 10 100 1000]
        [--queries 300] [--out docs/results/perf/recall.json]

What is measured, per stored size N and number of people P:
- the stored vectors: the general-tower vectors of the Friends train queries (real, ~30k), topped
  up to N with synthetic ones, each a real vector plus Gaussian noise (cosine ~0.8 to it) so the
  filler keeps the real data's clusters rather than being uniform noise;
- owners: exchange i belongs to one of P people drawn with Zipf weights (a few people talk a
  lot, most a little), so the top person owns ~1/H(P) of memory and the smallest a sliver;
- queries: real vectors of Friends *test* queries, each asked by a person drawn by activity;
- ``MemoryIndex.search(q, k=50, among=that person's ids)``, the call recall makes, timed one by
  one (p50/p95 ms of wall time, and of the searching thread's CPU time, which other programs on
  this shared machine do not inflate), and its top 10 against the exact top 10 among the same
  ids (recall@10);
- the unrestricted search too, and the index's build time and kind.
"""

from __future__ import annotations

import time

import numpy as np

from assistant.memory.index import MemoryIndex
from bench import common, friends

K = 50  # recall_candidates: what recall asks the index for
TOP = 10


def synthetic(real: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.75) -> np.ndarray:
    """n unit vectors, each a random real vector plus isotropic noise of norm ``noise``."""
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        jitter = rng.standard_normal((size, real.shape[1]), dtype=np.float32) * (noise / np.sqrt(real.shape[1]))
        block = real[rng.integers(0, len(real), size)] + jitter
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def stored(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if n <= len(real):
        return real[:n].copy()
    return np.vstack([real, synthetic(real, n - len(real), rng)])


def owners(n: int, people: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(owner of each exchange, each person's share) with Zipf(1) weights over people."""
    weights = 1.0 / np.arange(1, people + 1)
    weights /= weights.sum()
    return rng.choice(people, size=n, p=weights), weights


def measure(index: MemoryIndex, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray,
            owner: np.ndarray | None, weights: np.ndarray | None, rng: np.random.Generator) -> dict:
    """Latency and recall@10 of ``queries``, restricted to an asking person's ids when ``owner``.
    All searches are timed first and checked after, so that the exact search's matrix products
    (and the BLAS threads they wake) never run between two timed searches."""
    asked = [np.arange(len(ids))] * len(queries)
    if owner is not None:  # askers by activity, among the people who own at least one exchange
        rows_of = {p: np.flatnonzero(owner == p) for p in range(len(weights))}
        people = [p for p, rows in rows_of.items() if len(rows)]
        chance = weights[people] / weights[people].sum()
        asked = [rows_of[people[i]] for i in rng.choice(len(people), size=len(queries), p=chance)]
    times, cpu, found = [], [], []
    for query, rows in zip(queries, asked):
        among = None if owner is None else ids[rows]
        start, start_cpu = time.perf_counter(), time.thread_time()
        hits = index.search(query, K, among=among)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)  # the search's own work, without waiting for a core
        found.append({h for h, _ in hits[:TOP]})
    recalls = []
    for query, rows, hits in zip(queries, asked, found):
        exact = ids[rows[np.argsort(-(vectors[rows] @ query))[:TOP]]]
        recalls.append(len(hits & set(exact.tolist())) / len(exact))
    shares = [len(rows) / len(ids) for rows in asked]
    return {"latency_ms": common.stats(times), "cpu_ms": common.stats(cpu), "recall_at_10": round(float(np.mean(recalls)), 4),
            "asker_share": {"median": round(float(np.median(shares)), 5), "min": round(float(np.min(shares)), 5)}}


def run(sizes, people_counts, n_queries: int, real_limit: int | None = None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    real = friends.query_vectors("train", real_limit)
    queries = friends.query_vectors("test", n_queries)
    results = []
    for n in sizes:
        vectors = stored(real, n, rng)
        ids = np.arange(1, n + 1, dtype=np.int64)
        with common.Clock() as clock:
            index = MemoryIndex.rebuild(ids, vectors, vectors.shape[1])
        base = {"stored": n, "kind": index.kind, "nlist": getattr(index.index, "nlist", None),
                "real_vectors": min(n, len(real)), "build": clock.describe()}
        unrestricted = measure(index, vectors, ids, queries, None, None, rng)
        results.append({**base, "people": None, **unrestricted})
        for people in people_counts:
            owner, weights = owners(n, people, rng)
            results.append({**base, "people": people, **measure(index, vectors, ids, queries, owner, weights, rng)})
        del index, vectors
    return {"k": K, "queries": len(queries), "results": results, "targets": targets(results)}


def targets(results: list[dict]) -> dict:
    """The issue's targets against the worst configuration measured at each size."""
    def worst(n, key):
        rows = [r for r in results if r["stored"] == n and r["people"] is not None]
        if not rows:
            return None
        if key == "recall":
            return min(r["recall_at_10"] for r in rows)
        return max(r[key]["p95"] for r in rows)

    out = {}
    for n, limit in ((100_000, 5.0), (1_000_000, 30.0)):
        p95, cpu, recall = worst(n, "latency_ms"), worst(n, "cpu_ms"), worst(n, "recall")
        if p95 is not None:
            out[f"{n}"] = {"p95_ms": p95, "p95_cpu_ms": cpu, "p95_target_ms": limit, "recall_at_10": recall,
                           "recall_target": 0.95, "met": p95 <= limit and recall >= 0.95}
    return out


def sweep(sizes, nprobes, n_queries: int, seed: int = 0) -> dict:
    """Unrestricted recall@10 and latency at each ``nprobe`` (how ``index.NPROBE`` was chosen)."""
    import assistant.memory.index as index_module

    rng = np.random.default_rng(seed)
    real, queries = friends.query_vectors("train"), friends.query_vectors("test", n_queries)
    rows, chosen = [], index_module.NPROBE
    for n in sizes:
        vectors = stored(real, n, rng)
        ids = np.arange(1, n + 1, dtype=np.int64)
        index = MemoryIndex.rebuild(ids, vectors, vectors.shape[1], exact_below=0)
        for nprobe in nprobes:
            index_module.NPROBE = nprobe
            try:
                rows.append({"stored": n, "nlist": index.index.nlist, "nprobe": nprobe,
                             **measure(index, vectors, ids, queries, None, None, rng)})
            finally:
                index_module.NPROBE = chosen
    return {"k": K, "queries": len(queries), "sweep": rows}


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--people", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--queries", type=int, default=300, help="real test queries asked at each size")
    parser.add_argument("--real", type=int, default=None, help="use at most this many real vectors (smoke tests)")
    parser.add_argument("--sweep-nprobe", type=int, nargs="+", metavar="NPROBE",
                        help="instead: unrestricted recall and latency of an approximate index at each nprobe")
    args = parser.parse_args(argv)
    if args.sweep_nprobe:
        return common.finish(sweep(args.sizes, args.sweep_nprobe, args.queries), args.out, __spec__.name, argv)
    return common.finish(run(args.sizes, args.people, args.queries, args.real), args.out, __spec__.name, argv)


if __name__ == "__main__":
    main()
