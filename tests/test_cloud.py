"""The cloud backend against a real llama.cpp OpenAI-compatible server and a fault-injecting one."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from assistant.models.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from assistant.models.cloud import CloudModel, check, describe_check
from assistant.errors import CloudError, CloudUnavailable
from assistant.settings import bundled_model_path, load_settings
from tests.browser import free_port, serving
from tests.faults import WORDS, FaultServer

KEY = "test-key-7f3a"
ASK = [{"role": "user", "content": "Say hello in one short sentence."}]
FIRST, TOTAL = 2.0, 5.0  # small timeouts: every faulty reply must end within these
SLACK = 1.5  # scheduling slack on a loaded 2-core machine, not a speed claim


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def llama_server():
    port = free_port()
    command = [sys.executable, "-m", "assistant.models.llama_runtime", "serve", "--model", str(bundled_model_path()), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--api_key", KEY, "--verbose", "False"]
    url = f"http://127.0.0.1:{port}/v1"
    with serving(command, f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}):
        yield url


def cloud_settings(tmp_path, url, **overrides):
    values = dict(data_dir=tmp_path, cloud_base_url=url, cloud_model="smollm2", cloud_api_key=KEY,
                  max_tokens=24, temperature=0.0, cloud_connect_timeout=1.0,
                  cloud_first_token_timeout=FIRST, cloud_total_timeout=TOTAL)
    return load_settings(**{**values, **overrides})


@pytest.fixture
def faults():
    servers = []

    def start(*script):
        servers.append(FaultServer(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def fault_model(tmp_path, server, breaker=None, **overrides):
    return CloudModel(cloud_settings(tmp_path, server.url, cloud_model="fault", **overrides),
                      breaker=breaker or CircuitBreaker(failures=100, cooldown=60))


def run(model) -> tuple[list[str], BaseException | None, float]:
    """Consume a reply: the chunks, the error it ended with (if any) and how long it took."""
    chunks, start = [], time.monotonic()
    try:
        for chunk in model.stream(ASK):
            chunks.append(chunk)
    except CloudError as error:
        return chunks, error, time.monotonic() - start
    return chunks, None, time.monotonic() - start


# --- the real server ---------------------------------------------------------------------------

def real_settings(tmp_path, url, **overrides):
    # generous bounds: the real model shares 2 cores with the test run; the faults test the bounds
    return cloud_settings(tmp_path, url, cloud_first_token_timeout=60, cloud_total_timeout=120, **overrides)


def test_streams_a_reply_from_a_real_openai_compatible_server(tmp_path, llama_server):
    chunks, error, _ = run(CloudModel(real_settings(tmp_path, llama_server)))
    assert error is None
    assert len(chunks) > 1 and "".join(chunks).strip()


def test_the_api_key_is_sent_and_a_wrong_one_fails_cleanly(tmp_path, llama_server):
    chunks, error, _ = run(CloudModel(real_settings(tmp_path, llama_server, cloud_api_key="wrong")))
    assert chunks == [] and isinstance(error, CloudError) and "401" in str(error)
    assert "wrong" not in str(error)  # the key itself never ends up in a message


def test_check_reports_a_working_endpoint(tmp_path, llama_server):
    found = check(real_settings(tmp_path, llama_server))
    assert found["ok"] and found["reachable"] and found["model_listed"]
    assert found["models"] == ["smollm2"] and found["reply"].strip()
    assert 0 <= found["first_token_ms"] <= found["total_ms"] and found["problems"] == []
    assert "cloud OK" in describe_check(found)


def test_check_reports_problems_without_raising(tmp_path, llama_server):
    wrong_key = check(real_settings(tmp_path, llama_server, cloud_api_key="wrong"))
    assert not wrong_key["ok"] and any("401" in problem for problem in wrong_key["problems"])
    nobody = check(cloud_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1"))
    assert not nobody["ok"] and not nobody["reachable"] and nobody["problems"]
    unset = check(load_settings(data_dir=tmp_path))
    assert not unset["ok"] and "no cloud model is configured" in unset["problems"][0]
    assert "NOT usable" in describe_check(unset)


# --- faults ------------------------------------------------------------------------------------

def test_sends_exactly_the_logged_body_with_the_key_and_no_machine_fingerprint(tmp_path, faults):
    server = faults("ok")
    model = fault_model(tmp_path, server)
    chunks, error, _ = run(model)
    assert error is None and "".join(chunks) == "".join(WORDS)
    request = server.completions[0]
    assert request["body"] == model.request_body(ASK)
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert not any(name.startswith("x-stainless-os") or name == "x-stainless-runtime-version" for name in headers)


def test_no_first_byte_times_out_within_the_first_token_bound(tmp_path, faults):
    server = faults("hang")
    chunks, error, took = run(fault_model(tmp_path, server))
    assert chunks == [] and "sent nothing within" in str(error)
    assert took < FIRST + SLACK
    assert len(server.completions) == 1  # a timeout already cost the user its wait: not retried


def test_http_500_is_retried_then_fails(tmp_path, faults):
    server = faults("500")
    chunks, error, took = run(fault_model(tmp_path, server))
    assert chunks == [] and "HTTP 500" in str(error) and "3 attempts" in str(error)
    assert len(server.completions) == 3  # the first try and cloud_max_retries=2 retries
    assert took < TOTAL + SLACK


def test_429_then_success_gives_one_complete_reply_without_duplicates(tmp_path, faults):
    server = faults("429", "ok")
    chunks, error, _ = run(fault_model(tmp_path, server))
    assert error is None
    assert chunks == WORDS  # every chunk exactly once
    assert len(server.completions) == 2


def test_a_dropped_connection_mid_stream_is_an_error_and_never_retried(tmp_path, faults):
    server = faults("drop", "ok")
    chunks, error, _ = run(fault_model(tmp_path, server))
    assert chunks == WORDS[:2] and isinstance(error, CloudError)
    assert len(server.completions) == 1  # a retry would repeat the text already shown


def test_malformed_sse_is_an_error(tmp_path, faults):
    server = faults("malformed")
    chunks, error, _ = run(fault_model(tmp_path, server))
    assert chunks == [] and "malformed" in str(error)
    assert len(server.completions) == 1


def test_an_error_event_inside_the_stream_is_an_error(tmp_path, faults):
    server = faults("error_event")
    chunks, error, _ = run(fault_model(tmp_path, server))
    assert chunks == WORDS[:1] and "overloaded" in str(error)
    assert len(server.completions) == 1


def test_bytes_trickling_without_text_still_hit_the_first_token_bound(tmp_path, faults):
    chunks, error, took = run(fault_model(tmp_path, faults("trickle")))
    assert chunks == [] and "sent nothing within" in str(error)
    assert took < FIRST + SLACK


def test_a_very_slow_stream_ends_at_the_total_bound(tmp_path, faults):
    chunks, error, took = run(fault_model(tmp_path, faults("slow")))
    assert chunks and set(chunks) == {"tick "}
    assert "longer than" in str(error)
    assert took < TOTAL + SLACK


def test_abandoned_replies_stop_their_reader_threads(tmp_path, faults):
    for behaviour in ("trickle", "slow"):
        run(fault_model(tmp_path, faults(behaviour), cloud_total_timeout=1.0, cloud_first_token_timeout=1.0))
    deadline = time.monotonic() + 5
    while any(t.name == "cloud-reply" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "cloud-reply" for t in threading.enumerate())


# --- circuit breaker ---------------------------------------------------------------------------

def test_breaker_opens_after_n_failures_and_closes_after_the_cooldown(tmp_path, faults):
    server = faults("500")
    breaker = CircuitBreaker(failures=2, cooldown=1.0)
    model = fault_model(tmp_path, server, breaker, cloud_max_retries=0)
    for _ in range(2):
        assert isinstance(run(model)[1], CloudError)
    assert breaker.state == OPEN
    _, error, _ = run(model)
    assert isinstance(error, CloudUnavailable) and len(server.completions) == 2  # nothing was sent
    server.script = ["ok"]
    time.sleep(1.1)
    assert breaker.state == HALF_OPEN
    chunks, error, _ = run(model)
    assert error is None and chunks == WORDS and breaker.state == CLOSED


def test_a_reply_abandoned_by_the_consumer_is_not_a_failure(tmp_path, faults):
    breaker = CircuitBreaker(failures=1, cooldown=60)
    stream = fault_model(tmp_path, faults("ok"), breaker).stream(ASK)
    assert next(stream) == WORDS[0]
    stream.close()
    assert breaker.state == CLOSED


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_half_open_allows_one_trial_and_a_failed_trial_reopens():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    for _ in range(3):
        breaker.acquire()
        breaker.failure()
    with pytest.raises(CloudUnavailable, match="paused"):
        breaker.acquire()
    clock.now = 10.0
    outcomes = []

    def contender():
        try:
            breaker.acquire()
            outcomes.append("trial")
        except CloudUnavailable:
            outcomes.append("refused")

    threads = [threading.Thread(target=contender) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("trial") == 1 and outcomes.count("refused") == 15
    breaker.failure()  # the trial failed: a full cool-down again
    clock.now = 19.0
    assert breaker.state == OPEN
    clock.now = 20.0
    breaker.acquire()
    breaker.success()
    assert breaker.state == CLOSED


# --- settings ----------------------------------------------------------------------------------

def test_openai_environment_is_the_fallback_for_the_endpoint_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://fallback:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    settings = load_settings(data_dir=tmp_path)
    assert (settings.cloud_base_url, settings.cloud_api_key) == ("http://fallback:8000/v1", "sk-fallback")
    monkeypatch.setenv("CONFIDANT_CLOUD_BASE_URL", "http://own:9000/v1")
    assert load_settings(data_dir=tmp_path).cloud_base_url == "http://own:9000/v1"
    assert load_settings(data_dir=tmp_path, cloud_api_key="sk-flag").cloud_api_key == "sk-flag"
