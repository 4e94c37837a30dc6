"""The endpoint's access rules and cloud path against a real ``confidant serve``: bearer keys per
login (issued and revoked by the real CLI, while serving), each reaching only its login's people
as in the browser; and cloud turns through a recording proxy in front of a real llama.cpp server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from app.auth import add_user
from assistant.store.store import Store
from tests.api_helpers import api_server, client, exchanges_of, post, rows
from tests.faults import FaultServer
from tests.test_cloud import KEY, llama_server, no_openai_env  # noqa: F401  (fixtures)
from tests.test_escalation import MESSAGE, PLANTED
from tests.test_web_manage import seed

CONFIDANT = str(Path(sys.executable).parent / "confidant")
GATE = ("What is the code for my garden gate?", "Your gate code is 4242.", "2024-03-01T20:00:00+00:00")


def key_command(users: Path, login: str, *extra: str) -> str:
    done = subprocess.run([CONFIDANT, "users", "key", login, "--users-file", str(users), *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def ask(url: str, key: str, text: str = "What is the code for my garden gate?", headers: dict | None = None, **body):
    messages = body.pop("messages", [{"role": "user", "content": text}])
    return post(url, {"model": "confidant", "messages": messages, **body},
                {"Authorization": f"Bearer {key}", **(headers or {})})


def test_a_key_reaches_only_its_logins_people_no_key_or_a_wrong_one_is_refused_and_revoking_works(tmp_path):
    data_dir, users = tmp_path / "data", tmp_path / "users.json"
    seed(data_dir, {"Ann": [("Which roses like shade?", "Albas and some ramblers.", "2024-02-01T10:00:00+00:00")],
                    "Ben": [GATE]})
    add_user(users, "alice", "alice password", ["Ann"])
    add_user(users, "bob", "bob's password", ["Ben"])
    alice, bob = key_command(users, "alice"), key_command(users, "bob")
    assert alice.startswith("cfk-") and alice not in users.read_text() and "sha256$" in users.read_text()
    ben_session = rows(data_dir, "SELECT id FROM sessions WHERE profile_id = (SELECT id FROM profiles WHERE name = 'Ben')")[0][0]

    with api_server(data_dir, "--auth", str(users)) as url:
        status, error, _ = post(url, {"model": "confidant", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 401 and error["error"]["type"] == "authentication_error"  # no key at all
        for wrong in ("cfk-wrong", bob[:-2]):
            with pytest.raises(openai.AuthenticationError):
                client(url, key=wrong).models.list()
        assert [m.id for m in client(url, key=alice).models.list()][0] == "confidant"

        status, reply, _ = ask(url, alice, user="Ann")  # Ann's turn recalls only Ann's memories
        assert status == 200 and reply["confidant"]["person"] == "Ann"
        recalled = json.loads(rows(data_dir, "SELECT recalled FROM exchanges WHERE id = ?", (reply["confidant"]["exchange"],))[0][0])
        ann_ids = {e[0] for e in exchanges_of(data_dir, "Ann")}
        assert {m["id"] for m in recalled["memories"]} <= ann_ids and "4242" not in reply["choices"][0]["message"]["content"]

        before = exchanges_of(data_dir, "Ben")
        for refused, status_code in (({"user": "Ben"}, 404), ({"headers": {"X-Confidant-Person": "Ben"}}, 404),
                                     ({"user": "Ben", "confidant": {"create_person": True}}, 400),
                                     ({"user": "Ann", "headers": {"X-Confidant-Conversation": str(ben_session)}}, 404)):
            status, error, _ = ask(url, alice, **refused)
            assert status == status_code and error["error"]["message"], refused
        # resending Ben's conversation does not reach it; detection picks among alice's people only
        status, reply, _ = ask(url, alice, GATE[0] + " Again?", messages=[
            {"role": "user", "content": GATE[0]}, {"role": "assistant", "content": GATE[1]},
            {"role": "user", "content": "And the shed?"}])
        assert status == 200 and reply["confidant"]["person"] == "Ann" and reply["confidant"]["conversation"] != ben_session
        assert exchanges_of(data_dir, "Ben") == before
        assert ask(url, bob, user="Ann")[0] == 404 and ask(url, bob, user="Ben")[0] == 200

        assert key_command(users, "alice", "--revoke") == "revoked 1 API key of alice"
        status, error, headers = ask(url, alice, user="Ann")
        assert status == 401 and error["error"]["code"] == "invalid_api_key" and headers["WWW-Authenticate"] == "Bearer"
        assert ask(url, bob, user="Ben")[0] == 200  # other keys keep working

        # wrong keys are rate-limited like passwords: after five in a row, even a right key waits
        for _ in range(5):
            assert ask(url, "cfk-guess")[0] == 401
        status, error, headers = ask(url, bob, user="Ben")
        assert status == 429 and error["error"]["code"] == "too_many_wrong_keys" and int(headers["Retry-After"]) > 0


def test_through_the_api_consent_never_keeps_a_person_local_and_the_cloud_gets_the_redacted_text(tmp_path, llama_server):
    proxy = FaultServer(["proxy"], upstream=llama_server)
    data_dir = tmp_path / "data"
    seed(data_dir, {"Alice Smith": [], "Bob Jones": [], "Carl": []})
    store = Store(data_dir / "confidant.db")
    store.set_cloud_allowed("Carl", False)
    store.close()
    env = {"CONFIDANT_CLOUD_BASE_URL": proxy.url, "CONFIDANT_CLOUD_MODEL": "smollm2", "CONFIDANT_CLOUD_API_KEY": KEY,
           "CONFIDANT_CLOUD_FIRST_TOKEN_TIMEOUT": "120", "CONFIDANT_CLOUD_TOTAL_TIMEOUT": "240"}
    try:
        with api_server(data_dir, env=env) as url:
            api = client(url)
            carl = api.chat.completions.create(model="confidant-cloud", user="Carl", messages=[
                {"role": "user", "content": "Explain the proof that there are infinitely many primes."}])
            assert proxy.completions == [] and carl.model == "confidant-local"
            assert carl.model_extra["confidant"]["route"] == "local"
            assert carl.model_extra["confidant"]["reason"] == "Carl's messages never go to the cloud"

            local = api.chat.completions.create(model="confidant-local", user="Alice Smith",
                                                messages=[{"role": "user", "content": MESSAGE}])
            assert proxy.completions == [] and local.model_extra["confidant"]["route"] == "local"

            chunks = list(api.chat.completions.create(model="confidant-cloud", user="Alice Smith", stream=True,
                                                      max_tokens=16, messages=[{"role": "user", "content": MESSAGE}]))
            final = chunks[-1].model_extra["confidant"]
            assert final["route"] == "cloud" and final["model"] == "smollm2" and chunks[-1].model == "confidant-cloud"
            sent = proxy.completions[0]["body"]
            raw = json.dumps(sent, ensure_ascii=False).lower()
            assert not [item for item in PLANTED if item.lower() in raw] and sent["max_tokens"] == 16
            [(payload, reply)] = rows(data_dir, "SELECT cloud_payload, reply FROM exchanges WHERE id = ?", (final["exchange"],))
            assert json.loads(payload) == sent  # the stored payload is the redacted one that left
            assert reply == "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    finally:
        proxy.close()
