"""Bringing conversations in from elsewhere.

Each format's parser turns a file into an ``ImportBatch``: conversations between a person and
the assistant's side, plus the problems found (line number and reason) in lines it skipped.
``store_batch`` writes a batch all at once; callers compute vectors first so that a failure
leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.store import Store


@dataclass
class ImportedExchange:
    query: str
    reply: str
    context: list[str] = field(default_factory=list)  # earlier turns' text, oldest first


@dataclass
class ImportedConversation:
    person: str  # the profile name of the person asking
    key: str  # groups exchanges into one conversation (e.g. a scene id)
    exchanges: list[ImportedExchange] = field(default_factory=list)


@dataclass
class ImportBatch:
    source: str  # e.g. "mqd:rachel_green"
    conversations: list[ImportedConversation]
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def exchanges(self) -> list[ImportedExchange]:
        return [e for c in self.conversations for e in c.exchanges]

    @property
    def people(self) -> list[str]:
        return sorted({c.person for c in self.conversations})


def store_batch(store: Store, batch: ImportBatch) -> list[int]:
    """Write every conversation of ``batch``; returns exchange ids in ``batch.exchanges`` order.

    Must run inside the caller's ``store.transaction()`` to be all-or-nothing with its vectors.
    """
    ids = []
    profiles = {name: store.get_or_add_profile(name).id for name in batch.people}
    for conversation in batch.conversations:
        profile_id = profiles[conversation.person]
        session = store.new_session(profile_id)
        for exchange in conversation.exchanges:
            ids.append(
                store.add_imported_exchange(
                    session.id, profile_id, exchange.query, exchange.reply, exchange.context, batch.source
                )
            )
    return ids
