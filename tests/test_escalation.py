"""Cloud turns through the whole pipeline: routing, consent, redaction, restoration, fallback.

The cloud is a real llama.cpp OpenAI-compatible server behind a recording proxy (so the test
sees every byte that left the device), or the fault-injecting server for failures. The local
model answering a fallback is the real bundled one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assistant.models import privacy
from assistant.models.breaker import CircuitBreaker
from assistant.models.escalation import Escalation
from assistant.pipeline import Answering, Assistant, Chunk, Finished, Rerouted, Started
from assistant.settings import load_settings
from tests.faults import WORDS, FaultServer
from tests.test_cloud import KEY, llama_server, no_openai_env  # noqa: F401  (fixtures)

PLANTED = ["Alice Smith", "Alice", "Smith", "Bob Jones", "Jones", "alice.smith@example.com", "+1 415 555 0132",
           "4111 1111 1111 1111", "221B Baker Street"]
MESSAGE = ("Hi, I'm Alice Smith (alice.smith@example.com, +1 415 555 0132, card 4111 1111 1111 1111). "
           "Bob Jones lives at 221B Baker Street. Say hello to both of us in one short sentence.")
HARD = ("A baker sells 12 loaves a day at $3 each and spends $10 a day on flour. "
        "How much money does the baker make in a week?")


@pytest.fixture
def cloud(tmp_path):
    servers = []

    def start(*script, upstream=None):
        servers.append(FaultServer(list(script), upstream=upstream))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def make_assistant(tmp_path, local, server, **overrides):
    values = dict(data_dir=tmp_path / "data", max_tokens=32, temperature=0.0, seed=7, cloud_base_url=server.url,
                  cloud_model="smollm2", cloud_api_key=KEY, cloud_connect_timeout=1.0,
                  cloud_first_token_timeout=2.0, cloud_total_timeout=5.0, cloud_mode="always")
    settings = load_settings(**{**values, **overrides})
    assistant = Assistant(settings, local=local)
    from assistant.models.cloud import CloudModel

    assistant.escalation = Escalation(settings, assistant.store,
                                      CloudModel(settings, breaker=CircuitBreaker(failures=100, cooldown=60)))
    return assistant


def turn(assistant, message, speaker, mode=None, session_id=None):
    events = list(assistant.turn(message, speaker, session_id, mode))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return events, finished.exchange


def test_a_cloud_turn_sends_only_redacted_text_and_stores_exactly_what_was_sent(tmp_path, local, cloud, llama_server):
    proxy = cloud("proxy", upstream=llama_server)
    assistant = make_assistant(tmp_path, local, proxy, cloud_first_token_timeout=120, cloud_total_timeout=240)
    alice = assistant.store.add_profile("Alice Smith")
    assistant.store.add_profile("Bob Jones")
    events, exchange = turn(assistant, MESSAGE, alice.id)
    sent = proxy.completions[0]
    raw = json.dumps(sent["body"], ensure_ascii=False)
    assert not [item for item in PLANTED if item.lower() in raw.lower()]
    assert "[PERSON_1]" in raw and "[EMAIL_1]" in raw and "[PHONE_1]" in raw
    assert {k.lower(): v for k, v in sent["headers"].items()}["authorization"] == f"Bearer {KEY}"
    assert json.loads(exchange.cloud_payload) == sent["body"]  # the UI shows exactly what left the device
    assert exchange.route == "cloud" and exchange.model == "smollm2" and exchange.reply
    assert exchange.route_reason == "cloud escalation is set to always" and exchange.route_note is None
    assert any(isinstance(e, Answering) and e.route == "cloud" for e in events)
    assert "".join(e.text for e in events if isinstance(e, Chunk)).strip() == exchange.reply


def test_placeholders_in_the_reply_are_restored_for_the_user(tmp_path, local, cloud):
    server = cloud("echo")
    assistant = make_assistant(tmp_path, local, server)
    alice = assistant.store.add_profile("Alice Smith")
    _, exchange = turn(assistant, "Write to alice.smith@example.com for Alice Smith.", alice.id)
    assert "alice.smith@example.com" not in json.dumps(server.completions[0]["body"])
    assert exchange.reply == "Write to alice.smith@example.com for Alice Smith."


def test_a_person_who_never_consents_stays_on_the_device_even_with_always(tmp_path, local, cloud):
    server = cloud("ok")
    assistant = make_assistant(tmp_path, local, server)
    assistant.store.add_profile("Carol")
    carol = assistant.store.set_cloud_allowed("Carol", False)
    _, exchange = turn(assistant, HARD, carol.id, mode="always")
    assert server.completions == [] and exchange.route == "local" and exchange.cloud_payload is None
    assert exchange.route_reason == "Carol's messages never go to the cloud"


def test_off_sends_nothing(tmp_path, local, cloud):
    server = cloud("ok")
    assistant = make_assistant(tmp_path, local, server)
    _, exchange = turn(assistant, HARD, assistant.store.add_profile("Dan").id, mode="off")
    assert server.completions == [] and exchange.route == "local"


@pytest.mark.parametrize("fault", ["500", "hang", "drop", "malformed", "error_event", "trickle", "slow"])
def test_every_cloud_fault_ends_in_one_local_answer_with_a_note(tmp_path, local, cloud, fault):
    server = cloud(fault)
    assistant = make_assistant(tmp_path, local, server)
    erin = assistant.store.add_profile("Erin")
    events, exchange = turn(assistant, "Tell me a fun fact about cats.", erin.id)
    assert exchange.status == "complete" and exchange.route == "local" and exchange.reply
    assert exchange.route_decision == "cloud" and exchange.route_note.startswith("cloud unreachable — answered on this device")
    assert [type(e) for e in events].count(Rerouted) == 1
    after = events.index(next(e for e in events if isinstance(e, Rerouted)))
    assert "".join(e.text for e in events[after:] if isinstance(e, Chunk)).strip() == exchange.reply  # no cloud text kept
    assert assistant.store.count_exchanges(erin.id) == 1
    assert exchange.cloud_payload is not None  # what was sent is shown even though it failed


def test_a_retried_request_stores_one_turn(tmp_path, local, cloud):
    server = cloud("429", "ok")
    assistant = make_assistant(tmp_path, local, server)
    fay = assistant.store.add_profile("Fay")
    _, exchange = turn(assistant, "Hello there", fay.id)
    assert len(server.completions) == 2 and exchange.route == "cloud" and exchange.reply == "".join(WORDS)
    assert assistant.store.count_exchanges(fay.id) == 1


def test_when_redaction_fails_nothing_is_sent(tmp_path, local, cloud, monkeypatch):
    server = cloud("ok")
    assistant = make_assistant(tmp_path, local, server)

    def broken(text):
        raise RuntimeError("detector crashed")

    monkeypatch.setattr(privacy, "DETECTORS", [*privacy.DETECTORS, broken])  # an injected fault
    _, exchange = turn(assistant, "My email is gus@example.com", assistant.store.add_profile("Gus").id)
    assert server.completions == [] and exchange.route == "local" and exchange.cloud_payload is None
    assert "nothing was sent" in exchange.route_note


def test_auto_sends_a_hard_question_to_the_cloud_and_keeps_chat_local_with_reasons(tmp_path, local, cloud):
    server = cloud("ok")
    assistant = make_assistant(tmp_path, local, server, cloud_mode="auto")
    hal = assistant.store.add_profile("Hal")
    _, hard = turn(assistant, HARD, hal.id)
    assert hard.route == "cloud" and hard.route_reason.startswith("hard: arithmetic word problem, score ")
    shown = float(hard.route_reason.split(" ≥ ")[1].split(",")[0])  # the threshold in force, on the status line
    assert shown == pytest.approx(assistant.router.model.threshold(0.3), abs=0.01)
    assert hard.route_reason.endswith("the threshold for a 30% cloud budget, calibrated on the shipped stream")
    _, easy = turn(assistant, "hey, how was your weekend?", hal.id)
    assert easy.route == "local" and easy.route_reason.startswith("easy: conversation, score ")
    assert easy.route_reason.endswith("calibrated on 1 scored turn here")  # it moved with the first turn
    assert 0.0 <= easy.route_score < hard.route_score <= 1.0


def test_the_semantic_cache_answers_a_repeat_locally_from_the_cloud_answer(tmp_path, local, cloud):
    server = cloud("ok")
    # a budget that leaves room for every hard question here: the online threshold would
    # otherwise rise after Ida's cloud turn, and Jo's question must be routed on its merits
    assistant = make_assistant(tmp_path, local, server, cloud_mode="auto", cloud_budget=0.6)
    ida = assistant.store.add_profile("Ida")
    _, first = turn(assistant, HARD, ida.id)
    events, again = turn(assistant, "Quick question: " + HARD, ida.id)
    assert first.route == "cloud" and again.route == "local" and len(server.completions) == 1
    assert again.route_reason.startswith("cached: close to an earlier cloud answer")
    assert next(e for e in events if isinstance(e, Started)).route.cached.id == first.id
    other = assistant.store.add_profile("Jo")
    _, theirs = turn(assistant, HARD, other.id)
    assert theirs.route == "cloud" and theirs.route_reason.startswith("hard: ")  # never another person's cache


def test_a_follow_up_stays_on_the_same_side_unless_the_score_moves(tmp_path, local, cloud):
    server = cloud("ok")
    assistant = make_assistant(tmp_path, local, server, cloud_mode="auto", router_stickiness=1.0)
    kim = assistant.store.add_profile("Kim")
    _, first = turn(assistant, HARD, kim.id)
    _, follow = turn(assistant, "thanks!", kim.id, session_id=first.session_id)
    assert first.route == "cloud" and follow.route == "cloud" and follow.route_reason.startswith("follow-up stays in the cloud")


def test_chat_cli_takes_the_cloud_mode_per_run(tmp_path, cloud):
    server = cloud("ok")
    env = {"CONFIDANT_CLOUD_BASE_URL": server.url, "CONFIDANT_CLOUD_MODEL": "fault", "CONFIDANT_MAX_TOKENS": "16",
           "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "app.cli", "chat", "--as", "Lee", "--create", "--data-dir", str(tmp_path)]
    done = subprocess.run([*command, "--cloud", "always"], input="hello\n", capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "".join(WORDS)
    assert "cloud · fault · cloud escalation is set to always" in done.stderr
    done = subprocess.run([*command, "--cloud", "off"], input="hello\n", capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0 and len(server.completions) == 1 and "local · SmolLM2" in done.stderr


def test_cloud_test_command_reports_what_it_found(tmp_path, cloud):
    server = cloud("ok")
    env = {"CONFIDANT_CLOUD_BASE_URL": server.url, "CONFIDANT_CLOUD_MODEL": "fault", "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "cloud", "test", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "models listed: fault" in done.stdout and "cloud OK" in done.stdout
    env["CONFIDANT_CLOUD_MODEL"] = "missing"
    done = subprocess.run([sys.executable, "-m", "app.cli", "cloud", "test", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "is not among the models" in done.stdout


def test_a_missing_router_model_keeps_auto_turns_local_and_says_why(tmp_path, local, cloud):
    server = cloud("ok")
    assistant = make_assistant(tmp_path, local, server, cloud_mode="auto", router_path=tmp_path / "absent.npz")
    _, exchange = turn(assistant, HARD, assistant.store.add_profile("Max").id)
    assert exchange.route == "local" and server.completions == []
    assert exchange.route_reason.startswith("the router is unavailable (could not read the router model")
