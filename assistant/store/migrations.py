"""Numbered schema migrations for the SQLite store.

Each migration is a function that takes a ``sqlite_utils.Database`` and changes the schema
one step. ``migrate()`` applies the pending ones in order, each in its own transaction
together with the bump of ``PRAGMA user_version``, so a crash leaves the schema at an exact
version. Append new migrations to ``MIGRATIONS``; never edit a released one.
"""

from __future__ import annotations

import json
from typing import Callable

import sqlite_utils

from assistant.store.db import transaction
from assistant.errors import StoreError


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE profiles (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            title TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE exchanges (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            user_text TEXT NOT NULL,
            reply TEXT,
            status TEXT NOT NULL CHECK (status IN ('pending', 'complete', 'failed')),
            error TEXT,
            route TEXT,
            model TEXT,
            ttft_ms REAL,
            tokens INTEGER,
            tokens_per_s REAL,
            created_at TEXT NOT NULL,
            completed_at TEXT
        )"""
    )
    db.execute("CREATE INDEX exchanges_session ON exchanges(session_id, id)")
    db.execute("CREATE INDEX exchanges_profile ON exchanges(profile_id, id)")
    db.execute("CREATE INDEX sessions_profile ON sessions(profile_id, updated_at)")


def _m002_memory(db: sqlite_utils.Database) -> None:
    """Questioner-aware memory: dialogue context, provenance, query clusters, vectors, prototypes."""
    for column in (
        "context TEXT NOT NULL DEFAULT '[]'",  # JSON list of earlier turns' text, oldest first
        "source TEXT NOT NULL DEFAULT 'chat'",  # chat | import
        "cluster INTEGER",  # query cluster id, NULL until clustered
        "identified_as INTEGER",  # profile the questioner tower guessed, when the speaker was detected
        "identify_confidence REAL",
    ):
        db.execute(f"ALTER TABLE exchanges ADD COLUMN {column}")
    db.execute(
        """CREATE TABLE vectors (
            exchange_id INTEGER PRIMARY KEY REFERENCES exchanges(id) ON DELETE CASCADE,
            query BLOB NOT NULL,
            dialogue BLOB
        )"""
    )
    db.execute(
        """CREATE TABLE clusters (
            id INTEGER PRIMARY KEY,
            centroid BLOB NOT NULL,
            size INTEGER NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE prototypes (
            profile_id INTEGER PRIMARY KEY REFERENCES profiles(id) ON DELETE CASCADE,
            vector BLOB NOT NULL,
            n INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX exchanges_cluster ON exchanges(profile_id, cluster)")


def _m003_state(db: sqlite_utils.Database) -> None:
    """Small facts about the store itself, e.g. which encoder made the dialogue vectors."""
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("ALTER TABLE exchanges ADD COLUMN recalled TEXT")  # JSON: the trace and the memories used


def _m004_cloud(db: sqlite_utils.Database) -> None:
    """Cloud escalation: per-person consent, and how each turn was routed and what was sent."""
    db.execute("ALTER TABLE profiles ADD COLUMN cloud_allowed INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE exchanges ADD COLUMN route_decision TEXT")  # where the router sent it (before any fallback)
    db.execute("ALTER TABLE exchanges ADD COLUMN route_reason TEXT")
    db.execute("ALTER TABLE exchanges ADD COLUMN route_score REAL")    # difficulty score, Auto turns only
    db.execute("ALTER TABLE exchanges ADD COLUMN route_note TEXT")     # e.g. "cloud unreachable — answered on this device"
    db.execute("ALTER TABLE exchanges ADD COLUMN cloud_payload TEXT")  # the exact JSON body sent to the cloud
    db.execute("CREATE INDEX exchanges_route ON exchanges(profile_id, route)")


def _m005_recall_index(db: sqlite_utils.Database) -> None:
    """Recall reads every id a person may draw on, each turn: from this index alone (covering,
    and in id order, which the FAISS restriction wants), not from each exchange's row."""
    db.execute("CREATE INDEX exchanges_recall ON exchanges(profile_id, status, id, session_id)")


def _m006_edited(db: sqlite_utils.Database) -> None:
    """When a person corrected a reply in the Memory tab: a corrected reply is theirs to learn from."""
    db.execute("ALTER TABLE exchanges ADD COLUMN edited_at TEXT")


def _m007_context_speakers(db: sqlite_utils.Database) -> None:
    """Context turns keep who said them (``store.context_turns``): the bare strings stored so far
    become turns whose speaker is unknown."""
    rows = db.execute("SELECT id, context FROM exchanges WHERE context NOT IN ('', '[]')").fetchall()
    for exchange_id, raw in rows:
        turns = [t if isinstance(t, dict) else {"text": str(t), "speakers": []} for t in json.loads(raw)]
        db.execute("UPDATE exchanges SET context = ? WHERE id = ?", (json.dumps(turns), exchange_id))


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m001_initial, _m002_memory, _m003_state, _m004_cloud, _m005_recall_index, _m006_edited,
    _m007_context_speakers]


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every pending migration; return the resulting schema version."""
    version = schema_version(db)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {version} is newer than this Confidant ({len(MIGRATIONS)}); upgrade Confidant"
        )
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with transaction(db):  # the step and its version bump land together or not at all
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
    return schema_version(db)
