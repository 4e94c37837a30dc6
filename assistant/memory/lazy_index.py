"""The memory's FAISS index as the engine's parts are handed it: opened on first use.

Contract of ``LazyIndex(open_index, after_open, lock, save_every)``:
- ``get()`` opens the index once, under ``lock``: ``open_index()`` returns it, then
  ``after_open()`` runs (it may use this handle again: the lock is re-entrant and the index is
  already set), e.g. adding the exchanges a crash left without vectors.
- ``search``, ``add``, ``remove`` and ``save`` act on the opened index (``MemoryIndex``);
  ``add`` saves once ``save_every`` ids were added since the last save.
- ``opened`` is the index if it is open, else None: a deletion need not open it, since an index
  opened later is rebuilt from the store.
Callers (recall, the router, forgetting, curation) get this handle passed in, so opening stays
lazy and they never reach through ``Memory`` for it.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from assistant.memory.index import MemoryIndex


class LazyIndex:
    def __init__(self, open_index: Callable[[], MemoryIndex], after_open: Callable[[], object],
                 lock: threading.RLock, save_every: int):
        self._open, self._after_open, self._lock, self._save_every = open_index, after_open, lock, save_every
        self._index: MemoryIndex | None = None
        self._unsaved = 0

    @property
    def opened(self) -> MemoryIndex | None:
        return self._index

    def get(self) -> MemoryIndex:
        with self._lock:
            if self._index is None:
                self._index = self._open()
                self._after_open()
            return self._index

    def search(self, vector: np.ndarray, k: int, among=None) -> list[tuple[int, float]]:
        return self.get().search(vector, k, among=among)

    def add(self, ids, vectors: np.ndarray) -> None:
        with self._lock:
            self.get().add(ids, vectors)
            self._unsaved += len(ids)
            if self._unsaved >= self._save_every:
                self.save()

    def remove(self, ids) -> int:
        return self.get().remove(ids)

    def save(self) -> None:
        """Write the index to disk (it is rebuilt from the store at start-up if this was missed)."""
        with self._lock:
            self.get().save()
            self._unsaved = 0
