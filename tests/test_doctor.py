"""`confidant doctor` on real stores: a healthy one passes; each kind of damage is reported
(exit 1) and fixed by --repair, after which a second run passes."""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.cli import main
from assistant.doctor import STUCK_ERROR, diagnose
from assistant.people.importers import ImportBatch, ImportedConversation, ImportedExchange
from assistant.memory.memory import Memory
from assistant.settings import load_settings
from assistant.store.store import Store
from profiles.tower import QuestionerEncoder
from assistant.store.turn_log import TurnLog

CHECKS = ["leftover files", "encoder", "database integrity", "foreign keys", "schema version", "pending exchanges",
          "dialogue vectors", "exchange vectors", "index"]
TALK = {
    "Alice": [("Can you suggest a quick vegetarian dinner?", "A chickpea curry with rice takes twenty minutes."),
              ("What goes well with it?", "Some warm naan and a cucumber yoghurt."),
              ("And for dessert?", "Sliced mango with a little lime.")],
    "Bob": [("yo what's the score of the match", "I can't see live scores, sorry."),
            ("ok remind me to buy batteries", "Noted: batteries."),
            ("how long to boil an egg", "About nine minutes for hard-boiled."),
            ("thx", "Any time!")],
    "Carol": [("Could you explain what a mortgage offset account is?", "It is a savings account linked to the loan."),
              ("Does it reduce the interest?", "Yes, interest is charged on the loan minus the savings."),
              ("Thank you, that is very clear.", "Glad it helped.")],
}


def settings_for(data_dir: Path):
    return load_settings(data_dir=data_dir, max_tokens=16, temperature=0.0, seed=1)


@pytest.fixture(scope="module")
def healthy_dir(tmp_path_factory):
    """Ten imported exchanges of three people, with a (small, untrained) questioner encoder."""
    data_dir = tmp_path_factory.mktemp("doctor") / "data"
    settings = settings_for(data_dir)
    memory = Memory(settings, Store(settings.database_path))
    batch = ImportBatch("test", [ImportedConversation(name, name, [ImportedExchange(q, r) for q, r in pairs])
                                 for name, pairs in TALK.items()])
    memory.ingest(batch, progress=False)
    encoder = QuestionerEncoder(settings.embedder_path, general=memory.encoders.general)
    encoder.meta = {"trained_at": "2025-01-02T03:04:05+00:00", "n_dialogues": 10, "n_queriers": 3}
    encoder.save(memory.encoders.encoder_dir)
    memory.sync_dialogue_vectors()
    memory.save()
    memory.store.close()
    return data_dir


