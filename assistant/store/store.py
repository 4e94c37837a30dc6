"""The SQLite store: people, their conversations and every exchange.

Contract:
- ``Store(path)`` opens (creating if needed) a WAL-mode database and migrates it.
- A chat turn's exchange is written by ``assistant.store.turn_log.TurnLog`` (begin, then
  complete or fail); only ``complete`` exchanges count as memory.
- Deleting a profile removes its conversations and exchanges in one transaction.
- All methods are safe to call from several threads; writes are serialised by a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Collection, Iterator

import numpy as np
import sqlite_utils

from assistant.store.db import connect, transaction
from assistant.errors import InputError, NotFoundError, StoreError
from assistant.store import context_turns, person_tables
from assistant.store.migrations import migrate
from assistant.store.names import clean_name

TITLE_CHARS = 60


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Profile:
    id: int
    name: str
    created_at: str
    cloud_allowed: bool = True  # False: "never send this person's messages to the cloud"


@dataclass(frozen=True)
class Session:
    id: int
    profile_id: int
    title: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Exchange:
    id: int
    session_id: int
    profile_id: int
    user_text: str
    reply: str | None
    status: str
    error: str | None
    route: str | None
    model: str | None
    ttft_ms: float | None
    tokens: int | None
    tokens_per_s: float | None
    created_at: str
    completed_at: str | None
    context: str = "[]"
    source: str = "chat"
    cluster: int | None = None
    identified_as: int | None = None
    identify_confidence: float | None = None
    recalled: str | None = None
    route_decision: str | None = None
    route_reason: str | None = None
    route_score: float | None = None
    route_note: str | None = None
    cloud_payload: str | None = None
    edited_at: str | None = None  # set when a person corrected the text in the Memory tab


@dataclass(frozen=True)
class GenerationStats:
    """What the status line under a reply shows, stored with the exchange."""

    route: str
    model: str
    ttft_ms: float
    tokens: int
    tokens_per_s: float


class Store:
    def __init__(self, path: Path, max_name_chars: int = 60):
        self.path = Path(path)
        self.max_name_chars = max_name_chars
        self._lock = threading.RLock()
        try:
            self.db = connect(self.path)
            with self._lock:
                self.schema_version = migrate(self.db)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"could not open the database {self.path}: {error}") from None

    def close(self) -> None:
        self.db.conn.close()

    def rows(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        with self._lock:
            cursor = self.db.execute(sql, params)
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def rows_in(self, sql: str, ids) -> list[dict]:
        """``sql`` with ``{ids}`` replaced by one placeholder per id, run with them ([] for none)."""
        ids = tuple(int(i) for i in ids)
        return self.rows(sql.format(ids=",".join("?" * len(ids))), ids) if ids else []

    def id_array(self, sql: str, params: tuple = ()) -> np.ndarray:
        """The ``id`` column ``sql`` selects, as int64 in its order: read as ONE ``group_concat``
        string parsed in C, not a Python int per row (45 ms for a million-row store's largest
        person; docs/performance.md §6)."""
        ids = self.rows(f"SELECT group_concat(id) AS ids FROM ({sql})", params)[0]["ids"]
        return np.fromstring(ids or "", sep=",", dtype=np.int64)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction under the store's lock; disk errors become ``StoreError``.

        Re-entrant: a transaction opened inside another one on the same thread joins it, so a
        caller can make several store writes land together (an import, say) or not at all.
        """
        with self._lock:
            if self.db.conn.in_transaction:
                yield self.db
                return
            try:
                with transaction(self.db) as db:
                    yield db
            except sqlite3.OperationalError as error:
                hint = " (is the disk full or read-only?)" if _is_disk_problem(error) else ""
                raise StoreError(f"could not write to the database {self.path}: {error}{hint}") from None

    # People

    def add_profile(self, name: str) -> Profile:
        name = clean_name(name, self.max_name_chars)
        try:
            with self.transaction() as db:
                profile_id = db.execute(
                    "INSERT INTO profiles (name, created_at) VALUES (?, ?)", (name, now())
                ).lastrowid
        except sqlite3.IntegrityError:
            raise InputError(f"There is already a person called {name!r}.") from None
        return self.profile(profile_id)

    def set_cloud_allowed(self, name: str, allowed: bool) -> Profile:
        profile = self.profile(name)
        with self.transaction() as db:
            db.execute("UPDATE profiles SET cloud_allowed = ? WHERE id = ?", (int(allowed), profile.id))
        return self.profile(profile.id)

    def profiles(self) -> list[Profile]:
        """Everyone, most recently active first."""
        rows = self.rows(
            """SELECT p.* FROM profiles p LEFT JOIN sessions s ON s.profile_id = p.id
               GROUP BY p.id ORDER BY COALESCE(MAX(s.updated_at), p.created_at) DESC, p.id DESC"""
        )
        return [Profile(**row) for row in rows]

    def profile(self, key: int | str) -> Profile:
        """A profile by id or by (case-insensitive) name."""
        column = "id" if isinstance(key, int) else "name"
        rows = self.rows(f"SELECT * FROM profiles WHERE {column} = ?", (key,))
        if not rows:
            raise NotFoundError(f"There is nobody called {key!r}." if column == "name" else f"No profile {key}.")
        return Profile(**rows[0])

    def find_profile(self, name: str) -> Profile | None:
        rows = self.rows("SELECT * FROM profiles WHERE name = ?", (name.strip(),))
        return Profile(**rows[0]) if rows else None

    def get_or_add_profile(self, name: str) -> Profile:
        return self.find_profile(name) or self.add_profile(name)

    def rename_profile(self, old: str, new: str) -> Profile:
        profile = self.profile(old)
        new = clean_name(new, self.max_name_chars)
        try:
            with self.transaction() as db:
                db.execute("UPDATE profiles SET name = ? WHERE id = ?", (new, profile.id))
        except sqlite3.IntegrityError:
            raise InputError(f"There is already a person called {new!r}.") from None
        return self.profile(profile.id)

    def delete_profile(self, name: str) -> Profile:
        profile = self.profile(name)
        with self.transaction() as db:  # every declared per-person table (person_tables)
            person_tables.deleting_person(db, profile.id)
        return profile

    def profile_ids(self) -> list[int]:
        return [r["id"] for r in self.rows("SELECT id FROM profiles ORDER BY id")]

    def scrub(self) -> None:
        """Rewrite the database file so that deleted rows leave no readable trace in it.

        ``VACUUM`` rebuilds every page (so no old copy of a row survives in free space, whether or
        not this SQLite build zeroes deleted content), then ``wal_checkpoint(TRUNCATE)`` copies the
        result into the main file and empties the write-ahead log, whose old frames would still
        hold the text. ``StoreError`` if another connection keeps the log busy.
        """
        with self._lock:
            secure = self.db.execute("PRAGMA secure_delete").fetchone()[0]
            try:
                self.db.execute("PRAGMA secure_delete = ON")  # pages freed on the way are zeroed too
                self.db.execute("VACUUM")
                busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError as error:
                raise StoreError(f"could not compact the database {self.path}: {error}") from None
            finally:
                self.db.execute(f"PRAGMA secure_delete = {int(secure)}")
        if busy:
            raise StoreError(
                f"another program has {self.path.name} open, so deleted text stays in its write-ahead log "
                "until that program closes; close it (e.g. confidant serve) to finish erasing"
            )

    # Facts about the store

    def state(self, key: str) -> str | None:
        rows = self.rows("SELECT value FROM state WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))

    # Conversations

    def new_session(self, profile_id: int, title: str = "") -> Session:
        stamp = now()
        with self.transaction() as db:
            session_id = db.execute(
                "INSERT INTO sessions (profile_id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (profile_id, title[:TITLE_CHARS], stamp, stamp),
            ).lastrowid
        return self.session(session_id)

    def session(self, session_id: int) -> Session:
        rows = self.rows("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise NotFoundError(f"No conversation {session_id}.")
        return Session(**rows[0])

    def sessions(self, profile_id: int) -> list[Session]:
        """A person's conversations, most recent first."""
        rows = self.rows(
            "SELECT * FROM sessions WHERE profile_id = ? ORDER BY updated_at DESC, id DESC", (profile_id,)
        )
        return [Session(**row) for row in rows]

    # Exchanges

    def add_imported_exchange(
        self, session_id: int, profile_id: int, user_text: str, reply: str, context: list, source: str
    ) -> int:
        """A finished exchange brought in from elsewhere (an import), stored as memory."""
        stamp = now()
        with self.transaction() as db:
            exchange_id = db.execute(
                """INSERT INTO exchanges (session_id, profile_id, user_text, reply, context, status, route, model,
                   source, created_at, completed_at) VALUES (?, ?, ?, ?, ?, 'complete', 'import', ?, 'import', ?, ?)""",
                (session_id, profile_id, user_text, reply, context_turns.encode(context), source, stamp, stamp),
            ).lastrowid
            db.execute("UPDATE sessions SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                       (stamp, _title(user_text), session_id))
        return exchange_id

    def reassign_exchange(self, exchange_id: int, profile_id: int) -> Exchange:
        """Move an exchange to another person: with its conversation if it is the only exchange in
        it, otherwise into a new conversation of that person."""
        exchange = self.exchange(exchange_id)
        self.profile(profile_id)
        with self.transaction() as db:
            alone = db.execute("SELECT COUNT(*) FROM exchanges WHERE session_id = ?", (exchange.session_id,)).fetchone()[0] == 1
            if alone:
                db.execute("UPDATE sessions SET profile_id = ? WHERE id = ?", (profile_id, exchange.session_id))
                session_id = exchange.session_id
            else:
                session_id = self.new_session(profile_id, _title(exchange.user_text)).id
            db.execute("UPDATE exchanges SET profile_id = ?, session_id = ? WHERE id = ?", (profile_id, session_id, exchange_id))
        return self.exchange(exchange_id)

    def exchange(self, exchange_id: int) -> Exchange:
        rows = self.rows("SELECT * FROM exchanges WHERE id = ?", (exchange_id,))
        if not rows:
            raise NotFoundError(f"No exchange {exchange_id}.")
        return Exchange(**rows[0])

    def exchanges(self, ids) -> dict[int, Exchange]:
        return {row["id"]: Exchange(**row) for row in self.rows_in("SELECT * FROM exchanges WHERE id IN ({ids})", ids)}

    def memory_ids(self, profile_id: int, exclude_session: int | None = None) -> np.ndarray:
        """A person's complete exchanges outside one conversation, as int64 ids in id order (the
        covering index ``exchanges_recall``'s): what recall may draw on, every turn."""
        return self.id_array(
            "SELECT id FROM exchanges WHERE profile_id = ? AND status = 'complete' AND session_id IS NOT ?",
            (profile_id, exclude_session),
        )

    def session_exchanges(self, session_id: int, last: int | None = None, complete_only: bool = False) -> list[Exchange]:
        """A conversation's exchanges in order; ``last`` keeps only the most recent ones."""
        status = "AND status = 'complete'" if complete_only else ""
        limit = "LIMIT ?" if last is not None else ""
        params = (session_id, last) if last is not None else (session_id,)
        rows = self.rows(
            f"SELECT * FROM (SELECT * FROM exchanges WHERE session_id = ? {status} ORDER BY id DESC {limit}) ORDER BY id",
            params,
        )
        return [Exchange(**row) for row in rows]

    def sessions_with_message(self, profile_ids: Collection[int], user_text: str, limit: int) -> list[int]:
        """The conversations of these people with a complete exchange asking exactly ``user_text``,
        most recently updated first."""
        rows = self.rows(
            """SELECT DISTINCT s.id AS session_id, s.updated_at FROM exchanges e JOIN sessions s ON s.id = e.session_id
               WHERE s.profile_id IN (SELECT value FROM json_each(?)) AND e.status = 'complete' AND e.user_text = ?
               ORDER BY s.updated_at DESC, s.id DESC LIMIT ?""",
            (json.dumps(sorted(profile_ids)), user_text, limit))
        return [r["session_id"] for r in rows]

    def pending_ids(self) -> list[int]:
        """Exchanges whose reply never finished (a crash, or a turn running elsewhere), in order."""
        return [r["id"] for r in self.rows("SELECT id FROM exchanges WHERE status = 'pending' ORDER BY id")]

    def count_exchanges(self, profile_id: int | None = None) -> int:
        if profile_id is None:
            return self.rows("SELECT COUNT(*) AS n FROM exchanges")[0]["n"]
        return self.rows("SELECT COUNT(*) AS n FROM exchanges WHERE profile_id = ?", (profile_id,))[0]["n"]


def _is_disk_problem(error: sqlite3.OperationalError) -> bool:
    return any(word in str(error).lower() for word in ("disk", "readonly", "read-only", "locked", "i/o"))


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"
