import sqlite3

import pytest

from assistant.errors import InputError, NotFoundError, StoreError
from assistant.store.migrations import MIGRATIONS
from assistant.store.store import GenerationStats, Store
from assistant.store.turn_log import TurnLog

STATS = GenerationStats(route="local", model="test-model", ttft_ms=12.5, tokens=3, tokens_per_s=40.0)


def test_fresh_database_is_migrated_and_in_wal_mode(store):
    assert store.schema_version == len(MIGRATIONS)
    tables = set(store.db.table_names())
    assert {"profiles", "sessions", "exchanges"} <= tables
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_survives_reopen_and_migration_is_idempotent(settings):
    first = Store(settings.database_path)
    alice = first.add_profile("Alice")
    session = first.new_session(alice.id)
    exchange_id = TurnLog(first).begin_exchange(session.id, alice.id, "hello")
    TurnLog(first).complete_exchange(exchange_id, "hi there", STATS)
    first.close()

    again = Store(settings.database_path)
    assert again.schema_version == len(MIGRATIONS)
    stored = again.exchange(exchange_id)
    assert (stored.user_text, stored.reply, stored.status, stored.model) == ("hello", "hi there", "complete", "test-model")
    assert again.session(session.id).title == "hello"


def test_user_message_is_committed_before_the_reply(store):
    alice = store.add_profile("Alice")
    session = store.new_session(alice.id)
    exchange_id = TurnLog(store).begin_exchange(session.id, alice.id, "are you there?")
    # A second connection (another process would see the same) already has the message.
    other = sqlite3.connect(store.path)
    row = other.execute("SELECT user_text, status FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
    assert row == ("are you there?", "pending")
    TurnLog(store).fail_exchange(exchange_id, "model crashed", "partial")
    row = other.execute("SELECT user_text, status, error, reply FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
    assert row == ("are you there?", "failed", "model crashed", "partial")


def test_names_are_trimmed_and_unique_ignoring_case(store):
    assert store.add_profile("  Ana   María ").name == "Ana María"
    with pytest.raises(InputError, match="already"):
        store.add_profile("ana maría")
    with pytest.raises(InputError, match="enter a name"):
        store.add_profile("   ")
    with pytest.raises(InputError, match="at most"):
        store.add_profile("x" * 200)
    assert store.add_profile("שרה 🌟").name == "שרה 🌟"


def test_rename_and_delete_cascade(store):
    bob = store.add_profile("Bob")
    session = store.new_session(bob.id)
    exchange_id = TurnLog(store).begin_exchange(session.id, bob.id, "secret plans")
    TurnLog(store).complete_exchange(exchange_id, "ok", STATS)
    carol = store.add_profile("Carol")
    with pytest.raises(InputError):
        store.rename_profile("Bob", "carol")
    assert store.rename_profile("bob", "Robert").name == "Robert"
    store.delete_profile("Robert")
    assert [p.name for p in store.profiles()] == [carol.name]
    assert store.count_exchanges() == 0
    with pytest.raises(NotFoundError):
        store.session(session.id)


def test_profiles_listed_most_recently_active_first(store):
    first = store.add_profile("First")
    store.add_profile("Second")
    session = store.new_session(first.id)
    TurnLog(store).begin_exchange(session.id, first.id, "newest activity")
    assert [p.name for p in store.profiles()][0] == "First"


def test_session_history_in_order_with_limit(store):
    alice = store.add_profile("Alice")
    session = store.new_session(alice.id)
    ids = [TurnLog(store).begin_exchange(session.id, alice.id, f"message {i}") for i in range(5)]
    for exchange_id in ids[:4]:
        TurnLog(store).complete_exchange(exchange_id, "ok", STATS)
    last_two = store.session_exchanges(session.id, last=2, complete_only=True)
    assert [e.user_text for e in last_two] == ["message 2", "message 3"]
    assert len(store.session_exchanges(session.id)) == 5


def test_database_from_a_newer_version_is_refused(settings):
    Store(settings.database_path).close()
    conn = sqlite3.connect(settings.database_path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(settings.database_path)


def test_unreadable_database_gives_a_store_error(tmp_path):
    path = tmp_path / "confidant.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="could not open"):
        Store(path)


def per_person_columns(store) -> set[tuple[str, str]]:
    """(table, column) of every column pointing at a profile or an exchange: a foreign key to
    one, or a column named for one."""
    found = set()
    for table in store.db.table_names():
        for key in store.db.execute(f"PRAGMA foreign_key_list({table})").fetchall():
            if key[2] in ("profiles", "exchanges"):
                found.add((table, key[3]))
        for column in store.db[table].columns:
            if column.name in ("profile_id", "exchange_id", "identified_as"):
                found.add((table, column.name))
    return found


def declared_columns() -> set[tuple[str, str]]:
    from assistant.store.person_tables import PERSON_TABLES

    return {(t.table, t.column) for t in PERSON_TABLES}


def test_every_table_holding_a_persons_data_is_declared(store):
    """Such a table holds someone's data: forget, merge, delete and export reach it only if declared."""
    found = per_person_columns(store)
    assert found and found - declared_columns() == set(), "declare them in assistant/store/person_tables.py"
    assert declared_columns() <= found  # nothing declared that the schema no longer has


def test_a_new_per_person_table_fails_the_declaration_check(store):
    """The check above is not vacuous: a table added with a profile reference is caught."""
    with store.transaction() as db:
        db.execute("CREATE TABLE facts (id INTEGER PRIMARY KEY, person INTEGER REFERENCES profiles(id))")
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, exchange_id INTEGER)")
    assert per_person_columns(store) - declared_columns() == {("facts", "person"), ("notes", "exchange_id")}


def test_deleting_a_person_clears_guesses_that_pointed_at_them(store):
    alice, bob = store.add_profile("Alice"), store.add_profile("Bob")
    session = store.new_session(bob.id)
    exchange_id = TurnLog(store).begin_exchange(session.id, bob.id, "hello")
    TurnLog(store).record_identification(exchange_id, alice.id, 0.9)
    store.delete_profile("Alice")
    assert store.exchange(exchange_id).identified_as is None
    assert store.count_exchanges(bob.id) == 1
