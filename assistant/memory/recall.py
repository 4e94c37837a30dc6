"""Recall: what the assistant remembers for one turn.

Contract: ``Recall(store, vectors, encoders, index)`` reads only the collaborators it is given
(the store, the stored vectors, the encoders and the memory's ``LazyIndex``); ``Recall.turn(...)``
(``recall(memory, ...)`` for a caller holding a ``Memory``) returns a ``Recollection``:
- ``history`` — the conversation's most recent complete exchanges, oldest first;
- ``memories`` — the asking person's own past exchanges from other conversations, from the
  message's query cluster first, ranked by ``w_q · query similarity (general tower) +
  w_p · questioner similarity (questioner tower)`` and cut at ``recall_min_score``;
- only with ``borrow_style_examples`` on (off by default: it quotes one person's words in
  another's prompt), while a person has fewer than ``cold_start_min`` exchanges, exchanges of the
  people whose prototypes are closest may be *borrowed* as style examples: they carry
  ``borrowed_from`` and are never presented as this person's memories;
- ``trace`` — one line saying what was recalled and why.
Another person's exchanges are never returned as this person's own: candidates are drawn
from FAISS restricted to the person's exchange ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.memory.lazy_index import LazyIndex
from assistant.memory.memory import Memory
from assistant.settings import Settings
from assistant.store.store import Exchange, Profile, Store
from assistant.store.vectors import VectorStore
from profiles.dialogue import Dialogue
from profiles.encoding import Encoders

BORROW_FROM = 2  # people whose exchanges a newcomer may borrow as style examples


@dataclass(frozen=True)
class Recalled:
    exchange: Exchange
    score: float
    query_similarity: float
    questioner_similarity: float
    same_cluster: bool
    borrowed_from: str | None = None


@dataclass(frozen=True)
class Recollection:
    history: list[Exchange]
    memories: list[Recalled] = field(default_factory=list)
    trace: str = ""

    def summary(self) -> dict:
        """What is stored with the exchange: the trace and which memories were used, and how."""
        return {
            "trace": self.trace,
            "memories": [
                {"id": m.exchange.id, "score": round(m.score, 3), "same_topic": m.same_cluster, "borrowed_from": m.borrowed_from}
                for m in self.memories
            ],
        }


def session_history(store: Store, session_id: int, before_exchange: int, turns: int) -> list[Exchange]:
    if turns <= 0:
        return []
    earlier = store.session_exchanges(session_id, last=turns + 1, complete_only=True)
    return [e for e in earlier if e.id < before_exchange][-turns:]


def recall(memory: Memory, *args, **kwargs) -> Recollection:
    """``Recall.turn`` over ``memory``'s parts (see ``Recall.turn``)."""
    return Recall(*memory.parts()).turn(*args, **kwargs)


def recall_memories(memory: Memory, *args, **kwargs) -> tuple[list[Recalled], str]:
    """``Recall.memories`` over ``memory``'s parts (see ``Recall.memories``)."""
    return Recall(*memory.parts()).memories(*args, **kwargs)


