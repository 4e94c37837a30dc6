"""Looking after what the assistant knows about people: their figures, finding one memory,
correcting or deleting it, and merging two people into one.

Contract:
- ``person_stats(store, profile_id)``: exchanges, conversations, first and last seen, the share
  of answered turns that went to the cloud, and the person's top query clusters each with a few
  example questions.
- ``search(store, encoders, index, settings, profile_id, text, limit)``: the person's own complete exchanges matching the
  words (every word, case-insensitive, in the question or the reply) or the meaning (nearest by
  the general tower among their exchanges only, at least ``memory_search_min_similarity``
  similar, so a word that means nothing finds nothing), fused by reciprocal rank; each hit says
  how it matched. Empty text lists the most recent ones.
- ``edit(store, vectors, encoders, index, memory, exchange_id, user_text, reply, owner)``: new text for one memory; its vectors,
  cluster, index entry and the person's prototype follow, the next exchange's context and a
  conversation title made from it quote the new text, and the database file is rewritten so the old text cannot be read back from it.
  It is marked corrected (``edited_at``), so the local model may learn from it; a tuned adapter that learned the old text is deleted.
- ``delete(store, vectors, encoders, index, memory, exchange_id, owner)``: one memory gone for good (``forgetting``).
- ``merge(store, memory, source, target)``: every conversation and exchange of ``source`` moves to
  ``target`` in one transaction (ids, so the FAISS index, stay as they are), the stricter cloud
  consent wins, ``source`` is deleted and ``target``'s prototype recomputed; a tuned adapter that
  learned either person (and so who asked what) is deleted.
The collaborators are the memory's parts (``Memory.parts()``: the store, the stored vectors, the
encoders, the index) and ``memory`` itself, used for its prototypes and settings.
``owner`` is the profile the caller believes the memory belongs to: a memory of anyone else is a
``NotFoundError``, so a page can never touch another person's memories by sending an id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.errors import InputError, NotFoundError
from assistant.people.forgetting import forget_exchanges
from assistant.inputs import clean_message
from assistant.store import context_turns, people as records
from assistant.store.store import Exchange, Profile, Store
from assistant.training.adapter import forget_trained_on
from profiles.dialogue import dialogue_from

RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al., 2009): damps the top ranks' weight
EXAMPLES_PER_CLUSTER = 3


@dataclass(frozen=True)
class Topic:
    cluster: int
    count: int
    examples: list[str]


@dataclass(frozen=True)
class PersonStats:
    profile: Profile
    exchanges: int
    conversations: int
    first_seen: str | None
    last_seen: str | None
    cloud_share: float  # of answered turns; 0 when none was answered
    topics: list[Topic]


@dataclass(frozen=True)
class Found:
    exchange: Exchange
    score: float
    matched: str  # "words", "meaning" or "words + meaning"


def person_stats(store: Store, profile_id: int, top: int = 3) -> PersonStats:
    profile = store.profile(profile_id)
    row = records.figures(store, profile_id)
    topics = [Topic(r["cluster"], r["n"], records.cluster_examples(store, profile_id, r["cluster"], EXAMPLES_PER_CLUSTER))
              for r in records.cluster_sizes(store, profile_id, top)]
    answered = row["answered"] or 0
    return PersonStats(profile, row["n"], row["sessions"], row["first"], row["last"],
                       (row["cloud"] or 0) / answered if answered else 0.0, topics)


def search(store: Store, encoders, index, settings, profile_id: int, text: str, limit: int = 20) -> list[Found]:
    """The person's memories best matching ``text`` by words and meaning (see the contract)."""
    text = " ".join((text or "").split())
    if not text:
        recent = records.recent_memory_ids(store, profile_id, limit)
        found = store.exchanges(recent)
        return [Found(found[i], 0.0, "recent") for i in recent]
    by_words = _word_matches(store, profile_id, text, limit)
    by_meaning = _meaning_matches(store, encoders, index, settings.memory_search_min_similarity, profile_id, text, limit)
    fused: dict[int, float] = {}
    for ranked in (by_words, by_meaning):
        for rank, exchange_id in enumerate(ranked):
            fused[exchange_id] = fused.get(exchange_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    best = sorted(fused, key=lambda i: -fused[i])[:limit]
    found = store.exchanges(best)
    how = {i: " + ".join(k for k, ranked in (("words", by_words), ("meaning", by_meaning)) if i in ranked) for i in best}
    return [Found(found[i], fused[i], how[i]) for i in best if i in found]


def _word_matches(store: Store, profile_id: int, text: str, limit: int) -> list[int]:
    return records.word_match_ids(store, profile_id, [w for w in text.lower().split() if w][:8], limit)


def _meaning_matches(store: Store, encoders, index, floor: float, profile_id: int, text: str, limit: int) -> list[int]:
    mine = store.memory_ids(profile_id)
    if len(mine) == 0:
        return []
    query = encoders.queries([text])[0]
    return [i for i, similarity in index.search(query, limit, among=mine) if similarity >= floor]


def owned(store: Store, exchange_id: int, owner: int) -> Exchange:
    """The exchange if it is ``owner``'s; ``NotFoundError`` otherwise (never says whose it is)."""
    try:
        exchange = store.exchange(int(exchange_id))
    except (TypeError, ValueError):
        raise NotFoundError("Choose a memory first.") from None
    if exchange.profile_id != owner:
        raise NotFoundError(f"No memory {exchange_id} for this person.")
    return exchange


def edit(store: Store, vectors, encoders, index, memory, exchange_id: int, user_text: str, reply: str, owner: int,
         limit: int = 8000) -> Exchange:
    old = owned(store, exchange_id, owner)
    user_text = clean_message(user_text, limit)
    reply = (reply or "").strip()
    if not reply:
        raise InputError("The reply cannot be empty; delete the memory instead.")
    later = [e for e in store.session_exchanges(old.session_id) if e.id > old.id][:1]
    requoted = [(e, _requoted(e, old, user_text, reply)) for e in later]
    contexts = {e.id: c for e, c in requoted if c is not None}
    query = encoders.queries([user_text])
    changed = [(old.id, user_text, old.context, reply)] + [
        (e.id, e.user_text, c, e.reply or "") for e, c in requoted if c is not None]
    dialogues = encoders.dialogues([dialogue_from(u, c, r) for _, u, c, r in changed])
    centroids = vectors.centroids()
    cluster = int(np.argmax(query @ centroids.T)) if centroids is not None else None
    with store.transaction():
        records.rewrite_exchange(store, old, user_text, reply, contexts, cluster)
        vectors.put([old.id], query, dialogues[:1])
        if len(changed) > 1:
            vectors.set_dialogue_vectors([i for i, *_ in changed[1:]], dialogues[1:])
    index.remove([old.id])
    index.add([old.id], query)
    index.save()
    memory.refresh_prototypes([owner])
    store.scrub()
    forget_trained_on(memory.settings.data_dir, exchange_ids=[old.id])  # it learned the old words
    return store.exchange(old.id)


def _requoted(later: Exchange, old: Exchange, user_text: str, reply: str) -> str | None:
    """``later``'s context with ``old``'s turns replaced by the new text (None if it did not quote them)."""
    turns = context_turns.decode(later.context)
    new = [dict(t, text=user_text) if t["text"] == old.user_text else dict(t, text=reply) if t["text"] == old.reply
           else t for t in turns]
    return context_turns.encode(new) if new != turns else None


def delete(store: Store, vectors, encoders, index, memory, exchange_id: int, owner: int) -> int:
    exchange = owned(store, exchange_id, owner)
    return forget_exchanges(store, vectors, encoders, index, memory, store.profile(owner), [exchange.id])


def _credited(store: Store, moving: Profile, keeping: Profile) -> dict[int, str]:
    """Contexts quoting ``moving`` with those lines credited to ``keeping`` (the same person)."""
    changed = {}
    for e in records.quoting(store):
        turns = context_turns.decode(e.context)
        if any(context_turns.said_by(t, moving) for t in turns):
            changed[e.id] = context_turns.encode(context_turns.moved(turns, moving, keeping))
    return changed


def merge(store: Store, memory, source: str, target: str) -> Profile:
    """Move everything ``source`` said to ``target`` and delete ``source``; returns ``target``."""
    moving, keeping = store.profile(source), store.profile(target)
    if moving.id == keeping.id:
        raise InputError("Choose two different people to merge.")
    with store.transaction():  # every declared per-person table (store.person_tables), and their lines quoted
        records.merge_people(store, moving, keeping)
        records.set_contexts(store, _credited(store, moving, keeping))
    memory.refresh_prototypes([keeping.id])
    forget_trained_on(memory.settings.data_dir, profile_ids=[moving.id, keeping.id])  # it learned who asked what
    return store.profile(keeping.id)
