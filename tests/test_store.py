import sqlite3

import pytest

from assistant.errors import InputError, NotFoundError, StoreError
from assistant.store.migrations import MIGRATIONS
from assistant.store.store import GenerationStats, Store

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
    exchange_id = first.begin_exchange(session.id, alice.id, "hello")
    first.complete_exchange(exchange_id, "hi there", STATS)
    first.close()

    again = Store(settings.database_path)
    assert again.schema_version == len(MIGRATIONS)
    stored = again.exchange(exchange_id)
    assert (stored.user_text, stored.reply, stored.status, stored.model) == ("hello", "hi there", "complete", "test-model")
    assert again.session(session.id).title == "hello"


def test_user_message_is_committed_before_the_reply(store):
    alice = store.add_profile("Alice")
    session = store.new_session(alice.id)
    exchange_id = store.begin_exchange(session.id, alice.id, "are you there?")
    # A second connection (another process would see the same) already has the message.
    other = sqlite3.connect(store.path)
    row = other.execute("SELECT user_text, status FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
    assert row == ("are you there?", "pending")
    store.fail_exchange(exchange_id, "model crashed", "partial")
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
    exchange_id = store.begin_exchange(session.id, bob.id, "secret plans")
    store.complete_exchange(exchange_id, "ok", STATS)
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
    store.begin_exchange(session.id, first.id, "newest activity")
    assert [p.name for p in store.profiles()][0] == "First"


def test_session_history_in_order_with_limit(store):
    alice = store.add_profile("Alice")
    session = store.new_session(alice.id)
    ids = [store.begin_exchange(session.id, alice.id, f"message {i}") for i in range(5)]
    for exchange_id in ids[:4]:
        store.complete_exchange(exchange_id, "ok", STATS)
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
