"""The people's prototypes: the normalised mean of each person's dialogue vectors.

Contract: ``Prototypes(store, vectors, encoders)``; ``refresh(profile_ids)`` reads the people's
dialogue vectors in full (everyone when None) and writes their prototypes; ``grow(ids,
dialogue)`` adds new exchanges' vectors through running sums, so remembering a turn costs the
same at 10 memories or 100,000; ``forget(person)`` drops a person's running sum. A sum is read
again in full when it is not held or no longer matches the stored prototype (another encoder,
or a count changed elsewhere: a forget, a correction, another process). Callers hold the
memory's lock.
"""

from __future__ import annotations

import numpy as np

from assistant.store.store import Store
from assistant.store.vectors import VectorStore
from profiles.encoding import Encoders


class Prototypes:
    def __init__(self, store: Store, vectors: VectorStore, encoders: Encoders):
        self.store, self.vectors, self.encoders = store, vectors, encoders
        self._sums: dict[int, tuple[str, int, np.ndarray]] = {}  # person -> (encoder, n, sum of dialogue vectors)

    def refresh(self, profile_ids=None) -> None:
        people = self.store.profile_ids() if profile_ids is None else sorted(profile_ids)
        version = self.encoders.version
        if profile_ids is None:
            self._sums.clear()
        for person in people:
            self._sums.pop(person, None)
            mine = self.vectors.load(person).dialogue
            if mine is not None and len(mine):
                self._sums[person] = (version, len(mine), mine.sum(axis=0, dtype=np.float64))
        self._write([p for p in people if p in self._sums])

    def grow(self, ids: list[int], dialogue: np.ndarray) -> None:
        owner = self.vectors.owners(ids)
        version, counts = self.encoders.version, self.vectors.prototype_counts(set(owner.values()))
        stale, grown = [], []
        for person in sorted(set(owner.values())):
            rows = [k for k, i in enumerate(ids) if owner.get(int(i)) == person]
            held = self._sums.get(person)
            if held is None or held[0] != version or held[1] != counts.get(person) or len(held[2]) != dialogue.shape[1]:
                stale.append(person)
                continue
            self._sums[person] = (version, held[1] + len(rows), held[2] + dialogue[rows].sum(axis=0, dtype=np.float64))
            grown.append(person)
        self._write(grown)
        if stale:
            self.refresh(stale)

    def forget(self, person: int) -> None:
        self._sums.pop(person, None)

    def _write(self, people: list[int]) -> None:
        if not people:
            return
        sums = np.stack([self._sums[p][2] for p in people])
        unit = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        self.vectors.set_prototypes(people, unit.astype(np.float32), [self._sums[p][1] for p in people])
