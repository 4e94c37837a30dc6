"""The FAISS index of exchanges, keyed by their SQLite row ids.

Contract:
- The index holds one general-tower query vector per complete exchange; ids are exchange ids.
- It is a cache: ``MemoryIndex.rebuild(vectors)`` recreates it from the store at any time, and
  ``open()`` rebuilds when the file on disk is missing, unreadable or out of step with the store.
- Its kind follows its size: exact (``IndexIDMap2(IndexFlatIP)``) below ``exact_below``
  vectors, approximate above (``IndexIVFFlat``: vectors kept exactly, ids are exchange ids,
  removable through a hash-table direct map). ``add`` and ``remove`` switch kinds when the size
  crosses the threshold (with hysteresis), and retrain the approximate index when it has grown
  ``RETRAIN_GROWTH`` times since it was trained.
- ``search(vector, k, among=ids)`` returns (exchange id, cosine) pairs, best first, restricted to
  ``among`` when given (recall restricts to one person's exchanges). The approximate index
  visits more lists the smaller ``among``'s share of the index is, so a person who owns 0.1% of
  a million exchanges is searched (nearly) exhaustively among their own, not missed.
- ``save()`` writes to a temporary file, fsyncs and renames, so a crash leaves the old or the
  new index, never a torn one.
- ``check_file(path, ids, vectors)`` says what is wrong with the saved file, without repairing
  it (``confidant doctor``).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import faiss
import numpy as np

from assistant.files import written_atomically

EXACT_BELOW = 10_000  # exact search costs ~1-3 ms per 10k vectors here: beyond this, approximate
NPROBE = 128  # lists an unrestricted search visits: recall@10 ≥ 0.96 from 10k to 1M (docs/performance.md)
RETRAIN_GROWTH = 4  # coarse clusters trained on n vectors still serve up to 4n
BITMAP_MAX_ID = 1 << 26  # up to here a restriction is a bitmap over ids (8 MB at most), else a hash set


class MemoryIndex:
    def __init__(self, dim: int, path: Path | None = None, exact_below: int = EXACT_BELOW):
        self.dim = dim
        self.path = path
        self.exact_below = exact_below
        self.index = _exact(dim)
        self.trained_on = 0  # vectors the approximate index's coarse clusters were trained on
        self._lock = threading.Lock()

    @classmethod
    def rebuild(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, path: Path | None = None,
                exact_below: int = EXACT_BELOW) -> "MemoryIndex":
        memory = cls(dim, path, exact_below)
        memory.add(ids, vectors)
        return memory

    @classmethod
    def open(cls, path: Path, ids: np.ndarray, vectors, dim: int, exact_below: int = EXACT_BELOW) -> "MemoryIndex":
        """The index saved at ``path`` if it holds exactly ``ids``; otherwise rebuilt and saved from
        ``vectors`` (an array in ``ids`` order, or a callable returning ``(ids, vectors)``, called
        only when a rebuild is needed)."""
        try:
            memory = cls(dim, path, exact_below)
            memory.index = faiss.read_index(str(path))
            memory.trained_on = (memory.index.nlist // 2) ** 2 if memory.approximate else 0  # inverse of _nlist()
            held = contents(memory.index, vectors=False)[0]
            if memory.index.d == dim and np.array_equal(np.sort(held), np.sort(np.asarray(ids, dtype=np.int64))):
                if memory._refit():  # saved by a build with another size policy
                    memory.save()
                return memory
        except (RuntimeError, OSError, ValueError):
            pass  # missing or unreadable: rebuild from the store below
        if callable(vectors):
            ids, vectors = vectors()
        memory = cls.rebuild(ids, vectors, dim, path, exact_below)
        memory.save()
        return memory

    def __len__(self) -> int:
        return self.index.ntotal

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def kind(self) -> str:
        return "ivf" if self.approximate else "flat"

    def ids(self) -> set[int]:
        return set(contents(self.index, vectors=False)[0].tolist())

    def add(self, ids, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._lock:
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
            self._refit()

    def remove(self, ids) -> int:
        with self._lock:
            removed = self.index.remove_ids(np.asarray(list(ids), dtype=np.int64))
            self._refit()
            return removed

    def search(self, vector: np.ndarray, k: int, among=None) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            selector, share = None, 1.0
            if among is not None:
                among = np.asarray(among, dtype=np.int64)
                if len(among) == 0:
                    return []
                if not np.all(among[1:] > among[:-1]):  # the store hands them sorted: sort only if not
                    among = np.unique(among)
                selector, _bits = _selector(among)  # _bits: the selector reads it during the search
                share = min(1.0, len(among) / len(self))
            params = self._params(selector, share)
            scores, ids = self.index.search(query, min(k, len(self)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with written_atomically(self.path) as temp, self._lock:
            faiss.write_index(self.index, str(temp))

    # The kind of index for its size

    def _params(self, selector, share: float):
        if not self.approximate:
            return None if selector is None else faiss.SearchParameters(sel=selector)
        # A restriction to a share s of the vectors leaves ~s of each list: visiting NPROBE/s lists
        # finds as many candidates as an unrestricted search of NPROBE lists (exhaustive at worst).
        nprobe = min(self.index.nlist, math.ceil(NPROBE / share))
        return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)

    def _refit(self) -> bool:
        """Switch kinds or retrain when the size says so (caller holds the lock); True if changed."""
        n = len(self)
        if self.approximate:
            shrunk, grown = n < self.exact_below // 2, n >= RETRAIN_GROWTH * max(self.trained_on, 1)
            if not (shrunk or grown):
                return False
        elif n < self.exact_below:
            return False
        ids, vectors = contents(self.index)
        self.index = _exact(self.dim) if n < self.exact_below // 2 else _approximate(vectors)
        self.trained_on = n if self.approximate else 0
        if len(ids):
            self.index.add_with_ids(vectors, ids)
        return True


def _exact(dim: int):
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _approximate(vectors: np.ndarray):
    """An IVF index with coarse clusters trained on (a sample of) ``vectors``, still empty."""
    n, dim = vectors.shape
    nlist = _nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # unit centroids: the right clusters for cosine similarity
    sample = np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False)
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove_ids by exchange id
    return index  # (faiss's wrapper keeps the quantizer alive with the index)


def _nlist(n: int) -> int:
    """Coarse lists for n vectors: 2·sqrt(n), so a list holds ~sqrt(n)/2 of them."""
    return int(np.clip(2 * math.sqrt(n), 64, 4096))


def _selector(among: np.ndarray):
    """A FAISS id selector for these (sorted, unique) ids, and the buffer it reads from."""
    if among[0] < 0 or among[-1] >= BITMAP_MAX_ID:
        return faiss.IDSelectorBatch(among), among
    bits = np.zeros(int(among[-1]) + 1, dtype=bool)
    bits[among] = True
    bitmap = np.packbits(bits, bitorder="little")
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap  # size in bytes


def contents(index, vectors: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(ids, vectors) held by an index of either kind, in its storage order."""
    if isinstance(index, faiss.IndexIDMap2) or isinstance(index, faiss.IndexIDMap):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        flat = faiss.downcast_index(index.index)
        if not vectors:
            return ids, None
        return ids, (flat.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32))
    if not isinstance(index, faiss.IndexIVFFlat):
        index = faiss.downcast_index(index)
    if not isinstance(index, faiss.IndexIVFFlat):
        raise ValueError(f"unexpected index type {type(index).__name__}")
    lists = index.invlists
    id_parts, vector_parts = [np.zeros(0, np.int64)], [np.zeros((0, index.d), np.float32)]
    for number in range(index.nlist):
        size = lists.list_size(number)
        if size == 0:
            continue
        id_parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).astype(np.int64))
        if vectors:
            codes = faiss.rev_swig_ptr(lists.get_codes(number), size * lists.code_size)
            vector_parts.append(codes.view(np.float32).reshape(size, index.d))
    return np.concatenate(id_parts), (np.vstack(vector_parts) if vectors else None)


