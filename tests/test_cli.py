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
    result = confidant("chat", "--as", "alice", "--create", "--data-dir", str(tmp_path), stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "local" in result.stderr and "tok/s" in result.stderr  # the status line goes to stderr
    stored = rows(tmp_path, "SELECT p.name, e.user_text, e.status, e.reply FROM exchanges e JOIN profiles p ON p.id = e.profile_id")
    assert [(name, text, status) for name, text, status, _ in stored] == [("alice", "hi", "complete")]
    assert stored[0][3] and stored[0][3] in result.stdout


def test_several_lines_are_one_conversation(tmp_path):
    result = confidant("chat", "--as", "bob", "--create", "--data-dir", str(tmp_path), stdin="first line\n\nsecond line\n")
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


def test_a_typo_in_chat_as_never_creates_a_person(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    assert confidant("profiles", "add", "Maya", *data).returncode == 0
    piped = confidant("chat", "--as", "Mayaa", *data, stdin="hello\n")
    assert piped.returncode == 1 and "Traceback" not in piped.stderr
    assert "nobody called 'Mayaa'; did you mean 'Maya'?" in piped.stderr and "--create" in piped.stderr
    assert rows(tmp_path, "SELECT name FROM profiles") == [("Maya",)]
    assert rows(tmp_path, "SELECT COUNT(*) FROM exchanges") == [(0,)]


def test_a_new_name_on_a_terminal_is_asked_about(tmp_path):
    import pty

    def chat_on_a_terminal(answer: str) -> subprocess.CompletedProcess:
        leader, follower = pty.openpty()
        os.write(leader, answer.encode())  # the terminal's line buffer holds it until it is read
        try:
            return subprocess.run([CONFIDANT, "chat", "--as", "Newt", "--data-dir", str(tmp_path)], stdin=follower, start_new_session=True,
                                  capture_output=True, text=True, timeout=120, env={**os.environ, "CONFIDANT_MAX_TOKENS": "4"})
        finally:
            os.close(follower)
            os.close(leader)

    refused = chat_on_a_terminal("n\n")
    assert "Nobody is called 'Newt'" in refused.stderr and refused.returncode == 1
    assert rows(tmp_path, "SELECT COUNT(*) FROM profiles") == [(0,)]
    accepted = chat_on_a_terminal("y\nhello\n\x04")  # Ctrl-D at the start of a line: end of input
    assert accepted.returncode == 0, accepted.stderr
    assert rows(tmp_path, "SELECT p.name, e.user_text FROM exchanges e JOIN profiles p ON p.id = e.profile_id") == [
        ("Newt", "hello")]


def test_chat_create_adds_a_new_person_once(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    for _ in range(2):
        assert confidant("chat", "--as", "Ola", "--create", *data, stdin="hi\n",
                         env_extra={"CONFIDANT_MAX_TOKENS": "4"}).returncode == 0
    assert rows(tmp_path, "SELECT name, (SELECT COUNT(*) FROM exchanges) FROM profiles") == [("Ola", 2)]


def test_profiles_list_with_nobody_says_so(tmp_path):
    listed = confidant("profiles", "list", "--data-dir", str(tmp_path))
    assert listed.returncode == 0 and f"no people yet in {tmp_path}" in listed.stdout


def test_cloud_test_with_a_problem_is_not_ok(tmp_path):
    from tests.faults import FaultServer

    server = FaultServer(["ok"])  # lists only the model "fault", answers any completion
    try:
        cloud = {"CONFIDANT_CLOUD_BASE_URL": server.url, "CONFIDANT_CLOUD_MAX_RETRIES": "0"}
        wrong = confidant("cloud", "test", "--data-dir", str(tmp_path), env_extra={**cloud, "CONFIDANT_CLOUD_MODEL": "x"})
        assert "problem: the model 'x' is not among the models the endpoint lists" in wrong.stdout
        assert "cloud OK" not in wrong.stdout and "NOT usable" in wrong.stdout and wrong.returncode == 1
        right = confidant("cloud", "test", "--data-dir", str(tmp_path), env_extra={**cloud, "CONFIDANT_CLOUD_MODEL": "fault"})
        assert "cloud OK" in right.stdout and right.returncode == 0, right.stdout
    finally:
        server.close()


def test_no_library_noise_on_a_normal_run(tmp_path):
    result = confidant("chat", "--as", "Pia", "--create", "--data-dir", str(tmp_path), stdin="hi\n",
                       env_extra={"CONFIDANT_MAX_TOKENS": "4"})
    assert result.returncode == 0, result.stderr
    # stderr holds our status line and nothing else: no "Loading weights: 0%|…" bar, no warnings
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith("[local")], result.stderr
