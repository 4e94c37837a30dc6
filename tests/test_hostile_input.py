"""Hostile input (issue 6, point 4): each gives one clear message, no traceback, and loses nothing.

Messages go through the real pipeline (real model, real SQLite); names through the real store;
the CLI through a subprocess so its exit code and stderr are what a user sees.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from assistant.errors import InputError, ModelError, StoreError
from assistant.models.local import LocalModel
from assistant.pipeline import Assistant, Finished
from assistant.settings import bundled_model_path, load_settings
from assistant.store.store import GenerationStats, Store
from assistant.store.turn_log import TurnLog


@pytest.mark.parametrize("message, expected", [
    ("", "The message is empty"),
    ("   \n\t  ", "The message is empty"),
    ("\x00\x01\x02", "The message is empty"),  # only control characters: nothing left to answer
    ("x" * 1_000_001, "the limit is 8,000"),
    (12345, "A message must be text"),
])
def test_bad_messages_are_refused_clearly_and_store_nothing(assistant, store, message, expected):
    alice = store.add_profile("Alice")
    with pytest.raises(InputError, match=expected):
        list(assistant.turn(message, alice.id))
    assert store.count_exchanges() == 0


@pytest.mark.parametrize("message, stored", [
    (b"caf\xc3\xa9 \xff\xfe ok", "café \ufffd\ufffd ok"),      # invalid UTF-8 bytes: replaced, not fatal
    ("tab\tand\x07bell\x1b[31m", "tab\tandbell[31m"),         # control characters dropped, tab kept
    ("emoji 🎉 and עברית مرحبا", "emoji 🎉 and עברית مرحبا"),  # emoji and right-to-left text kept as typed
])
def test_odd_but_valid_messages_are_answered_and_stored_cleanly(assistant, store, message, stored):
    bo = store.add_profile("Bo")
    finished = list(assistant.turn(message, bo.id))[-1]
    assert isinstance(finished, Finished) and finished.exchange.status == "complete"
    assert store.exchange(finished.exchange.id).user_text == stored


@pytest.mark.parametrize("name, expected", [
    ("", "Please enter a name"),
    ("   ", "Please enter a name"),
    ("evil\u0007", "control characters"),
    ("x" * 61, "at most 60"),
])
def test_bad_names_are_refused_clearly(store, name, expected):
    with pytest.raises(InputError, match=expected):
        store.add_profile(name)
    assert store.profiles() == []


def test_emoji_and_right_to_left_names_are_kept(store):
    assert store.add_profile("Zoë 🌻").name == "Zoë 🌻"
    assert store.add_profile("مريم").name == "مريم"
    assert sorted(p.name for p in store.profiles()) == sorted(["مريم", "Zoë 🌻"])


def run_cli(*args, stdin="", tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFIDANT_MAX_TOKENS": "8"}
    return subprocess.run([sys.executable, "-m", "app.cli", *args, "--data-dir", str(tmp_path / "data")],
                          input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_the_cli_answers_bad_lines_with_one_line_each_and_keeps_going(tmp_path):
    done = run_cli("chat", "--as", "Cy", "--create", stdin="   \n" + "y" * 9000 + "\nhello\n", tmp_path=tmp_path)
    assert done.returncode == 1  # some lines were refused
    errors = [line for line in done.stderr.splitlines() if line.startswith("confidant:")]
    assert errors == ["confidant: This message is 9,000 characters long; the limit is 8,000. Please shorten it."]
    assert "Traceback" not in done.stderr and done.stdout.strip()  # the good line was still answered


def test_a_missing_model_file_is_one_clear_line(tmp_path):
    env_model = {"CONFIDANT_MODEL_PATH": str(tmp_path / "nope.gguf")}
    done = subprocess.run([sys.executable, "-m", "app.cli", "chat", "--as", "Di", "--create", "--data-dir", str(tmp_path)],
                          input="hi\n", capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env_model})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"confidant: setting 'model_path' (CONFIDANT_MODEL_PATH): no GGUF file at {tmp_path / 'nope.gguf'}"


# --- a corrupt model file, a read-only or full data directory (the rest of point 4) -------------

def first_lines(stderr: str) -> list[str]:
    """What the CLI said as itself (progress bars of the libraries it loads aside)."""
    return [line for line in stderr.splitlines() if line.startswith("confidant:")]


def remember_the_milk(data_dir) -> list[tuple]:
    """A store with one finished exchange; returns its rows, to compare with after the ordeal."""
    store = Store(data_dir / "confidant.db")
    alice = store.add_profile("Alice")
    exchange_id = TurnLog(store).begin_exchange(store.new_session(alice.id).id, alice.id, "remember the milk")
    TurnLog(store).complete_exchange(exchange_id, "Noted: milk.", GenerationStats("local", "test", 1.0, 2, 1.0))
    store.close()
    return rows(data_dir)


def rows(data_dir) -> list[tuple]:
    conn = sqlite3.connect(data_dir / "confidant.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return conn.execute("SELECT id, profile_id, user_text, status, reply FROM exchanges ORDER BY id").fetchall()
    finally:
        conn.close()


def chat_cli(data_dir, stdin: str, **env) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFIDANT_MAX_TOKENS": "4", "CONFIDANT_N_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-m", "app.cli", "chat", "--as", "Alice", "--create", "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=300)


def corrupt_model(tmp_path, kind: str) -> Path:
    real = bundled_model_path().read_bytes()
    path = tmp_path / f"{kind}.gguf"
    path.write_bytes({"random": os.urandom(1 << 20), "truncated": real[: len(real) // 3],
                      "header only": real[:4] + os.urandom(4096)}[kind])
    return path


@pytest.mark.parametrize("kind", ["random", "truncated", "header only"])
def test_a_corrupt_model_file_is_one_clear_error(tmp_path, kind):
    path = corrupt_model(tmp_path, kind)
    with pytest.raises(ModelError, match=f"could not load the local model {re.escape(str(path))}: .*valid GGUF file"):
        LocalModel(load_settings(data_dir=tmp_path, model_path=path))


def test_the_cli_says_the_model_is_corrupt_in_one_line_and_keeps_the_message(tmp_path):
    data_dir = tmp_path / "data"
    before = remember_the_milk(data_dir)
    done = chat_cli(data_dir, "hello\n", CONFIDANT_MODEL_PATH=str(corrupt_model(tmp_path, "truncated")))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert first_lines(done.stderr) == [f"confidant: could not load the local model {tmp_path / 'truncated.gguf'}: "
                                        f"Failed to load model from file: {tmp_path / 'truncated.gguf'}. Check that "
                                        "CONFIDANT_MODEL_PATH points to a valid GGUF file."]
    after = rows(data_dir)
    assert after[: len(before)] == before  # nothing stored is lost
    assert [(text, status) for _, _, text, status, _ in after[len(before):]] == [("hello", "failed")]  # nor typed


def on_a_small_disk(test):
    """Run ``test`` where it may mount a small disk: as it is for root, and otherwise again in a
    user and mount namespace of its own (``unshare -Urm``: root there, nobody's disks touched).
    With neither, the test fails saying so: it never passes without having run."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        if os.geteuid() == 0:
            return test(*args, **kwargs)
        if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode:
            pytest.fail("a real full or read-only disk needs root or unprivileged user namespaces "
                        "(unshare -Urm); run the tests as root or enable user namespaces")
        done = subprocess.run(["unshare", "-Urm", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"{__file__}::{test.__name__}"], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-4000:]
    return run


@contextmanager
def small_disk(path: Path, size: str = "2m"):
    """A tmpfs of ``size`` mounted at ``path``: a real full or read-only disk (``on_a_small_disk``)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path) -> None:
    try:
        with open(folder / "filler", "wb", buffering=0) as handle:
            while True:
                handle.write(bytes(65536))
    except OSError:  # ENOSPC: the disk is full now
        pass


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


@on_a_small_disk
def test_a_read_only_data_directory_is_one_clear_line_and_loses_nothing(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        before = remember_the_milk(disk)
        remount(disk, "ro")
        done = chat_cli(disk, "hello\n")
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert first_lines(done.stderr) == [f"confidant: could not open the database {disk / 'confidant.db'}: the "
                                            f"data directory {disk} is on a read-only file system; use a writable "
                                            "--data-dir"]
        remount(disk, "rw")
        assert rows(disk) == before


@on_a_small_disk
def test_a_full_data_directory_is_one_clear_line_and_loses_nothing(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        before = remember_the_milk(disk)
        fill(disk)
        done = chat_cli(disk, "hello\n")
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert first_lines(done.stderr) == [f"confidant: could not open the database {disk / 'confidant.db'}: "
                                            f"the disk holding {disk} is full; free some space"]
        (disk / "filler").unlink()
        assert rows(disk) == before


@on_a_small_disk
def test_a_disk_that_fills_up_mid_chat_is_one_clear_line_and_loses_nothing(tmp_path):
    from tests.crash_harness import Chat, child_env

    with small_disk(tmp_path / "disk") as disk:
        before = remember_the_milk(disk)
        chat = Chat(disk, "Alice", child_env(max_tokens=4, history_turns=2))
        chat.send("y" * 9000)  # refused at once: proof that the CLI is up, its database open
        deadline = time.monotonic() + 120
        while b"limit is 8,000" not in chat.err and time.monotonic() < deadline:
            chat.pump(0.1)
        refused = len(chat.err)
        fill(disk)
        chat.send("a message after the disk filled up")
        assert chat.close() == 1
        said = chat.err[refused:].decode()
        assert "Traceback" not in said and first_lines(said) == [
            f"confidant: could not write to the database {disk / 'confidant.db'}: database or disk is full "
            "(is the disk full or read-only?)"]
        (disk / "filler").unlink()
        assert rows(disk) == before


@on_a_small_disk
def test_an_index_write_on_a_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path):
    from assistant.files import written_atomically

    with small_disk(tmp_path / "disk", size="1m") as disk:
        index = disk / "memory.faiss"
        index.write_bytes(b"the old index")
        fill(disk)
        with pytest.raises(StoreError, match=f"could not write {re.escape(str(index))}: the disk holding .* is full"):
            with written_atomically(index) as temp:
                temp.write_bytes(b"x" * (2 << 20))  # more than the disk holds
        assert index.read_bytes() == b"the old index"  # the old file stays whole, no temporary is left
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "memory.faiss"]


def test_a_store_at_its_size_limit_refuses_the_turn_clearly_and_keeps_going_after(tmp_path):
    settings = load_settings(data_dir=tmp_path, max_tokens=4)
    store = Store(settings.database_path)
    before = remember_the_milk(tmp_path)
    assistant = Assistant(settings, store=store)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full" for this connection
    with pytest.raises(StoreError, match="database or disk is full"):
        list(assistant.turn("x" * 7000, store.profile("Alice").id))
    assert rows(tmp_path) == before
    store.db.execute("PRAGMA max_page_count = 1073741823")
    assert TurnLog(store).begin_exchange(store.new_session(1).id, 1, "after the limit") > before[-1][0]
    store.close()


def test_size_limits_are_settings(tmp_path):
    settings = load_settings(data_dir=tmp_path, max_message_chars=20, max_name_chars=5)
    store = Store(settings.database_path, settings.max_name_chars)
    with pytest.raises(InputError, match="at most 5"):
        store.add_profile("Annabel")
    with pytest.raises(InputError, match="the limit is 20"):
        list(Assistant(settings, store=store).turn("y" * 21, store.add_profile("Ann").id))
    assert store.count_exchanges() == 0
    store.close()


def test_an_import_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    chat = tmp_path / "chat.txt"
    chat.write_text("Ann: hello there\nBob: hi Ann\n" * 50)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFIDANT_MAX_IMPORT_BYTES": "100"}
    for args in (["import", str(chat), "--format", "transcript", "--me", "Bob"], ["profiles", "import", str(chat)],
                 ["archive", "import", str(chat)]):
        done = subprocess.run([sys.executable, "-m", "app.cli", *args, "--data-dir", str(tmp_path / "data")],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 1 and "the import limit is 100 (setting max_import_bytes)" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "confidant.db").exists() or rows(tmp_path / "data") == []
