"""Read-only checks of a database file, opened without the app's set-up (no migration, no
write): what ``confidant doctor`` looks at before it trusts the store to open.

``integrity_problems(path)`` SQLite's integrity check (empty when sound), ``broken_references
(path)`` rows whose foreign key points at a row that is gone, as (table, parent) pairs, and
``schema_version(path)`` the migration the file is at. ``sqlite3.DatabaseError`` when the file
cannot be read at all.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def integrity_problems(path: Path) -> list[str]:
    return [r[0] for r in _read(path, "PRAGMA integrity_check") if r[0] != "ok"]


def broken_references(path: Path) -> list[tuple[str, str]]:
    return [(table, parent) for table, _, parent, _ in _read(path, "PRAGMA foreign_key_check")]


def schema_version(path: Path) -> int:
    return _read(path, "PRAGMA user_version")[0][0]


def _read(path: Path, sql: str) -> list[tuple]:
    """Rows of one read-only statement on the database."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
