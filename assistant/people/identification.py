"""Who is speaking in this turn (the engine's side: the store, the profiles, the threshold).

- ``identify(store, speaker)``: the person chosen in the UI or named on the command line (a new
  name becomes a profile when ``create`` is true).
- ``detect(store, vectors, encoders, text, earlier)``: the questioner tower's guess from the
  message and the conversation's earlier messages (the maths is ``profiles.identify.rank``, on
  the prototypes read from the stored vectors). The guess is ``sure`` only when its probability
  reaches ``threshold`` and leads the second by ``margin``; otherwise the caller asks instead of
  guessing (a message with no personal signal, e.g. a factoid question, is close to everyone and
  leads by little).
- ``discard_misattributed(store, vectors, encoders, index, memory, exchange_id)``: a one-click
  correction. The reply was made for the wrong person (from their memories), so it is never
  moved to the right one: the exchange is forgotten from the person it was filed under, for good
  (``forget_exchanges``: its vectors, index entry, an emptied conversation; their prototype is
  recomputed), and returned so the caller answers the message again as the right person, whose
  prototype then learns from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.people.forgetting import forget_exchanges
from assistant.store.store import Exchange, Profile, Store
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
           temperature: float, among=None, margin: float = 0.0) -> Identification:
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
    second = candidates[1][1] if len(candidates) > 1 else 0.0
    return Identification(best, confidence, confidence >= threshold and confidence - second >= margin, candidates)


def discard_misattributed(store: Store, vectors: VectorStore, encoders, index, memory, exchange_id: int) -> Exchange:
    """The exchange was answered for the wrong person: forget it from them (see the module
    contract) and return it, for the caller to answer its message again as the right one."""
    exchange = store.exchange(exchange_id)
    forget_exchanges(store, vectors, encoders, index, memory, store.profile(exchange.profile_id), [exchange_id])
    return exchange
