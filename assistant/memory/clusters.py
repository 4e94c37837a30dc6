"""The query clusters: recomputed when memory has grown enough, new exchanges assigned between.

Contract: ``Clusters(settings, vectors)``; ``recluster(force)`` clusters every stored query
vector again when memory grew by ``recluster_growth`` since the last clustering (and holds at
least ``recluster_min``), or when forced, and says whether it did; ``assign(ids, query)`` gives
new exchanges the nearest existing centroid (``recluster`` first, which may cover them);
``forget()`` drops the counts kept here (a deletion elsewhere), so they are read again.

Whether memory grew enough is judged on counts kept here as exchanges are added (counting a
million rows after every turn was most of the turn's bookkeeping), confirmed from the store
before acting on them, and read from it afresh every ``RECOUNT_EVERY`` additions (deletions
elsewhere make them drift).
"""

from __future__ import annotations

import numpy as np

from assistant.settings import Settings
from assistant.store.vectors import VectorStore
from profiles.clusters import cluster_queries

RECOUNT_EVERY = 1000  # exchanges added between two exact counts of what is clustered


class Clusters:
    def __init__(self, settings: Settings, vectors: VectorStore):
        self.settings, self.vectors = settings, vectors
        self._counts: list[int] | None = None  # [exchanges with vectors, clustered ones]
        self._since_count = 0

    def recluster(self, force: bool = False) -> bool:
        if not force and not self._due(*self._cluster_counts()):
            return False
        total, clustered = self._cluster_counts(exact=True)
        if total == 0 or not (force or self._due(total, clustered)):
            return False
        loaded = self.vectors.load()
        clusters = cluster_queries(loaded.query, seed=0)
        self.vectors.set_clusters(clusters.centroids, loaded.ids, clusters.labels)
        self._counts = [len(loaded.ids), len(loaded.ids)]
        return True

    def assign(self, ids: list[int], query: np.ndarray) -> None:
        """New exchanges' clusters: all of them again if memory grew enough, else the nearest."""
        if self.recluster():
            return
        centroids = self.vectors.centroids()
        if centroids is not None:
            self.vectors.assign_clusters(ids, np.argmax(query @ centroids.T, axis=1))
        self._count_added(len(ids), clustered=centroids is not None)

    def forget(self) -> None:
        self._counts = None

    def _due(self, total: int, clustered: int) -> bool:
        return total >= self.settings.recluster_min and total >= clustered * (1 + self.settings.recluster_growth)

    def _cluster_counts(self, exact: bool = False) -> tuple[int, int]:
        """(exchanges with vectors, how many are clustered): kept here, from the store when asked."""
        if exact or self._counts is None or self._since_count >= RECOUNT_EVERY:
            self._counts, self._since_count = list(self.vectors.counts()), 0
        return self._counts[0], self._counts[1]

    def _count_added(self, n: int, clustered: bool) -> None:
        if self._counts is not None:
            self._counts[0] += n
            self._counts[1] += n if clustered else 0
            self._since_count += n
