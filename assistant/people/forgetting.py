"""Forgetting: erase what one person said, in a date range or altogether, for good.

Contract of ``forget(store, vectors, encoders, index, memory, name, before=None, after=None)``
(``forget_exchanges(store, vectors, encoders, index, memory, profile, ids)`` does the same for
chosen exchanges, e.g. one memory deleted in the UI); the collaborators are the memory's parts
(``Memory.parts()``) and ``memory`` itself, used for its prototypes and settings:
- It deletes the person's exchanges (any status) created in ``[after, before)``; either bound
  may be left out, and with neither everything they said goes. The profile itself stays.
- Bounds are dates (their midnight, local time), datetimes (naive ones in local time) or ISO
  text such as ``"2024-05-01"``. An empty range is an ``InputError``.
- In the same transaction it deletes the conversations left empty and takes the forgotten text
  out of everyone's exchanges (``store.context_turns``): a context turn that is or quotes a
  forgotten message or reply is dropped wherever it is kept, and so is every line the person
  said in another exchange's context (an imported scene) kept with an exchange created in the
  range (all of them when there is no range; ``forget_exchanges`` alone drops only quotes); the
  dialogue vectors of the exchanges whose context changed are recomputed and their people's
  prototypes with them; a title made from a forgotten message or line is remade from the
  conversation's first remaining one; and the record of what was sent to the cloud is dropped
  for the conversation's later exchanges and for any exchange whose context or payload quoted
  them.
- Then the FAISS index drops them and is saved, the person's prototype is recomputed (deleted
  when nothing is left) and the database is rewritten by ``Store.scrub``, so the text cannot
  be read back from the database file or its write-ahead log.
- A tuned adapter trained on any of them is deleted (``training.adapter.forget_trained_on``):
  it holds their words; the base model answers until ``confidant tune`` runs again.
- Returns how many exchanges were forgotten. Not renewed: the trained questioner encoder and
  the query clusters, learned from what was stored when they were made (``confidant train``).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timezone

from assistant.errors import InputError
from assistant.store import context_turns, people as records
from assistant.store.store import Store
from assistant.training.adapter import forget_trained_on
from profiles.dialogue import dialogue_from


def as_bound(value) -> datetime | None:
    """A range bound as an aware datetime (see the module contract), or ``InputError``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"{value!r} is not a date like 2024-05-01") from None
    elif not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value if value.tzinfo else value.astimezone()


def _created(created_at: str) -> datetime:
    stamp = datetime.fromisoformat(created_at)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)  # the store writes UTC


def _within(created_at: str, low: datetime | None, high: datetime | None) -> bool:
    return (low is None or _created(created_at) >= low) and (high is None or _created(created_at) < high)


def matching(store: Store, profile_id: int, before=None, after=None) -> list[int]:
    """Ids of the person's exchanges created in ``[after, before)``, oldest first."""
    low, high = as_bound(after), as_bound(before)
    if low is not None and high is not None and low >= high:
        raise InputError(f"nothing can be both after {after} and before {before}")
    rows = records.created_times(store, profile_id)
    return [r["id"] for r in rows if _within(r["created_at"], low, high)]


def forget(store: Store, vectors, encoders, index, memory, name: str, before: date | str | None = None,
           after: date | str | None = None) -> int:
    """Forget what ``name`` said in the range, for good; see the module contract."""
    profile = store.profile(name)
    low, high = as_bound(after), as_bound(before)
    ids = matching(store, profile.id, before, after)
    return forget_exchanges(store, vectors, encoders, index, memory, profile, ids,
                            said_in=lambda e: _within(e.created_at, low, high))


def forget_exchanges(store: Store, vectors, encoders, index, memory, profile, ids: list[int], said_in=None) -> int:
    """Forget these exchanges of ``profile`` for good (the steps of the module contract); the
    person's lines in the context of the exchanges ``said_in(row)`` accepts go too."""
    gone = {i: e for i, e in store.exchanges(ids).items() if e.profile_id == profile.id}
    ids = sorted(gone)
    texts = {t for e in gone.values() for t in (e.user_text, e.reply) if t}
    first_gone = {}
    for e in gone.values():
        first_gone[e.session_id] = min(e.id, first_gone.get(e.session_id, e.id))
    quoting = [e for e in records.quoting(store) if e.id not in gone]
    contexts = _unquoted(quoting, profile, texts, said_in)  # exchange id -> (exchange, what its context keeps)
    if not ids and not contexts:
        return 0
    redo = list(vectors.get(list(contexts)))  # those with vectors get new dialogue vectors
    redone = encoders.dialogues(
        [dialogue_from(contexts[i][0].user_text, contexts[i][1], contexts[i][0].reply) for i in redo]) if redo else None
    dropped = texts | {t["text"] for e, _ in contexts.values() for t in context_turns.decode(e.context)} - {
        t["text"] for _, clean in contexts.values() for t in clean}
    payloads = [e.id for e in quoting if e.cloud_payload and (
        e.id in contexts or e.id > first_gone.get(e.session_id, e.id) or _quotes(e.cloud_payload, dropped))]
    sessions = sorted(set(first_gone) | {e.session_id for e, _ in contexts.values()})

    with store.transaction():  # every declared per-person table that refers to them (store.person_tables)
        records.forget_rows(store, profile.id, ids, {i: clean for i, (_, clean) in contexts.items()}, payloads,
                            sessions, dropped)
        if redo:
            vectors.set_dialogue_vectors(redo, redone)
    index.remove(ids)
    index.save()
    memory.refresh_prototypes(sorted({profile.id} | {e.profile_id for e, _ in contexts.values()}))
    store.scrub()
    forget_trained_on(memory.settings.data_dir, exchange_ids=ids)  # a tuned adapter holds their words too
    return len(ids)


def _unquoted(quoting, profile, texts: set[str], said_in) -> dict:
    """Each exchange whose context keeps a forgotten text or (where ``said_in`` accepts it) a line
    of the person's, with the turns that stay."""
    contexts = {}
    for e in quoting:
        turns = context_turns.decode(e.context)
        clean = context_turns.without(turns, profile, texts, tagged=said_in is not None and said_in(e))
        if clean != turns:
            contexts[e.id] = (e, clean)
    return contexts


def _quotes(payload: str, texts: set[str]) -> bool:
    """Whether a stored cloud payload (JSON) holds one of these texts at length."""
    return any(len(t) >= context_turns.QUOTE_MIN_CHARS and (t in payload or json.dumps(t)[1:-1] in payload)
               for t in texts)

