"""Vectors kept beside the exchanges in SQLite: per-exchange query and dialogue vectors, query
cluster centroids and each person's prototype.

SQLite is the source of truth; the FAISS index (``assistant.memory.memory``) is a cache rebuilt from
here. Vectors are float32 blobs; every write is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.store.store import Store, now


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def from_blobs(blobs: list[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])


@dataclass(frozen=True)
class ExchangeVectors:
    ids: np.ndarray  # exchange ids (int64)
    profile_ids: np.ndarray
    clusters: np.ndarray  # -1 where not clustered yet
    query: np.ndarray  # (n, d) general-tower vectors of the user's message
    dialogue: np.ndarray | None  # (n, d') questioner-tower vectors, None before the encoder is trained


class VectorStore:
    def __init__(self, store: Store):
        self.store = store

    def put(self, ids, query: np.ndarray, dialogue: np.ndarray | None = None) -> None:
        rows = [
            (int(i), to_blob(q), None if dialogue is None else to_blob(d))
            for i, q, d in zip(ids, query, dialogue if dialogue is not None else [None] * len(ids))
        ]
        with self.store.transaction() as db:
            db.conn.executemany("INSERT OR REPLACE INTO vectors (exchange_id, query, dialogue) VALUES (?, ?, ?)", rows)

    def set_dialogue_vectors(self, ids, dialogue: np.ndarray) -> None:
        with self.store.transaction() as db:
            db.conn.executemany(
                "UPDATE vectors SET dialogue = ? WHERE exchange_id = ?", [(to_blob(d), int(i)) for i, d in zip(ids, dialogue)]
            )

    def load(self, profile_id: int | None = None) -> ExchangeVectors:
        """Vectors of every complete exchange (or one person's), in id order."""
        where = "AND e.profile_id = ?" if profile_id is not None else ""
        rows = self.store.rows(
            f"""SELECT e.id, e.profile_id, COALESCE(e.cluster, -1) AS cluster, v.query, v.dialogue
                FROM exchanges e JOIN vectors v ON v.exchange_id = e.id
                WHERE e.status = 'complete' {where} ORDER BY e.id""",
            (profile_id,) if profile_id is not None else (),
        )
        dialogue = [r["dialogue"] for r in rows]
        return ExchangeVectors(
            ids=np.array([r["id"] for r in rows], dtype=np.int64),
            profile_ids=np.array([r["profile_id"] for r in rows], dtype=np.int64),
            clusters=np.array([r["cluster"] for r in rows], dtype=np.int64),
            query=from_blobs([r["query"] for r in rows]),
            dialogue=from_blobs(dialogue) if rows and all(d is not None for d in dialogue) else None,
        )

    def get(self, ids) -> dict[int, tuple[np.ndarray, np.ndarray | None, int]]:
        """id -> (query vector, dialogue vector, cluster or -1) for these exchanges."""
        rows = self.store.rows_in(
            """SELECT e.id, COALESCE(e.cluster, -1) AS cluster, v.query, v.dialogue FROM exchanges e
               JOIN vectors v ON v.exchange_id = e.id WHERE e.id IN ({ids})""",
            ids,
        )
        return {
            r["id"]: (
                np.frombuffer(r["query"], dtype=np.float32),
                None if r["dialogue"] is None else np.frombuffer(r["dialogue"], dtype=np.float32),
                r["cluster"],
            )
            for r in rows
        }

    def ids(self) -> np.ndarray:
        """Ids of every complete exchange with vectors (what the index must hold), in id order."""
        return self.store.id_array(
            "SELECT e.id FROM exchanges e JOIN vectors v ON v.exchange_id = e.id WHERE e.status = 'complete' ORDER BY e.id"
        )

    def query_dim(self) -> int | None:
        """Dimensions of the stored query vectors (None while there are none)."""
        rows = self.store.rows("SELECT length(query) AS size FROM vectors LIMIT 1")
        return rows[0]["size"] // 4 if rows else None

    def owners(self, ids) -> dict[int, int]:
        """exchange id -> the profile id of the person who asked it."""
        return {r["id"]: r["profile_id"] for r in self.store.rows_in(
            "SELECT id, profile_id FROM exchanges WHERE id IN ({ids})", ids)}

    def count(self) -> int:
        """Rows in the vectors table, whatever their exchanges' status."""
        return self.store.rows("SELECT COUNT(*) AS n FROM vectors")[0]["n"]

    def remembered(self) -> list[dict]:
        """``id``, ``profile_id``, ``user_text``, ``context``, ``reply`` and ``cluster`` (0 when
        unclustered) of every complete exchange with vectors, in id order: what training reads."""
        return self.store.rows(
            "SELECT e.id, e.profile_id, e.user_text, e.context, e.reply, COALESCE(e.cluster, 0) AS cluster "
            "FROM exchanges e JOIN vectors v ON v.exchange_id = e.id WHERE e.status = 'complete' ORDER BY e.id"
        )

    def counts(self) -> tuple[int, int]:
        """(complete exchanges with vectors, how many of them are clustered)."""
        row = self.store.rows(
            "SELECT COUNT(*) AS n, COUNT(e.cluster) AS clustered FROM exchanges e "
            "JOIN vectors v ON v.exchange_id = e.id WHERE e.status = 'complete'"
        )[0]
        return row["n"], row["clustered"]

    def missing_ids(self) -> list[int]:
        """Complete exchanges that have no vectors yet."""
        rows = self.store.rows(
            "SELECT e.id FROM exchanges e LEFT JOIN vectors v ON v.exchange_id = e.id "
            "WHERE e.status = 'complete' AND v.exchange_id IS NULL ORDER BY e.id"
        )
        return [r["id"] for r in rows]

    # Query clusters

    def set_clusters(self, centroids: np.ndarray, ids, labels) -> None:
        sizes = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(centroids))
        with self.store.transaction() as db:
            db.execute("DELETE FROM clusters")
            db.conn.executemany(
                "INSERT INTO clusters (id, centroid, size) VALUES (?, ?, ?)",
                [(c, to_blob(centroids[c]), int(sizes[c])) for c in range(len(centroids))],
            )
            db.conn.executemany("UPDATE exchanges SET cluster = ? WHERE id = ?", [(int(l), int(i)) for i, l in zip(ids, labels)])

    def assign_clusters(self, ids, labels) -> None:
        """Put new exchanges into existing clusters, in one transaction."""
        pairs = [(int(label), int(i)) for i, label in zip(ids, labels)]
        with self.store.transaction() as db:
            db.conn.executemany("UPDATE exchanges SET cluster = ? WHERE id = ?", pairs)
            db.conn.executemany("UPDATE clusters SET size = size + 1 WHERE id = ?", [(label,) for label, _ in pairs])

    def centroids(self) -> np.ndarray | None:
        rows = self.store.rows("SELECT centroid FROM clusters ORDER BY id")
        return from_blobs([r["centroid"] for r in rows]) if rows else None

    # Prototypes

    def set_prototypes(self, profile_ids, vectors: np.ndarray, counts) -> None:
        stamp = now()
        with self.store.transaction() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO prototypes (profile_id, vector, n, updated_at) VALUES (?, ?, ?, ?)",
                [(int(p), to_blob(v), int(n), stamp) for p, v, n in zip(profile_ids, vectors, counts)],
            )

    def prototype_counts(self, profile_ids) -> dict[int, int]:
        """profile id -> how many dialogue vectors its stored prototype averages."""
        return {r["profile_id"]: r["n"] for r in self.store.rows_in(
            "SELECT profile_id, n FROM prototypes WHERE profile_id IN ({ids})", profile_ids)}

    def prototypes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(profile ids, normalised prototype matrix, dialogue counts)."""
        rows = self.store.rows("SELECT profile_id, vector, n FROM prototypes ORDER BY profile_id")
        return (
            np.array([r["profile_id"] for r in rows], dtype=np.int64),
            from_blobs([r["vector"] for r in rows]),
            np.array([r["n"] for r in rows], dtype=np.int64),
        )