class Recall:
    """Recall for the turns of one household, over the parts of its memory it reads."""

    def __init__(self, store: Store, vectors: VectorStore, encoders: Encoders, index: LazyIndex):
        self.store, self.vectors, self.encoders, self.index = store, vectors, encoders, index

    def turn(self, person: Profile, text: str, session_id: int, before_exchange: int, settings: Settings,
             query: np.ndarray | None = None, memories: bool = True) -> Recollection:
        """The turn's conversation history and the person's memories from other conversations
        (``query``: the message's general-tower vector, if the caller has it already; no memories
        when ``memories`` is off: a detected speaker not yet confirmed)."""
        history = session_history(self.store, session_id, before_exchange, settings.history_turns)
        if not memories:
            return Recollection(history, [], f"no memories used: {person.name} was detected, not confirmed")
        context = [t for e in history[-2:] for t in (e.user_text, e.reply or "")]
        memories, trace = self.memories(person, text, context, settings, exclude_session=session_id, query=query)
        return Recollection(history, memories, trace)

    def memories(
        self,
        person: Profile,
        text: str,
        context: list[str],
        settings: Settings,
        exclude_session: int | None = None,
        use_clusters: bool = True,
        query: np.ndarray | None = None,
    ) -> tuple[list[Recalled], str]:
        """The person's best-matching past exchanges for ``text`` asked after ``context``, and a trace."""
        store = self.store
        if settings.recall_k == 0:
            return [], "recall is off"
        own = store.memory_ids(person.id, exclude_session=exclude_session)
        if len(own) == 0 and len(store.profile_ids()) < 2:
            return [], f"nothing to recall yet for {person.name}"
        query = self.encoders.queries([text])[0] if query is None else query
        asking = self.encoders.dialogues([Dialogue(text, context, "")])[0]
        newcomer = settings.borrow_style_examples and len(own) < settings.cold_start_min
        lenders = self.similar_people(person.id, asking) if newcomer else {}
        pool = np.concatenate([own, *(store.memory_ids(lender) for lender in lenders)])
        hits = dict(self.index.search(query, settings.recall_candidates, among=pool))
        memories = self.rank(hits, query, asking, person, lenders, settings, use_clusters)
        return memories, describe(person, memories)

    def similar_people(self, person_id: int, asking: np.ndarray) -> dict[int, float]:
        """The people whose prototypes are closest to how this message is asked (cold start)."""
        ids, prototypes, _ = self.vectors.prototypes()
        keep = ids != person_id
        if not keep.any() or prototypes.shape[1] != asking.shape[0]:
            return {}
        scores = prototypes[keep] @ asking
        order = np.argsort(-scores)[:BORROW_FROM]
        return {int(ids[keep][i]): float(scores[i]) for i in order}

    def rank(self, hits, query, asking, person, lenders, settings, use_clusters=True) -> list[Recalled]:
        if not hits:
            return []
        centroids = self.vectors.centroids()
        cluster = int(np.argmax(centroids @ query)) if centroids is not None and use_clusters else -1
        vectors = self.vectors.get(hits)
        exchanges = self.store.exchanges(hits)
        names = {pid: self.store.profile(pid).name for pid in lenders}
        recalled = []
        for exchange_id, query_similarity in hits.items():
            _, dialogue, exchange_cluster = vectors[exchange_id]
            questioner_similarity = float(dialogue @ asking) if dialogue is not None and dialogue.shape == asking.shape else 0.0
            score = settings.recall_query_weight * query_similarity + settings.recall_questioner_weight * questioner_similarity
            exchange = exchanges[exchange_id]
            if score < settings.recall_min_score:
                continue
            borrowed = names.get(exchange.profile_id) if exchange.profile_id != person.id else None
            recalled.append(
                Recalled(exchange, score, query_similarity, questioner_similarity, cluster >= 0 and exchange_cluster == cluster, borrowed)
            )
        recalled.sort(key=lambda r: (r.borrowed_from is None, r.same_cluster, r.score), reverse=True)
        return recalled[: settings.recall_k]


def describe(person: Profile, memories: list[Recalled]) -> str:
    own = [m for m in memories if m.borrowed_from is None]
    borrowed = [m for m in memories if m.borrowed_from]
    parts = []
    if own:
        in_cluster = sum(m.same_cluster for m in own)
        parts.append(f"{len(own)} of {person.name}'s past exchanges ({in_cluster} on the same topic)")
    if borrowed:
        lenders_named = ", ".join(sorted({m.borrowed_from for m in borrowed}))
        parts.append(f"{len(borrowed)} style examples borrowed from {lenders_named} ({person.name} is new)")
    return "recalled " + " and ".join(parts) if parts else f"no past exchange of {person.name} is close enough"
