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
  out of what remains of them: context turns kept with later exchanges are dropped (their
  dialogue vectors recomputed), a title made from a forgotten message is remade from the first
  remaining one, and the record of what was sent to the cloud is dropped for the conversation's
  later exchanges (it may quote forgotten turns).
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
from assistant.store import people as records
from assistant.store.store import Store
from assistant.training.adapter import forget_trained_on
from profiles.dialogue import Dialogue


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


def _created(exchange_row: dict) -> datetime:
    stamp = datetime.fromisoformat(exchange_row["created_at"])
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)  # the store writes UTC


def matching(store: Store, profile_id: int, before=None, after=None) -> list[int]:
    """Ids of the person's exchanges created in ``[after, before)``, oldest first."""
    low, high = as_bound(after), as_bound(before)
    if low is not None and high is not None and low >= high:
        raise InputError(f"nothing can be both after {after} and before {before}")
    rows = records.created_times(store, profile_id)
    return [r["id"] for r in rows if (low is None or _created(r) >= low) and (high is None or _created(r) < high)]


def forget(store: Store, vectors, encoders, index, memory, name: str, before: date | str | None = None,
           after: date | str | None = None) -> int:
    """Forget what ``name`` said in the range, for good; see the module contract."""
    profile = store.profile(name)
    return forget_exchanges(store, vectors, encoders, index, memory, profile,
                            matching(store, profile.id, before, after))


def forget_exchanges(store: Store, vectors, encoders, index, memory, profile, ids: list[int]) -> int:
    """Forget these exchanges of ``profile`` for good (the steps of the module contract)."""
    gone = {i: e for i, e in store.exchanges(ids).items() if e.profile_id == profile.id}
    ids = sorted(gone)
    if not ids:
        return 0
    texts = {t for e in gone.values() for t in (e.user_text, e.reply) if t}
    first_gone = {}
    for e in gone.values():
        first_gone[e.session_id] = min(e.id, first_gone.get(e.session_id, e.id))
    sessions = sorted(first_gone)
    kept = [e for e in records.in_sessions(store, sessions) if e.id not in gone]

    contexts = {}  # exchange id -> its context without forgotten turns
    for e in kept:
        turns = json.loads(e.context)
        clean = [t for t in turns if not any(text in t for text in texts)]
        if clean != turns:
            contexts[e.id] = (e, clean)
    redo = list(vectors.get(list(contexts)))  # those with vectors get new dialogue vectors
    redone = encoders.dialogues(
        [Dialogue(contexts[i][0].user_text, contexts[i][1], contexts[i][0].reply or "") for i in redo]) if redo else None
    payloads = [e.id for e in kept if e.cloud_payload and e.id > first_gone[e.session_id]]

    with store.transaction():  # every declared per-person table that refers to them (store.person_tables)
        records.forget_rows(store, profile.id, ids, {i: clean for i, (_, clean) in contexts.items()}, payloads,
                            sessions, texts)
        if redo:
            vectors.set_dialogue_vectors(redo, redone)
    index.remove(ids)
    index.save()
    memory.refresh_prototypes([profile.id])
    store.scrub()
    forget_trained_on(memory.settings.data_dir, exchange_ids=ids)  # a tuned adapter holds their words too
    return len(ids)

