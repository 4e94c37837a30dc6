"""The SQL behind the people services (``assistant.people``) and the people's charts.

Plain reads and writes on the store's database, each named for what it answers; the services
decide what to do with them. Writes that are part of a bigger change (an edit with its new
vectors, a forget, a merge, an import) run inside the caller's ``Store.transaction()``, which
they join. Which tables hold a person's data is ``assistant.store.person_tables``.
"""

from __future__ import annotations


from assistant.store import context_turns, person_tables
from assistant.store.store import Exchange, Store, _title, now

# Figures and search

def figures(store: Store, profile_id: int) -> dict:
    """Exchanges, conversations, first and last seen, cloud and answered counts of one person."""
    return store.rows(
        """SELECT COUNT(*) AS n, COUNT(DISTINCT session_id) AS sessions, MIN(created_at) AS first,
                  MAX(created_at) AS last, SUM(route = 'cloud') AS cloud, SUM(status = 'complete') AS answered
           FROM exchanges WHERE profile_id = ?""", (profile_id,))[0]


def cluster_sizes(store: Store, profile_id: int, top: int) -> list[dict]:
    """The person's largest query clusters: ``cluster``, ``n`` and the latest-sorting ``example``."""
    return store.rows(
        """SELECT cluster, COUNT(*) AS n, MAX(user_text) AS example FROM exchanges WHERE profile_id = ?
           AND status = 'complete' AND cluster IS NOT NULL GROUP BY cluster ORDER BY n DESC, cluster LIMIT ?""",
        (profile_id, top))


def cluster_examples(store: Store, profile_id: int, cluster: int, limit: int) -> list[str]:
    rows = store.rows(
        """SELECT user_text FROM exchanges WHERE profile_id = ? AND cluster = ? AND status = 'complete'
           ORDER BY id DESC LIMIT ?""", (profile_id, cluster, limit))
    return [r["user_text"] for r in rows]


def recent_memory_ids(store: Store, profile_id: int, limit: int) -> list[int]:
    rows = store.rows("SELECT id FROM exchanges WHERE profile_id = ? AND status = 'complete' ORDER BY id DESC LIMIT ?",
                      (profile_id, limit))
    return [r["id"] for r in rows]


def word_match_ids(store: Store, profile_id: int, words: list[str], limit: int) -> list[int]:
    """The person's complete exchanges containing every word (case-insensitive), newest first."""
    like = " AND ".join("(lower(user_text) LIKE ? ESCAPE '\\' OR lower(COALESCE(reply, '')) LIKE ? ESCAPE '\\')"
                        for _ in words)
    params = [p for w in words for p in (_pattern(w),) * 2]
    rows = store.rows(
        f"SELECT id FROM exchanges WHERE profile_id = ? AND status = 'complete' AND {like} ORDER BY id DESC LIMIT ?",
        (profile_id, *params, limit))
    return [r["id"] for r in rows]


def _pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def created_times(store: Store, profile_id: int) -> list[dict]:
    """``id`` and ``created_at`` of every exchange of the person, oldest first."""
    return store.rows("SELECT id, created_at FROM exchanges WHERE profile_id = ? ORDER BY id", (profile_id,))


def answered_routes(store: Store, people: list[int]) -> list[dict]:
    """``profile_id``, ``created_at`` and ``route`` of these people's complete exchanges."""
    return store.rows_in("SELECT profile_id, created_at, route FROM exchanges WHERE status = 'complete' "
                         "AND profile_id IN ({ids})", people)


# Edits, forgetting and merging (inside the caller's transaction)

def rewrite_exchange(store: Store, old: Exchange, user_text: str, reply: str, contexts: dict[int, str],
                     cluster: int | None) -> None:
    """New text for one exchange (marked corrected: ``edited_at``), the contexts quoting it, a
    title made from its old words."""
    with store.transaction() as db:
        db.execute("UPDATE exchanges SET user_text = ?, reply = ?, edited_at = ? WHERE id = ?",
                   (user_text, reply, now(), old.id))  # a corrected reply is the person's to learn from
        db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title = ?",  # a title quoting the old words
                   (_title(user_text), old.session_id, _title(old.user_text)))
        set_contexts(store, contexts)
        if cluster is not None:
            db.execute("UPDATE exchanges SET cluster = ? WHERE id = ?", (cluster, old.id))


def set_contexts(store: Store, contexts: dict[int, str]) -> None:
    with store.transaction() as db:
        db.conn.executemany("UPDATE exchanges SET context = ? WHERE id = ?", [(c, i) for i, c in contexts.items()])


