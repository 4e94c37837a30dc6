"""Who is speaking in this turn (the engine's side: the store, the profiles, the threshold).

- ``identify(store, speaker)``: the person chosen in the UI or named on the command line (a new
  name becomes a profile when ``create`` is true).
- ``detect(store, vectors, encoders, text, earlier)``: the questioner tower's guess from the
  message and the conversation's earlier messages (the maths is ``profiles.identify.rank``, on
  the prototypes read from the stored vectors). Below ``threshold`` the guess is not ``sure``
  and the caller asks instead of guessing.
- ``correct(store, memory, exchange_id, person)``: a one-click correction moves the exchange to
  the right person and refreshes both prototypes (``Memory.refresh_prototypes``), so the next
  guess learns from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.store.store import Profile, Store
from assistant.store.vectors import VectorStore
from profiles.identify import rank
from profiles.dialogue import Dialogue

AUTO = "auto"


@dataclass(frozen=True)
class Identification:
    profile: Profile | None
    confidence: float
    sure: bool
    candidates: list[tuple[Profile, float]] = field(default_factory=list)  # best first

    def describe(self) -> str:
        if self.profile is None:
            return "nobody is known yet"
        return f"identified as {self.profile.name} ({self.confidence:.0%})"


def identify(store: Store, speaker: int | str, create: bool = False) -> Profile:
    if isinstance(speaker, int):
        return store.profile(speaker)
    return store.get_or_add_profile(speaker) if create else store.profile(speaker)


def detect(store: Store, vectors: VectorStore, encoders, text: str, earlier: list[str], threshold: float,
           temperature: float, among=None) -> Identification:
    """Who wrote ``text`` (after ``earlier`` lines of the same conversation), among the people
    ``among`` (a set of profile ids; everyone when None)."""
    ids, prototypes, _ = vectors.prototypes()
    if among is not None and len(ids):
        keep = np.isin(ids, list(among))
        ids, prototypes = ids[keep], prototypes[keep]
    if len(ids) == 0:
        return Identification(None, 0.0, False)
    asked = encoders.dialogues([Dialogue(t, [], "") for t in [*earlier, text]])
    ranked = rank(ids, prototypes, asked, temperature)
    if not ranked:
        return Identification(None, 0.0, False)
    candidates = [(store.profile(person), probability) for person, probability in ranked]
    best, confidence = candidates[0]
    return Identification(best, confidence, confidence >= threshold, candidates)


def correct(store: Store, memory, exchange_id: int, person_id: int) -> None:
    """The exchange was really ``person_id``'s: move it there and learn from it."""
    before = store.exchange(exchange_id).profile_id
    store.reassign_exchange(exchange_id, person_id)
    memory.refresh_prototypes({before, person_id})