def check_file(path: Path, ids: np.ndarray, vectors: np.ndarray) -> str:
    """What is wrong with the index saved at ``path`` against the store's ``ids`` and ``vectors``
    ("" when nothing is), read as it is on disk: unlike ``open()``, this never repairs it."""
    expected = {int(i) for i in ids}
    if not path.exists():
        return f"{path.name} is missing ({len(expected)} exchanges to index)" if expected else ""
    try:
        index = faiss.read_index(str(path))
        held, stored = contents(index)
    except (RuntimeError, AttributeError, ValueError) as error:
        return f"{path.name} cannot be read ({str(error).strip().splitlines()[-1][:120]})"
    if len(ids) and index.d != vectors.shape[1]:
        return f"vectors of {index.d} dimensions, the store has {vectors.shape[1]}"
    unique = set(held.tolist())
    missing, extra, repeated = len(expected - unique), len(unique - expected), len(held) - len(unique)
    problems = [f"{missing} ids missing"] * bool(missing) + [f"{extra} extra"] * bool(extra)
    problems += [f"{repeated} duplicated"] * bool(repeated)
    if not problems and len(held):
        row = {int(i): n for n, i in enumerate(ids)}
        differ = int(np.sum(np.abs(stored - vectors[[row[int(i)] for i in held]]).max(axis=1) > 1e-4))
        problems += [f"{differ} vectors differ from the store"] * bool(differ)
    return ", ".join(problems)