@pytest.fixture
def data_dir(healthy_dir, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(healthy_dir, copy)
    return copy


def sql(data_dir, statement, params=()):
    conn = sqlite3.connect(data_dir / "confidant.db")
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def doctor(data_dir, *flags, capsys):
    code = main(["doctor", "--data-dir", str(data_dir), *flags])
    return code, capsys.readouterr().out


def test_a_healthy_store_passes(data_dir, capsys):
    findings = diagnose(settings_for(data_dir))
    assert [f.name for f in findings] == CHECKS
    assert all(f.ok and not f.repaired for f in findings), findings
    code, out = doctor(data_dir, capsys=capsys)
    assert code == 0 and "ok  database integrity" in out and "PROBLEM" not in out
    assert "ok  index: 10 exchanges" in out


def delete_index(data_dir):
    (data_dir / "memory.faiss").unlink()


def add_extra_id(data_dir):
    index = faiss.read_index(str(data_dir / "memory.faiss"))
    index.add_with_ids(np.ones((1, index.d), dtype=np.float32), np.array([999], dtype=np.int64))
    faiss.write_index(index, str(data_dir / "memory.faiss"))


def garble_index(data_dir):
    (data_dir / "memory.faiss").write_bytes(b"not an index at all")


def change_a_vector(data_dir):
    index = faiss.read_index(str(data_dir / "memory.faiss"))
    index.remove_ids(np.array([3], dtype=np.int64))
    index.add_with_ids(np.zeros((1, index.d), dtype=np.float32), np.array([3], dtype=np.int64))
    faiss.write_index(index, str(data_dir / "memory.faiss"))


def leave_pending(data_dir):
    store = Store(data_dir / "confidant.db")
    profile = store.profile("Alice")
    TurnLog(store).begin_exchange(store.new_session(profile.id).id, profile.id, "are you still there?")
    store.close()


def delete_vectors_row(data_dir):
    sql(data_dir, "DELETE FROM vectors WHERE exchange_id = 4")


def corrupt_meta(data_dir):
    (data_dir / "encoder" / "meta.json").write_text('{"trained_at": "2025-01-02')


def leave_temp_files(data_dir):
    (data_dir / ".encoder.k2x9q").mkdir()
    (data_dir / ".encoder.k2x9q" / "head.pt").write_bytes(b"half")
    (data_dir / "memory.faissab12.tmp").write_bytes(b"half")
    (data_dir / ".tuned-model.gguf.7.8.partial").write_bytes(b"half")  # a merge cut short


def make_vectors_stale(data_dir):
    sql(data_dir, "UPDATE state SET value = 'questioner:2024-01-01T00:00:00+00:00' WHERE key = 'dialogue_encoder'")


def pending_became_failed(data_dir):
    assert sql(data_dir, "SELECT user_text, status, error FROM exchanges WHERE status != 'complete'") == [
        ("are you still there?", "failed", STUCK_ERROR)]


def vectors_are_back(data_dir):
    assert sql(data_dir, "SELECT COUNT(*) FROM vectors WHERE exchange_id = 4") == [(1,)]


def encoder_set_aside(data_dir):
    assert not (data_dir / "encoder").exists() and len(list(data_dir.glob("encoder.broken-*"))) == 1
    assert sql(data_dir, "SELECT value FROM state WHERE key = 'dialogue_encoder'") == [("general",)]


def temp_files_gone(data_dir):
    assert not list(data_dir.glob(".encoder.*")) and not list(data_dir.glob("*.tmp")) and not list(data_dir.glob(".*.partial"))


DAMAGE = [
    (delete_index, "index: memory.faiss is missing (10 exchanges to index)", None),
    (add_extra_id, "index: 1 extra", None),
    (garble_index, "index: memory.faiss cannot be read", None),
    (change_a_vector, "index: 1 vectors differ from the store", None),
    (leave_pending, "pending exchanges: 1 never finished (ids 11)", pending_became_failed),
    (delete_vectors_row, "exchange vectors: 1 complete exchange has none", vectors_are_back),
    (corrupt_meta, "encoder: ", encoder_set_aside),
    (leave_temp_files, "leftover files: 3 left by interrupted writes: .encoder.k2x9q, .tuned-model.gguf.7.8.partial, "
     "memory.faissab12.tmp",
     temp_files_gone),
    (make_vectors_stale, "dialogue vectors: made by questioner:2024-01-01", None),
]


@pytest.mark.parametrize("damage, reported, check_repair", DAMAGE, ids=[d[0].__name__ for d in DAMAGE])
def test_damage_is_reported_and_repaired(data_dir, capsys, damage, reported, check_repair):
    damage(data_dir)
    code, out = doctor(data_dir, capsys=capsys)
    assert code == 1 and f"PROBLEM  {reported}" in out and "run with --repair" in out, out
    code, out = doctor(data_dir, "--repair", capsys=capsys)
    assert code == 0 and f"repaired  {reported}" in out and "PROBLEM" not in out, out
    if check_repair:
        check_repair(data_dir)
    code, out = doctor(data_dir, capsys=capsys)
    assert code == 0 and "PROBLEM" not in out and "repaired" not in out, out


def test_what_cannot_be_repaired_is_left_alone(data_dir, capsys):
    sql(data_dir, "INSERT INTO sessions (profile_id, title, created_at, updated_at) VALUES (77, 't', 'x', 'x')")
    code, out = doctor(data_dir, "--repair", capsys=capsys)
    assert code == 1 and "PROBLEM  foreign keys: 1 row points at rows that are gone (sessions → profiles)" in out
    assert "pending exchanges" not in out  # the checks that need a sound database are skipped

    sql(data_dir, "DELETE FROM sessions WHERE profile_id = 77")
    sql(data_dir, "PRAGMA user_version = 99")
    code, out = doctor(data_dir, capsys=capsys)
    assert code == 1 and "PROBLEM  schema version: 99 is newer than this Confidant" in out and "--repair" not in out


def test_an_empty_data_dir_is_fine(tmp_path, capsys):
    code, out = doctor(tmp_path / "nothing", capsys=capsys)
    assert code == 0 and "ok  database integrity: no database yet" in out


def test_the_command_line(data_dir):
    delete_index(data_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "app.cli", "doctor", "--data-dir", str(data_dir)]
    found = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert found.returncode == 1 and "PROBLEM  index: memory.faiss is missing" in found.stdout, found.stderr
    repaired = subprocess.run([*command, "--repair"], capture_output=True, text=True, timeout=600, env=env)
    assert repaired.returncode == 0 and "repaired  index" in repaired.stdout, repaired.stderr
    assert (data_dir / "memory.faiss").is_file()
