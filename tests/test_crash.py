"""Crash safety (issue 6, point 1): SIGKILL at random moments and at the two commits of a turn.

The random run is the short version of ``make soak`` (``tests/crash_harness.py``: the real CLI,
the real model, real SQLite and FAISS; its docstring lists every check). The fixed-point runs
kill a real turn right after one of the store's commits, or an index save between writing the
new file and renaming it, the injected fault being the SIGKILL itself; then they run what
start-up runs and ask doctor.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from assistant.doctor import diagnose
from assistant.memory.memory import Memory
from assistant.pipeline import Assistant
from assistant.settings import load_settings
from assistant.store.store import Store
from tests.crash_harness import REPO, Soak, child_env

MESSAGE = "What should I cook tonight?"

# A real turn in a child process that SIGKILLs itself right after the named TurnLog method commits.
DIE_AFTER = """
import os, signal, sys
from assistant.pipeline import Assistant
from assistant.settings import load_settings
from assistant.store.turn_log import TurnLog
data_dir, method, message = sys.argv[1:4]
original = getattr(TurnLog, method)
def then_die(self, *args, **kwargs):
    original(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # the power cut, right after this commit
setattr(TurnLog, method, then_die)
assistant = Assistant(load_settings(data_dir=data_dir))
for _ in assistant.turn(message, assistant.store.get_or_add_profile("Alice").id):
    pass
"""


def test_random_sigkills_lose_nothing_acknowledged_and_leave_a_consistent_store(tmp_path):
    # doctor's checks run in process after every kill; `confidant doctor` itself is tested in test_doctor.py
    report = Soak(tmp_path / "data", kills=4, turns=16, seed=6, max_tokens=8, history_turns=2,
                  doctor_at_end=False).run()
    assert report.kills >= 4 and report.turns_acknowledged >= 16
    assert report.violations == []  # integrity, acknowledged turns, torn exchanges, index, doctor
    assert report.checks >= 4 and report.integrity_ok == report.checks
    assert report.stored.get("complete", 0) >= report.turns_acknowledged


def die_after(data_dir, method: str) -> None:
    done = subprocess.run([sys.executable, "-c", DIE_AFTER, str(data_dir), method, MESSAGE], cwd=REPO,
                          env=child_env(max_tokens=4, history_turns=2), capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A data dir left by a kill right after ``begin_exchange`` or ``complete_exchange``; each
    test gets its own copy, since start-up repairs in place."""
    made = {}

    def copy(method: str, to):
        if method not in made:
            made[method] = tmp_path_factory.mktemp(method) / "data"
            die_after(made[method], method)
        shutil.copytree(made[method], to)
        return to

    return copy


def stored(data_dir) -> list[tuple]:
    conn = sqlite3.connect(data_dir / "confidant.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return conn.execute("SELECT id, user_text, status, reply FROM exchanges").fetchall()
    finally:
        conn.close()


def test_a_message_committed_just_before_a_crash_is_kept(tmp_path, crashed):
    [(_, text, status, reply)] = stored(crashed("begin_exchange", tmp_path / "data"))
    assert (text, status, reply) == (MESSAGE, "pending", None)  # what was typed survives; no reply is made up


def test_a_turn_cut_by_a_crash_is_closed_at_the_next_start_up(tmp_path, crashed):
    data_dir = crashed("begin_exchange", tmp_path / "data")
    settings = load_settings(data_dir=data_dir)
    Assistant(settings).memory.index  # start-up
    [(_, text, status, _)] = stored(data_dir)
    assert (text, status) == (MESSAGE, "failed")
    assert [f.name for f in diagnose(settings) if not f.ok] == []


def test_a_reply_committed_just_before_a_crash_is_kept(tmp_path, crashed):
    [(_, text, status, reply)] = stored(crashed("complete_exchange", tmp_path / "data"))
    assert (text, status) == (MESSAGE, "complete") and reply


def test_a_reply_committed_just_before_a_crash_is_indexed_at_the_next_start_up(tmp_path, crashed):
    data_dir = crashed("complete_exchange", tmp_path / "data")
    settings = load_settings(data_dir=data_dir)
    store = Store(settings.database_path)
    index = Memory(settings, store).index  # start-up
    complete = {i for i, _, status, _ in stored(data_dir) if status == "complete"}
    assert complete and index.ids() == complete
    store.close()
    assert [f.name for f in diagnose(settings) if not f.ok] == []


# The index is saved while new ids come in; the power cut lands after the new file is written,
# before it is fsynced and renamed over the old one.
KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import numpy as np
from assistant.memory.index import MemoryIndex
vectors = np.random.default_rng(0).normal(size=(20, 16)).astype("float32")
index = MemoryIndex.rebuild(np.arange(1, 11), vectors[:10], 16, Path(sys.argv[1]))
index.save()  # the old index: ids 1 to 10
index.add(np.arange(11, 21), vectors[10:])
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
index.save()
"""


def test_an_index_save_killed_midway_leaves_the_old_index_whole(tmp_path):
    import faiss

    path = tmp_path / "memory.faiss"
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    index = faiss.read_index(str(path))
    assert sorted(faiss.vector_to_array(index.id_map).tolist()) == list(range(1, 11))
    settings = load_settings(data_dir=tmp_path)
    [leftover] = [f for f in diagnose(settings) if f.name == "leftover files"]
    assert not leftover.ok and ".memory.faiss." in leftover.detail  # the temporary file, reported...
    diagnose(settings, repair=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.faiss"]  # ...and removed by --repair
