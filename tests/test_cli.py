import os
import sqlite3
import subprocess
import sys
from pathlib import Path

CONFIDANT = str(Path(sys.executable).parent / "confidant")


def confidant(*args, stdin="", env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([CONFIDANT, *args], input=stdin, capture_output=True, text=True, timeout=300, env=env)


def rows(data_dir, sql):
    conn = sqlite3.connect(Path(data_dir) / "confidant.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_piped_chat_prints_a_reply_and_stores_the_exchange(tmp_path):
    result = confidant("chat", "--as", "alice", "--data-dir", str(tmp_path), stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "local" in result.stderr and "tok/s" in result.stderr  # the status line goes to stderr
    stored = rows(tmp_path, "SELECT p.name, e.user_text, e.status, e.reply FROM exchanges e JOIN profiles p ON p.id = e.profile_id")
    assert [(name, text, status) for name, text, status, _ in stored] == [("alice", "hi", "complete")]
    assert stored[0][3] and stored[0][3] in result.stdout


def test_several_lines_are_one_conversation(tmp_path):
    result = confidant("chat", "--as", "bob", "--data-dir", str(tmp_path), stdin="first line\n\nsecond line\n")
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path, "SELECT COUNT(DISTINCT session_id), COUNT(*) FROM exchanges") == [(1, 2)]


def test_profiles_add_list_rename_delete(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    assert confidant("profiles", "add", "Alice", *data).returncode == 0
    assert confidant("profiles", "add", "Bob", *data).returncode == 0
    assert "Alice" in confidant("profiles", "list", *data).stdout
    renamed = confidant("profiles", "rename", "alice", "Alicia", *data)
    assert renamed.returncode == 0 and "Alicia" in renamed.stdout

    refused = confidant("profiles", "delete", "Bob", *data)  # not a terminal, no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert "Bob" in confidant("profiles", "list", *data).stdout

    assert confidant("profiles", "delete", "Bob", "--yes", *data).returncode == 0
    listed = confidant("profiles", "list", *data).stdout
    assert "Bob" not in listed and "Alicia" in listed


def test_errors_are_one_line_without_traceback(tmp_path):
    duplicate = [confidant("profiles", "add", "Zoe", "--data-dir", str(tmp_path)) for _ in range(2)][1]
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip().count("\n") == 0 and "already" in duplicate.stderr
    missing = confidant("profiles", "rename", "nobody", "x", "--data-dir", str(tmp_path))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    bad_model = confidant("profiles", "list", env_extra={"CONFIDANT_MODEL_PATH": str(tmp_path / "none.gguf")})
    assert bad_model.returncode == 1
    assert "CONFIDANT_MODEL_PATH" in bad_model.stderr and "Traceback" not in bad_model.stderr


def test_version():
    result = confidant("--version")
    assert result.returncode == 0 and result.stdout.startswith("confidant ")
