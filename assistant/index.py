"""The FAISS index of exchanges, keyed by their SQLite row ids.

Contract:
- The index holds one general-tower query vector per complete exchange; ids are exchange ids.
- It is a cache: ``MemoryIndex.rebuild(vectors)`` recreates it from the store at any time, and
  ``open()`` rebuilds when the file on disk is missing, unreadable or out of step with the store.
- ``search(vector, k, among=ids)`` returns (exchange id, cosine) pairs, best first, restricted to
  ``among`` when given (recall restricts to one person's exchanges).
- ``save()`` writes to a temporary file, fsyncs and renames, so a crash leaves the old or the
  new index, never a torn one.
- ``check_file(path, ids, vectors)`` says what is wrong with the saved file, without repairing
  it (``confidant doctor``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import faiss
import numpy as np

from assistant.files import written_atomically


class MemoryIndex:
    def __init__(self, dim: int, path: Path | None = None):
        self.dim = dim
        self.path = path
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.Lock()

    @classmethod
    def rebuild(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, path: Path | None = None) -> "MemoryIndex":
        memory = cls(dim, path)
        memory.add(ids, vectors)
        return memory

    @classmethod
    def open(cls, path: Path, ids: np.ndarray, vectors: np.ndarray, dim: int) -> "MemoryIndex":
        """The index saved at ``path`` if it holds exactly ``ids``; otherwise rebuilt and saved."""
        try:
            memory = cls(dim, path)
            memory.index = faiss.read_index(str(path))
            if memory.index.d == dim and memory.ids() == set(int(i) for i in ids):
                return memory
        except (RuntimeError, OSError):
            pass  # missing or unreadable: rebuild from the store below
        memory = cls.rebuild(ids, vectors, dim, path)
        memory.save()
        return memory

    def __len__(self) -> int:
        return self.index.ntotal

    def ids(self) -> set[int]:
        return set(faiss.vector_to_array(self.index.id_map).tolist())

    def add(self, ids, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._lock:
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> int:
        with self._lock:
            return self.index.remove_ids(np.asarray(list(ids), dtype=np.int64))

    def search(self, vector: np.ndarray, k: int, among=None) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        params = None
        if among is not None:
            among = np.asarray(list(among), dtype=np.int64)
            if len(among) == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(among))
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            scores, ids = self.index.search(query, min(k, len(self)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with written_atomically(self.path) as temp, self._lock:
            faiss.write_index(self.index, str(temp))


def check_file(path: Path, ids: np.ndarray, vectors: np.ndarray) -> str:
    """What is wrong with the index saved at ``path`` against the store's ``ids`` and ``vectors``
    ("" when nothing is), read as it is on disk: unlike ``open()``, this never repairs it."""
    expected = {int(i) for i in ids}
    if not path.exists():
        return f"{path.name} is missing ({len(expected)} exchanges to index)" if expected else ""
    try:
        index = faiss.read_index(str(path))
        held = faiss.vector_to_array(index.id_map).astype(np.int64)
        stored = faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal) if index.ntotal else None
    except (RuntimeError, AttributeError) as error:
        return f"{path.name} cannot be read ({str(error).strip().splitlines()[-1][:120]})"
    if len(ids) and index.d != vectors.shape[1]:
        return f"vectors of {index.d} dimensions, the store has {vectors.shape[1]}"
    unique = set(held.tolist())
    missing, extra, repeated = len(expected - unique), len(unique - expected), len(held) - len(unique)
    problems = [f"{missing} ids missing"] * bool(missing) + [f"{extra} extra"] * bool(extra)
    problems += [f"{repeated} duplicated"] * bool(repeated)
    if not problems and stored is not None:
        row = {int(i): n for n, i in enumerate(ids)}
        differ = int(np.sum(np.abs(stored - vectors[[row[int(i)] for i in held]]).max(axis=1) > 1e-4))
        problems += [f"{differ} vectors differ from the store"] * bool(differ)
    return ", ".join(problems)
