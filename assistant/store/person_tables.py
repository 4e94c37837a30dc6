"""The tables that hold one person's data, declared once.

Every column that ties a row to a person, directly (a profile id) or through one of their
exchanges (an exchange id), is listed in ``PERSON_TABLES`` with what happens to it when the
person is merged into another, forgotten or deleted, and whether the portable export carries
it. Forgetting (``assistant.store.people.delete_exchanges``), merging (``merge_people``),
deleting a person (``Store.delete_profile``) and the export and archive (``EXPORTED``,
``DERIVED``) all read this list, so a new per-person table is handled everywhere once it is
declared here; ``tests/test_store.py`` fails when a table with a profile or exchange reference
is missing from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PersonTable:
    table: str
    column: str  # the column holding the person's profile id or one of their exchange ids
    refers_to: Literal["profiles", "exchanges"]
    on_merge: Literal["move", "recompute", "follows"]  # follows: moves with its exchange (same id)
    exported: bool  # the portable export carries its rows (else it is derived and rebuilt on import)


PERSON_TABLES: tuple[PersonTable, ...] = (
    PersonTable("sessions", "profile_id", "profiles", "move", exported=True),
    PersonTable("exchanges", "profile_id", "profiles", "move", exported=True),
    PersonTable("exchanges", "identified_as", "profiles", "move", exported=False),  # a guess about this person
    PersonTable("prototypes", "profile_id", "profiles", "recompute", exported=False),
    PersonTable("vectors", "exchange_id", "exchanges", "follows", exported=False),
)

# Columns that name people inside their JSON (``store.context_turns``: the speakers of context
# turns): forgetting and deleting a person take their lines out of them wherever they are,
# merging credits the lines to the person kept (``people.forgetting``, ``people.curation``).
QUOTING: tuple[tuple[str, str], ...] = (("exchanges", "context"),)

EXPORTED = tuple(t for t in PERSON_TABLES if t.exported)
DERIVED = tuple(t for t in PERSON_TABLES if not t.exported and t.on_merge != "move")  # rebuilt from exchanges


def referring_to(parent: str) -> tuple[PersonTable, ...]:
    return tuple(t for t in PERSON_TABLES if t.refers_to == parent)


def deleting_person(db, profile_id: int) -> None:
    """Delete every row of ``profile_id``'s, children first, then the profile (in the caller's
    transaction); a guess that some other exchange was theirs is cleared, not left dangling."""
    exchange_ids = "SELECT id FROM exchanges WHERE profile_id = ?"
    for t in referring_to("exchanges"):
        db.execute(f"DELETE FROM {t.table} WHERE {t.column} IN ({exchange_ids})", (profile_id,))
    for t in reversed(referring_to("profiles")):
        if t.column == "profile_id":
            db.execute(f"DELETE FROM {t.table} WHERE {t.column} = ?", (profile_id,))
        else:
            db.execute(f"UPDATE {t.table} SET {t.column} = NULL WHERE {t.column} = ?", (profile_id,))
    db.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))


def deleting_exchanges(db, ids: list[int]) -> None:
    """Delete these exchanges and every row that refers to them (in the caller's transaction)."""
    marks = ",".join("?" * len(ids))
    for t in referring_to("exchanges"):
        db.execute(f"DELETE FROM {t.table} WHERE {t.column} IN ({marks})", tuple(ids))
    db.execute(f"DELETE FROM exchanges WHERE id IN ({marks})", tuple(ids))


def merging_people(db, source: int, target: int) -> None:
    """Move ``source``'s rows to ``target`` (in the caller's transaction); recomputed ones are
    dropped with ``source`` and remade for ``target`` by the caller."""
    for t in referring_to("profiles"):
        if t.on_merge == "move":
            db.execute(f"UPDATE {t.table} SET {t.column} = ? WHERE {t.column} = ?", (target, source))
        elif t.on_merge == "recompute":
            db.execute(f"DELETE FROM {t.table} WHERE {t.column} = ?", (source,))
