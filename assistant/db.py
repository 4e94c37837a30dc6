"""Opening SQLite the way Confidant needs it, and explicit transactions.

Connections run in autocommit mode (``isolation_level=None``) so that every transaction is
one explicit ``BEGIN IMMEDIATE … COMMIT`` from ``transaction()``: schema changes included,
which Python's implicit transactions would otherwise leave in autocommit.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils


def connect(path: Path) -> sqlite_utils.Database:
    """A WAL-mode database at ``path`` with foreign keys on, shared safely between threads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it consistent
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 30000")
    return db


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block as one write transaction: all of it lands, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
