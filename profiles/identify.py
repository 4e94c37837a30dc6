"""Who wrote a message, as the questioner tower sees it: the maths only, on plain arrays.

``rank(ids, prototypes, vectors, temperature)``: the mean of the message's dialogue vectors
(the message and the conversation's earlier lines) against every person's prototype, turned
into probabilities with a softmax at ``temperature``; returns (person id, probability) pairs,
best first. It knows nothing of where the prototypes are kept (``assistant.people.identification``
reads them from the store and decides what a guess is worth).
"""

from __future__ import annotations

import numpy as np


def rank(ids: np.ndarray, prototypes: np.ndarray, vectors: np.ndarray, temperature: float,
         top: int = 5) -> list[tuple[int, float]]:
    """The ``top`` most probable writers; [] when there is nobody or the prototypes come from
    another encoder (their width differs from the vectors': not comparable)."""
    mean = vectors.mean(axis=0)
    if len(ids) == 0 or prototypes.shape[1] != mean.shape[0]:
        return []
    scores = prototypes @ (mean / max(np.linalg.norm(mean), 1e-12))
    probabilities = np.exp((scores - scores.max()) / temperature)
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities)
    return [(int(ids[i]), float(probabilities[i])) for i in order[:top]]
