"""Writing many rows at once, for the benchmarks that build stores of a million exchanges
(``bench.growth``) and throw away the turns they time (``bench.turn``).

``load(store, people, exchanges, vectors, centroids, sizes)`` writes complete exchanges with
their vectors and query clusters in one transaction (ids given, one conversation per person);
``discard(store, exchange_id)`` deletes one exchange and everything that refers to it.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from assistant.store import person_tables

STAMP = "2026-01-01T00:00:00+00:00"


def load(store, people: int, exchanges: Iterable[list[tuple]], vectors: Iterable[list[tuple]],
         centroids: np.ndarray, sizes: np.ndarray, encoder: str = "general") -> None:
    """``exchanges`` and ``vectors`` are batches of rows: (id, person, user_text, reply, cluster)
    and (exchange id, query vector, dialogue vector); person ``p`` (from 1) talks in conversation ``p``."""
    with store.transaction() as db:
        db.conn.executemany("INSERT INTO profiles (id, name, created_at) VALUES (?, ?, ?)",
                            [(p + 1, f"Person {p + 1}", STAMP) for p in range(people)])
        db.conn.executemany("INSERT INTO sessions (id, profile_id, title, created_at, updated_at) VALUES (?, ?, '', ?, ?)",
                            [(p + 1, p + 1, STAMP, STAMP) for p in range(people)])
        for rows, vector_rows in zip(exchanges, vectors):
            db.conn.executemany(
                "INSERT INTO exchanges (id, session_id, profile_id, user_text, reply, status, created_at, source, cluster) "
                "VALUES (?, ?, ?, ?, ?, 'complete', ?, 'import', ?)",
                [(i, person, person, text, reply, STAMP, cluster) for i, person, text, reply, cluster in rows])
            db.conn.executemany("INSERT INTO vectors (exchange_id, query, dialogue) VALUES (?, ?, ?)",
                                [(i, q.tobytes(), d.tobytes()) for i, q, d in vector_rows])
        db.conn.executemany("INSERT INTO clusters (id, centroid, size) VALUES (?, ?, ?)",
                            [(c, centroids[c].tobytes(), int(sizes[c])) for c in range(len(centroids))])
        db.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('dialogue_encoder', ?)", (encoder,))


def last_exchange_id(store) -> int:
    return store.rows("SELECT MAX(id) AS id FROM exchanges")[0]["id"]


def discard(store, exchange_id: int) -> None:
    with store.transaction() as db:
        person_tables.deleting_exchanges(db, [exchange_id])
