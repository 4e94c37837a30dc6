"""Logins: hashed passwords, the lockout, per-login profiles, the bind-address guard and the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.auth import Access, Gate, Users, add_user, verify_password
from app.web import check_binding
from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.settings import load_settings
from assistant.store.store import Store

CONFIDANT = str(Path(sys.executable).parent / "confidant")


def as_login(name):
    return SimpleNamespace(username=name)


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "dad", "correct horse", ["Dad", "Sam"])
    add_user(path, "mum", "battery staple", ["Mum"])
    add_user(path, "root", "admin password", [], admin=True)
    return Users.load(path)


def test_passwords_are_stored_only_as_salted_hashes(users):
    text = users.path.read_text()
    assert "correct horse" not in text and "scrypt$" in text
    assert oct(users.path.stat().st_mode & 0o777) == "0o600"
    dad = users.get("dad")
    assert verify_password("correct horse", dad.password) and not verify_password("correct horsE", dad.password)
    with pytest.raises(InputError, match="at least 8"):
        add_user(users.path, "kid", "short", [])


def test_repeated_failures_lock_the_login_even_for_the_right_password(users):
    gate = Gate(users, max_failures=3, lock_seconds=60)
    assert gate.check("dad", "correct horse")
    for _ in range(3):
        assert not gate.check("dad", "wrong")
    assert gate.locked("dad") and not gate.check("dad", "correct horse")
    assert gate.check("mum", "battery staple")  # other logins are not affected
    assert not gate.check("nobody", "correct horse")
    gate.lock_seconds = 0
    gate._failures["dad"] = (0, 0.0)  # the lock has run out
    assert gate.check("dad", "correct horse")


def test_a_login_sees_and_uses_only_its_own_profiles(users, tmp_path):
    store = Store(tmp_path / "db.sqlite")
    dad, sam, mum = (store.add_profile(n) for n in ("Dad", "Sam", "Mum"))
    access = Access(store, users)
    assert {p.name for p in access.people(as_login("dad"))} == {"Dad", "Sam"}
    assert {p.name for p in access.people(as_login("root"))} == {"Dad", "Sam", "Mum"}
    assert access.person(as_login("mum"), mum.id) == mum
    for forged in (dad.id, str(sam.id), None, "1 OR 1=1"):
        with pytest.raises(NotFoundError):
            access.person(as_login("mum"), forged)
    with pytest.raises(NotFoundError):
        access.people(as_login("intruder"))
    with pytest.raises(InputError, match="taken"):
        access.may_claim(as_login("mum"), "Dad")  # importing or adding "Dad" would join Dad's memories

    kid = store.add_profile("Kid")
    access.created(as_login("mum"), kid)
    access.renamed("Kid", "Robin")
    assert Users.load(users.path).get("mum").profiles == ["Mum", "Robin"]
    assert Access(store, None).people(None) == store.profiles()  # no logins: one household


def test_a_bad_users_file_is_one_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        Users.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="confidant users add"):
        Users.load(tmp_path / "absent.json")


def test_serving_to_the_network_without_logins_needs_an_explicit_flag(tmp_path, capsys, users):
    public = load_settings(data_dir=tmp_path, host="0.0.0.0")
    with pytest.raises(ConfigError, match="--auth"):
        check_binding(public, None, allow_public=False)
    check_binding(public, None, allow_public=True)
    assert "WARNING" in capsys.readouterr().err
    check_binding(public, users, allow_public=False)  # logins on: fine
    check_binding(load_settings(data_dir=tmp_path), None, allow_public=False)  # loopback: fine


def test_cli_adds_users_and_refuses_a_public_bind(tmp_path):
    path = tmp_path / "users.json"
    env = {**os.environ, "CONFIDANT_CONFIG": str(tmp_path / "absent.toml")}
    done = subprocess.run([CONFIDANT, "users", "add", "dad", "--profile", "Dad", "--users-file", str(path)],
                          input="a long password\n", capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text())["users"]["dad"]["profiles"] == ["Dad"]
    listed = subprocess.run([CONFIDANT, "users", "list", "--users-file", str(path)], capture_output=True, text=True, env=env)
    assert listed.stdout.strip() == "dad\tDad"
    refused = subprocess.run([CONFIDANT, "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 1 and "refusing to serve on 0.0.0.0" in refused.stderr
    assert "Traceback" not in refused.stderr
