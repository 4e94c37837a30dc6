"""One person's profile and memories as a portable JSON file: export, validation, import.

The format (``docs/export-format.md`` has the details and an example)::

    {"format": "confidant.profile", "version": 1, "exported_at": "<ISO 8601>",
     "profile": {"name", "created_at", "cloud_allowed"},
     "conversations": [{"title", "created_at", "exchanges": [{"user_text", "reply", "context",
                        "created_at", "completed_at", "route", "model", "source"}]}]}

Contract:
- Only complete exchanges are exported, and no vectors: the importing side computes them with
  its own encoders, so a file stays good across embedder versions.
- ``write_export`` writes atomically (temporary file, fsync, rename), readable by its owner only.
- ``import_profile`` checks the whole file before touching the store (``portable_format``);
  anything wrong is an ``InputError`` naming the file and the JSON path, e.g.
  ``alice.json: conversations[2].exchanges[0].user_text is missing``.
- Import creates the person, or merges into the person of that name (``as_name`` overrides the
  file's name). An exchange already there (same user_text, reply and created_at) is skipped and
  counted as a duplicate; new exchanges of a conversation already there (same title and
  created_at) join it. Profile, conversations, exchanges and vectors land in ONE transaction.
  Exchanges keep their created_at, completed_at, route, model and source; a person merged into
  keeps their own cloud consent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import InputError
from assistant.files import written_atomically
from assistant.people.portable_format import FORMAT, VERSION, ParsedExport, load_export, parse_export
from assistant.store import context_turns, people as records
from assistant.store.store import Store, _title, now
from assistant.store.names import clean_name
from profiles.dialogue import Dialogue

__all__ = ["FORMAT", "VERSION", "ImportReport", "export_profile", "write_export", "import_profile", "load_export",
           "parse_export"]


@dataclass(frozen=True)
class ImportReport:
    name: str
    created: bool  # a new person (False: merged into someone already there)
    imported: int  # exchanges added
    duplicates: int  # exchanges skipped because they were already there
    conversations: int  # conversations added

    def summary(self) -> str:
        who = f"{self.name} (new)" if self.created else self.name
        skipped = f" ({self.duplicates} already there, skipped)" if self.duplicates else ""
        return f"imported {self.imported} exchanges in {self.conversations} new conversations into {who}{skipped}"


# Export

def export_profile(store: Store, name: str) -> dict:
    """The person called ``name`` with their conversations' complete exchanges, oldest first."""
    profile = store.profile(name)
    sessions = records.sessions_oldest_first(store, profile.id)
    conversations = []
    for session in sessions:
        exchanges = [e for e in store.session_exchanges(session["id"], complete_only=True) if e.profile_id == profile.id]
        if exchanges:
            conversations.append({
                "title": session["title"],
                "created_at": session["created_at"],
                "exchanges": [
                    {"user_text": e.user_text, "reply": e.reply or "", "context": context_turns.texts(e.context),
                     "created_at": e.created_at, "completed_at": e.completed_at, "route": e.route,
                     "model": e.model, "source": e.source}
                    for e in exchanges
                ],
            })
    return {
        "format": FORMAT, "version": VERSION, "exported_at": now(),
        "profile": {"name": profile.name, "created_at": profile.created_at, "cloud_allowed": bool(profile.cloud_allowed)},
        "conversations": conversations,
    }


def write_export(store: Store, name: str, path: Path | str) -> dict:
    """Export ``name`` to ``path`` atomically (a crash leaves the old file or the new one); returns the export."""
    path = Path(path)
    data = export_profile(store, name)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    try:
        with written_atomically(path) as temp:
            temp.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"could not write {path}: {error.strerror or error}") from None
    return data


# Import

def import_profile(store: Store, memory, source: Path | str | dict, as_name: str | None = None,
                   progress: bool = False) -> ImportReport:
    """Bring a person in from an export (a path or decoded JSON) through ``memory.add_written``;
    see the module contract."""
    export = load_export(source)
    name = clean_name(as_name if as_name is not None else export.name, store.max_name_chars)
    person = store.find_profile(name)
    seen, sessions = set(), {}
    if person is not None:
        seen = records.exchange_keys(store, person.id)
        sessions = {(s.created_at, s.title): s.id for s in store.sessions(person.id)}
    plan, duplicates = [], 0
    for conversation in export.conversations:
        fresh = []
        for exchange in conversation.exchanges:
            key = (exchange.user_text, exchange.reply, exchange.created_at)
            if key in seen:
                duplicates += 1
            else:
                seen.add(key)
                fresh.append(exchange)
        if fresh:
            plan.append((conversation, fresh))
    added = []  # conversations created, filled in by write()

    def write() -> list[int]:
        with store.transaction():
            profile_id = person.id if person is not None else _add_person(store, name, export)
            ids = []
            for conversation, fresh in plan:
                session_id = sessions.get((conversation.created_at, conversation.title))
                if session_id is None:
                    title = conversation.title or _title(fresh[0].user_text)
                    session_id = records.add_conversation(store, profile_id, title, conversation.created_at)
                    added.append(session_id)
                ids.extend(records.add_exported_exchange(store, session_id, profile_id, e) for e in fresh)
                latest = max(max(e.created_at, e.completed_at) for e in fresh)
                records.touch_conversation(store, session_id, latest)
            return ids

    dialogues = [Dialogue(e.user_text, e.context, e.reply) for _, fresh in plan for e in fresh]
    ids = memory.add_written(dialogues, write, progress)
    return ImportReport(person.name if person else name, person is None, len(ids), duplicates, len(added))


def _add_person(store: Store, name: str, export: ParsedExport) -> int:
    """A new person with the file's creation time and cloud consent (inside the import's transaction)."""
    profile = store.add_profile(name)
    records.set_origin(store, profile.id, export.created_at, export.cloud_allowed)
    return profile.id
