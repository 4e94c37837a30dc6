"""Export, import and forgetting of one person's memories, on the real store, encoder and index."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from assistant.errors import InputError, StoreError
from assistant.people.forgetting import forget
from assistant.memory.memory import Memory
from assistant.people.portable import FORMAT, export_profile, import_profile, write_export
from assistant.memory.recall import recall_memories
from assistant.settings import load_settings
from assistant.store import context_turns
from assistant.store.store import GenerationStats, Store
from assistant.store.turn_log import TurnLog

ROOT = Path(__file__).parent.parent
STATS = GenerationStats("local", "test-model", 12.0, 8, 40.0)


def memory_at(data_dir: Path) -> Memory:
    settings = load_settings(data_dir=data_dir, max_tokens=32, temperature=0.0, seed=3)
    return Memory(settings, Store(settings.database_path))


def say(memory: Memory, session, text: str, reply: str, when: str) -> int:
    """One chat turn the way the pipeline stores it (begin, complete, remember), dated ``when``."""
    store = memory.store
    last = store.session_exchanges(session.id, last=1, complete_only=True)
    exchange_id = TurnLog(store).begin_exchange(session.id, session.profile_id, text, [t for e in last for t in (e.user_text, e.reply)])
    TurnLog(store).complete_exchange(exchange_id, reply, STATS)
    with store.transaction() as db:
        db.execute("UPDATE exchanges SET created_at = ?, completed_at = ? WHERE id = ?", (when, when, exchange_id))
        db.execute("UPDATE sessions SET created_at = MIN(created_at, ?), updated_at = ? WHERE id = ?",
                   (when, when, session.id))
    memory.remember(store.exchange(exchange_id))
    return exchange_id


def counts(store: Store) -> dict:
    return {t: store.rows(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in ("profiles", "sessions", "exchanges", "vectors")}


@pytest.fixture
def alice(tmp_path):
    """Alice with two conversations (three complete exchanges and one failed), and Bob."""
    memory = memory_at(tmp_path / "source")
    store = memory.store
    store.db.execute("PRAGMA secure_delete = OFF")  # as in SQLite builds where it is not on by default
    person = store.add_profile("Alice")
    garden = store.new_session(person.id)
    say(memory, garden, "How deep should I plant tulip bulbs?", "About three times their height.", "2024-01-10T09:00:00+00:00")
    say(memory, garden, "And when do they flower?", "In April, usually.", "2024-01-10T09:05:00+00:00")
    trip = store.new_session(person.id)
    say(memory, trip, "Which train goes to Lyon tomorrow morning?", "The 7:04 from Gare de Lyon.", "2024-03-02T18:00:00+00:00")
    TurnLog(store).fail_exchange(TurnLog(store).begin_exchange(trip.id, person.id, "never answered"), "model crashed")
    bob = store.new_session(store.add_profile("Bob").id)
    say(memory, bob, "What is a good name for a cat?", "Miso.", "2024-02-01T12:00:00+00:00")
    yield memory
    store.close()


def test_round_trip_into_a_fresh_data_dir_keeps_texts_dates_and_is_recalled(alice, tmp_path):
    path = tmp_path / "alice.json"
    write_export(alice.store, "alice", path)
    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["profile"]["name"]) == (FORMAT, 1, "Alice")
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # personal data: readable by its owner only
    exported = [e["user_text"] for c in data["conversations"] for e in c["exchanges"]]
    assert "never answered" not in exported and len(exported) == 3  # only complete exchanges

    target = memory_at(tmp_path / "target")
    report = import_profile(target.store, target, path)
    assert (report.name, report.created, report.imported, report.duplicates, report.conversations) == ("Alice", True, 3, 0, 2)
    source_person, person = alice.store.profile("Alice"), target.store.profile("Alice")
    assert person.created_at == source_person.created_at

    def conversations(memory, profile_id):
        sessions = sorted(memory.store.sessions(profile_id), key=lambda s: s.created_at)
        return [(s.title, s.created_at, [(e.user_text, e.reply, e.created_at, e.completed_at, e.route, e.model, e.source, e.context)
                                         for e in memory.store.session_exchanges(s.id, complete_only=True)]) for s in sessions]

    assert conversations(target, person.id) == conversations(alice, source_person.id)
    assert context_turns.texts(conversations(target, person.id)[0][2][1][7]) == [
        "How deep should I plant tulip bulbs?", "About three times their height."]
    assert target.index.ids() == set(target.store.memory_ids(person.id))
    memories, _ = recall_memories(target, person, "Which train goes to Lyon tomorrow morning?", [], target.settings)
    assert memories and memories[0].exchange.reply == "The 7:04 from Gare de Lyon."
    target.store.close()


def test_import_merges_into_the_same_person_and_skips_what_is_there(alice, tmp_path):
    data = export_profile(alice.store, "Alice")
    before = counts(alice.store)
    again = import_profile(alice.store, alice, data)
    assert (again.created, again.imported, again.duplicates) == (False, 0, 3)
    assert counts(alice.store) == before

    data["conversations"][0]["exchanges"].append(
        {"user_text": "Do they need sun?", "reply": "Full sun is best.", "created_at": "2024-01-11T08:00:00+00:00"})
    data["conversations"].append({"title": "Bread", "created_at": "2024-05-01T10:00:00+00:00", "exchanges": [
        {"user_text": "How long should dough rise?", "reply": "Until doubled.", "created_at": "2024-05-01T10:00:00+00:00"},
        {"user_text": "How long should dough rise?", "reply": "Until doubled.", "created_at": "2024-05-01T10:00:00+00:00"}]})
    merged = import_profile(alice.store, alice, data, as_name="ALICE")
    assert (merged.name, merged.imported, merged.duplicates, merged.conversations) == ("Alice", 2, 4, 1)
    assert "2 exchanges" in merged.summary() and "4 already there, skipped" in merged.summary()
    person = alice.store.profile("Alice")
    garden = next(s for s in alice.store.sessions(person.id) if s.title.startswith("How deep"))
    assert [e.user_text for e in alice.store.session_exchanges(garden.id)][-1] == "Do they need sun?"  # joined its conversation
    added = alice.store.rows("SELECT * FROM exchanges WHERE user_text = 'Do they need sun?'")[0]
    assert (added["source"], added["created_at"], added["status"]) == ("import", "2024-01-11T08:00:00+00:00", "complete")
    assert added["id"] in alice.index.ids() and alice.vectors.get([added["id"]])[added["id"]][1] is not None

    copy = import_profile(alice.store, alice, data, as_name="Alice Twin")
    assert (copy.created, copy.imported, copy.duplicates) == (True, 5, 1)
    assert alice.store.count_exchanges(alice.store.profile("Alice Twin").id) == 5


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON (line 1"),
    (json.dumps({"format": "confidant.profile", "version": 2}), "unsupported version 2"),
    (json.dumps({"format": "something.else", "version": 1}), "not a Confidant profile export"),
    (None, "conversations[1].exchanges[0].user_text is missing"),
    ("bad time", "conversations[0].exchanges[1].created_at should be an ISO 8601 time"),
])
def test_a_malformed_file_is_refused_with_where_and_changes_nothing(alice, tmp_path, content, message):
    if content is None or content == "bad time":
        data = export_profile(alice.store, "Alice")
        data["profile"]["name"] = "Someone New"
        if content is None:
            del data["conversations"][1]["exchanges"][0]["user_text"]
        else:
            data["conversations"][0]["exchanges"][1]["created_at"] = "last Tuesday"
        content = json.dumps(data)
    path = tmp_path / "broken.json"
    path.write_text(content)
    before = counts(alice.store)
    with pytest.raises(InputError, match=r"^broken\.json") as error:
        import_profile(alice.store, alice, path)
    assert message in str(error.value)
    assert counts(alice.store) == before and alice.store.find_profile("Someone New") is None


def test_a_failed_write_leaves_no_person_no_exchange_and_no_vector(alice, monkeypatch):
    data = export_profile(alice.store, "Alice")
    before, index_before = counts(alice.store), alice.index.ids()

    def broken_put(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(alice.vectors, "put", broken_put)  # fails after the exchanges were inserted
    with pytest.raises(StoreError, match="disk I/O error"):
        import_profile(alice.store, alice, data, as_name="Carol")
    assert counts(alice.store) == before and alice.store.find_profile("Carol") is None
    assert alice.index.ids() == index_before


def raw_bytes(store: Store) -> bytes:
    wal = Path(f"{store.path}-wal")
    return store.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_forget_a_date_range_erases_exactly_those_exchanges_for_good(alice):
    store, person = alice.store, alice.store.profile("Alice")
    later = store.new_session(person.id)  # opened by a message that will be forgotten
    secret = say(alice, later, "My locker code is QUARTZ-5521", "Noted, QUARTZ-5521.", "2024-02-20T10:00:00+00:00")
    kept = say(alice, later, "Thanks, what about the gym?", "It opens at six.", "2024-04-02T07:00:00+00:00")
    assert context_turns.texts(store.exchange(kept).context) == ["My locker code is QUARTZ-5521", "Noted, QUARTZ-5521."]
    alone = store.new_session(person.id)
    lonely = say(alice, alone, "Remind me: Grandma's birthday is ORCHID-0312", "I will.", "2024-03-15T10:00:00+00:00")
    trip_train = store.rows("SELECT id FROM exchanges WHERE user_text LIKE 'Which train%'")[0]["id"]
    alice.save()
    assert b"QUARTZ-5521" in raw_bytes(store) and b"ORCHID-0312" in raw_bytes(store)  # the check below can fail
    everyone_before = set(alice.index.ids())
    prototype_before = alice.vectors.prototypes()[1][list(alice.vectors.prototypes()[0]).index(person.id)]

    forgotten = forget(*alice.parts(), alice, "alice", after="2024-02-01", before="2024-04-01")

    gone = {secret, lonely, trip_train}  # 2024-02-20, 2024-03-15 and 2024-03-02; Bob's 2024-02-01 stays
    assert forgotten == 3
    assert not store.exchanges(gone) and not store.rows(f"SELECT * FROM vectors WHERE exchange_id IN {tuple(gone)}")
    assert alice.index.ids() == everyone_before - gone
    saved = faiss.read_index(str(alice.settings.data_dir / "memory.faiss"))
    assert set(faiss.vector_to_array(saved.id_map).tolist()) == everyone_before - gone
    assert store.count_exchanges(store.profile("Bob").id) == 1
    # The lonely conversation was emptied and deleted; the other two lost the message their title quoted.
    titles = sorted(s.title for s in store.sessions(person.id))
    assert titles == ["How deep should I plant tulip bulbs?", "Thanks, what about the gym?", "never answered"]
    assert context_turns.texts(store.exchange(kept).context) == []
    ids, prototypes, _ = alice.vectors.prototypes()
    mine = alice.vectors.load(person.id).dialogue.mean(axis=0)
    assert np.allclose(prototypes[list(ids).index(person.id)], mine / np.linalg.norm(mine), atol=1e-5)
    assert not np.allclose(prototypes[list(ids).index(person.id)], prototype_before, atol=1e-3)
    raw = raw_bytes(store)
    for text in (b"QUARTZ-5521", b"ORCHID-0312", b"Gare de Lyon", b"Which train goes"):
        assert text not in raw, text
    assert b"tulip bulbs" in raw and b"It opens at six." in raw  # what was kept is still there

    assert forget(*alice.parts(), alice, "Alice") == 4  # no range: everything else Alice said, failed turns too; the profile stays
    assert store.count_exchanges(person.id) == 0 and store.sessions(person.id) == [] and store.find_profile("Alice")
    assert person.id not in alice.vectors.prototypes()[0] and b"tulip bulbs" not in raw_bytes(store)
    with pytest.raises(InputError, match="both after"):
        forget(*alice.parts(), alice, "Bob", after="2024-05-01", before="2024-01-01")


def test_cli_exports_from_one_data_dir_and_imports_into_another(tmp_path):
    source, target, path = tmp_path / "a", tmp_path / "b", tmp_path / "export" / "alice.json"
    path.parent.mkdir()
    store = Store(load_settings(data_dir=source).database_path)
    session = store.new_session(store.add_profile("Alice").id)
    for text, reply in (("Is it going to rain?", "Probably, take a coat."), ("What about tomorrow?", "Sunny.")):
        TurnLog(store).complete_exchange(TurnLog(store).begin_exchange(session.id, session.profile_id, text), reply, STATS)
    store.close()

    def confidant(*args):
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=600,
                              env=env, cwd=ROOT, stdin=subprocess.DEVNULL)

    exported = confidant("profiles", "export", "Alice", "--out", str(path), "--data-dir", str(source))
    assert exported.returncode == 0, exported.stderr
    assert "exported 2 exchanges in 1 conversations of Alice" in exported.stdout
    imported = confidant("profiles", "import", str(path), "--as", "Alicia", "--data-dir", str(target))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported 2 exchanges in 1 new conversations into Alicia (new)"
    conn = sqlite3.connect(target / "confidant.db")
    try:
        rows = conn.execute("SELECT p.name, e.user_text, e.reply FROM exchanges e JOIN profiles p ON p.id = e.profile_id "
                            "JOIN vectors v ON v.exchange_id = e.id ORDER BY e.id").fetchall()
    finally:
        conn.close()
    assert rows == [("Alicia", "Is it going to rain?", "Probably, take a coat."), ("Alicia", "What about tomorrow?", "Sunny.")]
    again = confidant("profiles", "import", str(path), "--as", "alicia", "--data-dir", str(target))
    assert again.returncode == 0 and "(2 already there, skipped)" in again.stdout
    broken = confidant("profiles", "import", str(tmp_path), "--data-dir", str(target))
    assert broken.returncode == 1 and "Traceback" not in broken.stderr and broken.stderr.startswith("confidant: ")
    refused = confidant("memory", "forget", "Alicia", "--data-dir", str(target))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    forgot = confidant("memory", "forget", "Alicia", "--before", "2999-01-01", "--yes", "--data-dir", str(target))
    assert forgot.returncode == 0 and forgot.stdout.strip() == "forgot 2 exchanges of Alicia before 2999-01-01"
