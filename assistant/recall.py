"""What the assistant remembers for one turn.

In this version: the session's most recent complete exchanges, oldest first. Failed and
pending exchanges (a reply that never finished) are not fed back to the model.
"""

from __future__ import annotations

from assistant.store import Exchange, Store


def recall(store: Store, session_id: int, before_exchange: int, turns: int) -> list[Exchange]:
    if turns <= 0:
        return []
    earlier = [e for e in store.session_exchanges(session_id, last=turns + 1, complete_only=True) if e.id < before_exchange]
    return earlier[-turns:]
