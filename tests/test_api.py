"""The OpenAI-compatible endpoint against a real ``confidant serve`` (real model, store and index):
the official ``openai`` client and the ``llm`` CLI as the README sets them up, conversations
matched from resent histories, errors, and capacity."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest

from assistant.pipeline import Assistant
from assistant.settings import load_settings
from tests.api_helpers import README_URL, api_server, client, exchanges_of, post, readme_block, rows

CREATE = {"X-Confidant-Create-Person": "true"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("api") / "data"
    # one reply slot, one waiting place, half a second of waiting: the capacity test fills them
    with api_server(data_dir, env={"CONFIDANT_API_QUEUE_SIZE": "1", "CONFIDANT_API_QUEUE_WAIT": "0.5"}) as url:
        yield url, data_dir


def count(data_dir: Path) -> tuple[int, int]:
    return rows(data_dir, "SELECT (SELECT COUNT(*) FROM exchanges), (SELECT COUNT(*) FROM profiles)")[0]


def test_the_readme_openai_example_streams_and_answers_and_stores_under_the_person(server, tmp_path):
    url, data_dir = server
    ids = [m.id for m in client(url).models.list()]
    assert ids == ["confidant", "confidant-local", "confidant-cloud"]
    assert client(url).models.retrieve("confidant-cloud").id == "confidant-cloud"
    with pytest.raises(openai.NotFoundError):
        client(url).models.retrieve("gpt-4o")
    with pytest.raises(openai.NotFoundError) as unknown:  # Ann does not exist yet, and was not asked for
        client(url).chat.completions.create(model="confidant", user="Ann", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.body["code"] == "person_not_found" and count(data_dir) == (0, 0)

    client(url, **CREATE).chat.completions.create(  # the README's example names Ann: create her first
        model="confidant-local", user="Ann", messages=[{"role": "user", "content": "My tulips are planted."}])
    example = readme_block("python", "**The `openai` Python client**").replace(README_URL, url)
    printed = run_python(example, tmp_path)
    stored = exchanges_of(data_dir, "Ann")
    assert [e[2] for e in stored] == ["My tulips are planted.", "Which vegetables can I still sow in August?",
                                      "And which of those grow in shade?"]
    assert all(e[4] == "complete" and e[3] for e in stored)
    assert stored[1][3] in printed and stored[2][3] in printed  # both replies reached the client whole
    assert "confidant-local local cloud escalation is off" in printed  # model, route and reason
    assert stored[1][1] == stored[2][1] != stored[0][1]  # the follow-up continued the example's conversation

    # the Memory tab's search finds the streamed exchange (in a copy of the data: the server is running)
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    people = Assistant(load_settings(data_dir=copy)).people
    ann = people.profile("Ann")
    found = people.search(ann.id, "grow in shade", limit=5)
    assert found and found[0].exchange.id == stored[2][0]


def run_python(code: str, tmp_path: Path) -> str:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_streaming_chunks_are_openai_chunks_with_the_route(server):
    url, data_dir = server
    stream = client(url, **CREATE).chat.completions.create(
        model="confidant", user="Bea", stream=True, messages=[{"role": "user", "content": "Name a fruit."}])
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(texts) > 1  # streamed, not one piece
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason in ("stop", "length")
    final = chunks[-1].model_extra["confidant"]
    assert final["person"] == "Bea" and final["route"] == "local" and final["reason"] == "cloud escalation is off"
    assert all(c.model == "confidant-local" for c in chunks)
    stored = exchanges_of(data_dir, "Bea")
    assert [(e[0], e[3]) for e in stored] == [(final["exchange"], "".join(texts).strip())]


def test_resending_the_history_stores_each_exchange_once(server):
    url, data_dir = server
    api = client(url, **CREATE)
    asked = ["I keep bees.", "How many hives do I have?", "What do bees eat?"]
    history: list[dict] = []
    for question in asked:  # the client resends everything each time, as chat apps do
        history.append({"role": "user", "content": question})
        reply = api.chat.completions.create(model="confidant", user="Cy", messages=history)
        history.append({"role": "assistant", "content": reply.choices[0].message.content})
    again = [api.chat.completions.create(model="confidant", user="Cy", messages=history[:-1]) for _ in range(3)]
    stored = exchanges_of(data_dir, "Cy")
    assert [e[2] for e in stored] == asked and len({e[1] for e in stored}) == 1
    assert all(r.model_extra["confidant"]["replayed"] and r.choices[0].message.content == stored[-1][3] for r in again)

    # a history that matches nothing is a new conversation; the header names one explicitly
    other = api.chat.completions.create(model="confidant", user="Cy", messages=[
        {"role": "user", "content": "Something never said"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Do bees sleep?"}])
    named = api.chat.completions.create(model="confidant", user="Cy", messages=[{"role": "user", "content": "Thanks!"}],
                                        extra_headers={"X-Confidant-Conversation": str(stored[0][1])})
    stored = exchanges_of(data_dir, "Cy")
    assert other.model_extra["confidant"]["conversation"] not in {stored[0][1]}
    assert named.model_extra["confidant"]["conversation"] == stored[0][1] and len(stored) == 5


def test_system_messages_and_sampling_are_taken_within_bounds(server):
    url, data_dir = server
    api = client(url, **CREATE)
    short = api.chat.completions.create(model="confidant", user="Di", max_tokens=3, messages=[
        {"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Tell me a long story."}])
    [(tokens,)] = rows(data_dir, "SELECT tokens FROM exchanges WHERE id = ?", (short.model_extra["confidant"]["exchange"],))
    assert tokens == 3 and short.choices[0].finish_reason == "length"  # a long story cannot end in 3 tokens
    stopped = api.chat.completions.create(model="confidant", user="Di", stop=["."], temperature=0.0, top_p=1.0, seed=3,
                                          messages=[{"role": "user", "content": "Describe the sea in two sentences."}])
    assert "." not in stopped.choices[0].message.content
    before = count(data_dir)
    for refused in ({"temperature": 2.5}, {"top_p": 0}, {"n": 2},
                    {"messages": [{"role": "system", "content": "x" * 2001}, {"role": "user", "content": "hi"}]}):
        body = {"model": "confidant", "user": "Di", "messages": [{"role": "user", "content": "hi"}], **refused}
        status, error, _ = post(url, body)
        assert status == 400 and set(error["error"]) >= {"message", "type", "code"}, (refused, error)
    assert count(data_dir) == before


def test_malformed_requests_get_openai_errors_store_nothing_and_the_server_keeps_serving(server):
    url, data_dir = server
    before = count(data_dir)
    good = {"model": "confidant", "user": "Ghost", "messages": [{"role": "user", "content": "hello"}]}
    cases = [
        (b'{"model": "confidant", "messages": [', 400, "invalid_json"),
        (os.urandom(64) + b"\xff\xfe", 400, "invalid_json"),  # binary, not UTF-8
        ({"model": "confidant", "user": "Ghost"}, 400, "missing_required_parameter"),
        ({**good, "messages": []}, 400, "invalid_value"),
        ({**good, "model": "gpt-4o"}, 404, "model_not_found"),
        ({**good, "messages": [{"role": "user", "content": "x" * 1_000_000}]}, 400, "invalid_request"),
        ({**good, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}, 400, "unsupported_content"),
        ({**good, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure:"}]}, 400, "invalid_request"),
        ({**good, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "unsupported_parameter"),
    ]
    for body, status, code in cases:
        got, error, _ = post(url, body, CREATE)
        assert (got, error["error"]["code"]) == (status, code), (str(body)[:80], error)
        assert error["error"]["message"] and error["error"]["type"] == "invalid_request_error"
    assert "limit is 8,000" in post(url, cases[5][0], CREATE)[1]["error"]["message"]
    assert declared_too_large(url) == (413, "request_too_large")  # refused before the body is read
    assert count(data_dir) == before  # not even Ghost's profile
    status, reply, _ = post(url, good, CREATE)
    assert status == 200 and reply["choices"][0]["message"]["content"] and count(data_dir) == (before[0] + 1, before[1] + 1)


def declared_too_large(base_url: str) -> tuple[int, str]:
    """A request announcing a body over ``api_max_request_bytes`` (4 MB): the answer comes first."""
    host, port = base_url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "5000000")
    conn.endheaders()
    response = conn.getresponse()
    code = json.loads(response.read())["error"]["code"]
    conn.close()
    return response.status, code


def test_the_llm_cli_configured_as_the_readme_says_gets_a_reply_that_is_stored(server, tmp_path):
    url, data_dir = server
    if not exchanges_of(data_dir, "Ann"):  # the README's yaml names Ann
        post(url, {"model": "confidant", "user": "Ann", "messages": [{"role": "user", "content": "hello"}]}, CREATE)
    home = tmp_path / "llm"
    home.mkdir()
    (home / "extra-openai-models.yaml").write_text(
        readme_block("yaml", "**The `llm` CLI**").replace(README_URL, url), encoding="utf-8")
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    llm = str(Path(sys.executable).parent / "llm")
    before = len(exchanges_of(data_dir, "Ann"))
    first = subprocess.run([llm, "-m", "confidant", "Where did I put my garden gloves?"], env=env,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    follow = subprocess.run([llm, "-c", "And my spade?"], env=env, capture_output=True, text=True, timeout=600)
    assert follow.returncode == 0, follow.stderr
    new = exchanges_of(data_dir, "Ann")[before:]
    assert [e[2] for e in new] == ["Where did I put my garden gloves?", "And my spade?"]
    assert new[0][1] == new[1][1]  # `llm -c` resent the first exchange: one conversation, nothing twice
    assert first.stdout.strip() == new[0][3] and follow.stdout.strip() == new[1][3]


def test_beyond_capacity_a_request_waits_then_gets_429_with_retry_after(server):
    url, data_dir = server
    post(url, {"model": "confidant", "user": "Eve", "messages": [{"role": "user", "content": "hi"}]}, CREATE)
    before = len(exchanges_of(data_dir, "Eve"))
    results, start = [], threading.Barrier(4)

    def ask(i):
        start.wait()
        results.append(post(url, {"model": "confidant", "user": "Eve", "max_tokens": 32,
                                  "messages": [{"role": "user", "content": f"Tell me about the number {i}."}]}))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(results) == 4  # every request was answered: none hung
    busy = [r for r in results if r[0] == 429]
    assert busy and all(r[1]["error"]["type"] == "rate_limit_error" and int(r[2]["Retry-After"]) >= 1 for r in busy)
    answered = [r for r in results if r[0] == 200]
    assert answered and len(exchanges_of(data_dir, "Eve")) == before + len(answered)
    assert post(url, {"model": "confidant", "user": "Eve", "messages": [{"role": "user", "content": "still there?"}]})[0] == 200
