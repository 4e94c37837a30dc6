"""Bringing conversations in from elsewhere.

Each format's parser turns a file into an ``ImportBatch``: conversations between a person and
the assistant's side, plus the problems found (line number and reason) in lines it skipped.
``store_batch`` writes a batch all at once; callers compute vectors first so that a failure
leaves nothing half-written.

The chat formats (whatsapp, chatgpt, transcript) share the rest of this module: reading a text
file (``read_lines``), comparing speaker names (``name_key``) and turning a conversation's turns
into exchanges (``conversations_from``): an exchange is another speaker's turn immediately
answered by the chosen responder's turn, with up to ``CONTEXT_TURNS`` earlier turns as context.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import InputError
from assistant.store import context_turns
from assistant.store.store import Store

CONTEXT_TURNS = 4
_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")  # direction marks and BOMs


@dataclass
class ImportedExchange:
    query: str
    reply: str
    context: list[str] = field(default_factory=list)  # earlier turns' text, oldest first
    context_speakers: list[tuple[str, ...]] = field(default_factory=list)  # who said each (empty: unknown)


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
    speakers: dict[str, tuple[str, int | None]] = {}  # a context speaker's name -> (name, profile id)
    for conversation in batch.conversations:
        profile_id = profiles[conversation.person]
        session = store.new_session(profile_id)
        for exchange in conversation.exchanges:
            ids.append(
                store.add_imported_exchange(
                    session.id, profile_id, exchange.query, exchange.reply, _turns(store, exchange, speakers), batch.source
                )
            )
    return ids


def _turns(store: Store, exchange: ImportedExchange, known: dict) -> list[dict]:
    """The exchange's context turns with their speakers, tied to the people of those names."""
    said = list(exchange.context_speakers) + [()] * (len(exchange.context) - len(exchange.context_speakers))
    return [context_turns.turn(text, [_speaker(store, name, known) for name in names])
            for text, names in zip(exchange.context, said)]


def _speaker(store: Store, name: str, known: dict) -> tuple[str, int | None]:
    if name not in known:
        person = store.find_profile(name)
        known[name] = (person.name, person.id) if person else (name, None)
    return known[name]


def clean_speaker(name: str) -> str:
    """A speaker's name as it becomes a profile name: no direction marks, single spaces."""
    return " ".join(_MARKS.sub("", unicodedata.normalize("NFC", name)).split())


def name_key(name: str) -> str:
    """How speakers are compared: ``"Sam  Lee"`` and ``"sam lee"`` are the same speaker."""
    return clean_speaker(name).casefold()


def read_lines(path: Path, data: bytes | None = None) -> list[str]:
    """The lines of a UTF-8 text file (``data`` if given), or ``InputError`` for anything else."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InputError(f"could not read {path}: {error.strerror or error}") from None
    if b"\0" in data:
        raise InputError(f"{path.name} is not a text file (it contains binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(f"{path.name} line {line}: not UTF-8 text (byte 0x{data[error.start]:02x})") from None
    return [line.rstrip("\r") for line in text.split("\n")]


def conversations_from(turns: list[tuple[str, str]], responder: str, key: str) -> list[ImportedConversation]:
    """The exchanges ``responder`` answered in one conversation's (speaker, text) turns.

    Consecutive turns of one speaker are merged first. Each exchange belongs to the speaker
    whose turn was answered: one ``ImportedConversation`` per such person, in order of appearance.
    """
    merged: list[tuple[str, str]] = []
    for speaker, text in turns:
        if merged and name_key(merged[-1][0]) == name_key(speaker):
            merged[-1] = (merged[-1][0], f"{merged[-1][1]}\n{text}")
        else:
            merged.append((speaker, text))
    wanted, people = name_key(responder), {}
    for i in range(1, len(merged)):
        (asker, query), (speaker, reply) = merged[i - 1], merged[i]
        if name_key(speaker) != wanted or name_key(asker) == wanted:
            continue
        earlier = merged[max(0, i - 1 - CONTEXT_TURNS) : i - 1]
        person = people.setdefault(name_key(asker), ImportedConversation(clean_speaker(asker), key))
        person.exchanges.append(ImportedExchange(query, reply, [text for _, text in earlier],
                                                 [(clean_speaker(who),) for who, _ in earlier]))
    return list(people.values())


def require_answers(path: Path, me: str, speakers, conversations: list[ImportedConversation]) -> None:
    """``InputError`` unless ``me`` speaks in the file and answers someone at least once."""
    if name_key(me) not in {name_key(s) for s in speakers}:
        found = ", ".join(sorted({clean_speaker(s) for s in speakers}, key=str.casefold)) or "none"
        raise InputError(f"{path.name}: {me!r} never speaks (speakers found: {found})")
    if not conversations:
        raise InputError(f"{path.name}: {me!r} never answers anyone, so there is nothing to import")
