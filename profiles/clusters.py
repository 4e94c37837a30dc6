"""Query clusters: dialogues grouped by WHAT is asked, so that the questioner tower is taught
WHO is asking by contrasting only dialogues about similar things.

Contract: ``cluster_queries(embeddings, k=None, seed=0)`` takes general-tower embeddings of
the queries (one row per dialogue; they are L2-normalised here, so cosine similarity is what
counts) and runs faiss spherical k-means. It returns a ``QueryClusters`` with ``labels``
(int64, one per row), ``centroids`` (k x dim, unit length) and ``assign(embeddings)`` for new
queries (nearest centroid by cosine).

Choosing k when it is not given (``choose_k``):

* never more than one cluster per 20 dialogues (``k <= n // 20``) so every cluster still holds
  enough dialogues for a contrast, and at least 1 (tiny data: a single cluster);
* otherwise the candidates are 5..10 (clamped to the limit above) and the one with the best
  cosine silhouette on a seeded sample of at most 2,000 rows wins; ties go to the smaller k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K_RANGE = (5, 10)          # sensible range for a few thousand dialogues
MIN_PER_CLUSTER = 20       # never more clusters than n / 20
SILHOUETTE_SAMPLE = 2000   # silhouette is O(n^2): score a sample


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class QueryClusters:
    labels: np.ndarray
    centroids: np.ndarray

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, embeddings: np.ndarray) -> np.ndarray:
        """Nearest centroid (cosine) of each row."""
        return np.argmax(_unit(embeddings) @ self.centroids.T, axis=1).astype(np.int64)


def _kmeans(x: np.ndarray, k: int, seed: int) -> QueryClusters:
    if k <= 1:
        c = _unit(x.mean(0, keepdims=True))
        return QueryClusters(np.zeros(len(x), dtype=np.int64), c)
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=25, nredo=3, seed=seed, spherical=True,
                      verbose=False, min_points_per_centroid=1)
    km.train(x)
    c = _unit(km.centroids)
    return QueryClusters(np.argmax(x @ c.T, axis=1).astype(np.int64), c)


def choose_k(x: np.ndarray, seed: int = 0) -> int:
    """k from the data: the rule is in the module docstring."""
    from sklearn.metrics import silhouette_score

    limit = len(x) // MIN_PER_CLUSTER
    if limit < 2:
        return 1
    lo, hi = min(K_RANGE[0], limit), min(K_RANGE[1], limit)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(x), size=min(len(x), SILHOUETTE_SAMPLE), replace=False)
    best_k, best_s = lo, -np.inf
    for k in range(lo, hi + 1):
        labels = _kmeans(x, k, seed).labels[sample]
        if len(np.unique(labels)) < 2:
            continue
        s = silhouette_score(x[sample], labels, metric="cosine")
        if s > best_s + 1e-6:  # strict: a tie keeps the smaller k
            best_k, best_s = k, s
    return best_k


def cluster_queries(embeddings: np.ndarray, k: int | None = None, seed: int = 0) -> QueryClusters:
    """Spherical k-means of the query embeddings; k chosen by ``choose_k`` when None."""
    x = _unit(embeddings)
    if len(x) == 0:
        raise ValueError("cluster_queries needs at least one embedding")
    k = choose_k(x, seed) if k is None else max(1, min(int(k), len(x)))
    return _kmeans(x, k, seed)