def quoting(store: Store) -> list[Exchange]:
    """Every exchange with context turns or a record of a cloud payload: what may quote someone."""
    return [Exchange(**r) for r in store.rows(
        "SELECT * FROM exchanges WHERE context NOT IN ('', '[]') OR cloud_payload IS NOT NULL ORDER BY id")]


def in_sessions(store: Store, sessions: list[int]) -> list[Exchange]:
    return [Exchange(**r) for r in store.rows_in("SELECT * FROM exchanges WHERE session_id IN ({ids})", sessions)]


def forget_rows(store: Store, profile_id: int, ids: list[int], contexts: dict[int, list[dict]],
                payloads: list[int], sessions: list[int], texts: set[str]) -> None:
    """Delete the exchanges (and every row referring to them), the forgotten turns from later
    contexts, the cloud records that may quote them, emptied conversations and quoting titles."""
    with store.transaction() as db:
        person_tables.deleting_exchanges(db, ids)
        db.conn.executemany("UPDATE exchanges SET context = ? WHERE id = ?",
                            [(context_turns.encode(clean), i) for i, clean in contexts.items()])
        db.conn.executemany("UPDATE exchanges SET cloud_payload = NULL WHERE id = ?", [(i,) for i in payloads])
        for session_id in sessions:
            _tidy_session(db, session_id, texts)
        db.execute("""DELETE FROM prototypes WHERE profile_id = ? AND NOT EXISTS (SELECT 1 FROM exchanges e
                      JOIN vectors v ON v.exchange_id = e.id WHERE e.profile_id = ? AND e.status = 'complete')""",
                   (profile_id, profile_id))


def _tidy_session(db, session_id: int, texts: set[str]) -> None:
    """Delete a conversation left empty; remake a title that quoted a forgotten message."""
    first = db.execute("SELECT user_text FROM exchanges WHERE session_id = ? ORDER BY id LIMIT 1", (session_id,)).fetchone()
    if first is None:
        db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return
    title = db.execute("SELECT title FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
    if any(title == _title(text) or (title and title in text) for text in texts):
        db.execute("UPDATE sessions SET title = ? WHERE id = ?", (_title(first[0]), session_id))


def merge_people(store: Store, moving, keeping) -> None:
    """Every row of ``moving`` becomes ``keeping``'s, the stricter cloud consent and the earlier
    creation time win, and ``moving`` is deleted (its recomputed rows with it)."""
    with store.transaction() as db:
        person_tables.merging_people(db, moving.id, keeping.id)
        db.execute("UPDATE profiles SET cloud_allowed = ?, created_at = ? WHERE id = ?",
                   (int(moving.cloud_allowed and keeping.cloud_allowed), min(moving.created_at, keeping.created_at),
                    keeping.id))
        db.execute("DELETE FROM profiles WHERE id = ?", (moving.id,))


# Export and import

def sessions_oldest_first(store: Store, profile_id: int) -> list[dict]:
    return store.rows("SELECT * FROM sessions WHERE profile_id = ? ORDER BY created_at, id", (profile_id,))


def exchange_keys(store: Store, profile_id: int) -> set[tuple]:
    """(question, reply, created_at) of every exchange of the person: what an import skips."""
    rows = store.rows("SELECT user_text, reply, created_at FROM exchanges WHERE profile_id = ?", (profile_id,))
    return {(r["user_text"], r["reply"], r["created_at"]) for r in rows}


def add_conversation(store: Store, profile_id: int, title: str, created_at: str) -> int:
    with store.transaction() as db:
        return db.execute("INSERT INTO sessions (profile_id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                          (profile_id, title, created_at, created_at)).lastrowid


def add_exported_exchange(store: Store, session_id: int, profile_id: int, e) -> int:
    """One exchange of an export (``assistant.people.portable_format``), stored as it was."""
    with store.transaction() as db:
        return db.execute(
            """INSERT INTO exchanges (session_id, profile_id, user_text, reply, context, status, route,
               model, source, created_at, completed_at) VALUES (?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?)""",
            (session_id, profile_id, e.user_text, e.reply, context_turns.encode(e.context), e.route, e.model,
             e.source, e.created_at, e.completed_at)).lastrowid


def touch_conversation(store: Store, session_id: int, stamp: str) -> None:
    with store.transaction() as db:
        db.execute("UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?", (stamp, session_id))


def set_origin(store: Store, profile_id: int, created_at: str, cloud_allowed: bool) -> None:
    """A person imported from a file keeps the file's creation time and cloud consent."""
    with store.transaction() as db:
        db.execute("UPDATE profiles SET created_at = ?, cloud_allowed = ? WHERE id = ?",
                   (created_at, int(cloud_allowed), profile_id))
