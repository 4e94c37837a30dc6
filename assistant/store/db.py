"""Opening SQLite the way Confidant needs it, and explicit transactions.

Connections run in autocommit mode (``isolation_level=None``) so that every transaction is
one explicit ``BEGIN IMMEDIATE … COMMIT`` from ``transaction()``: schema changes included,
which Python's implicit transactions would otherwise leave in autocommit.

When the data directory cannot be created or the database cannot be opened because the disk
is read-only or full, ``connect`` raises ``StoreError`` saying so (SQLite itself only says
"unable to open database file" or "disk I/O error"); ``disk_problem(folder)`` is that check.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils

from assistant.errors import StoreError

FULL_BELOW = 64 * 1024  # bytes free under which a failed write is put down to a full disk


def connect(path: Path) -> sqlite_utils.Database:
    """A WAL-mode database at ``path`` with foreign keys on, shared safely between threads."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"could not create the data directory {path.parent}: {error.strerror or error}") from None
    conn = None
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA journal_mode = WAL")  # the first write: creates the -wal and -shm files
        db.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it consistent
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 30000")
    except sqlite3.DatabaseError as error:
        if conn is not None:
            conn.close()
        problem = disk_problem(path.parent)
        if problem:
            raise StoreError(f"could not open the database {path}: {problem}") from None
        raise
    return db


def disk_problem(folder: Path) -> str:
    """Why nothing can be written in ``folder`` ("" when it looks writable): for messages."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"the data directory {folder} is on a read-only file system; use a writable --data-dir"
        if not os.access(folder, os.W_OK):
            return f"the data directory {folder} is not writable by this user; use a writable --data-dir"
        if shutil.disk_usage(folder).free < FULL_BELOW:
            return f"the disk holding {folder} is full; free some space"
    except OSError:
        return ""
    return ""


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block as one write transaction: all of it lands, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        # SQLite may have rolled back already (it does on SQLITE_FULL): a second ROLLBACK would
        # fail and hide the error that matters ("database or disk is full").
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
