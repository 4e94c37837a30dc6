"""The endpoint's parts on their own: per-turn sampling and instructions through the real model and
pipeline, reply slots with real threads, API keys in a real users file, and history matching
against a real store."""

from __future__ import annotations

import threading

import pytest

from app import api_keys
from app.api_capacity import Busy, Capacity
from assistant.conversations import Asked, place, read_messages
from app.auth import Users, add_user
from assistant.models.cloud import CloudModel
from assistant.errors import InputError, NotFoundError
from assistant.models.local import Prompt
from assistant.models.chat import Question
from assistant.pipeline import Chunk, Finished
from assistant.settings import load_settings
from assistant.turn_options import Sampling, TurnOptions


def test_sampling_is_taken_within_the_settings_bounds(settings):
    chosen = Sampling.within(settings, max_tokens=10_000, temperature=1.5, top_p=0.5, seed=3, stop="END")
    assert chosen == Sampling(settings.max_tokens, 1.5, 0.5, 3, ("END",))  # max_tokens capped at the setting
    assert Sampling.within(settings) == Sampling.of(settings)
    for wrong, says in (({"temperature": 2.5}, "temperature must be ≥ 0.0 and ≤ 2.0"), ({"top_p": 0}, "top_p must be > 0.0"),
                        ({"temperature": "hot"}, "must be a number"), ({"max_tokens": 0}, "positive"),
                        ({"stop": ["a"] * 5}, "at most 4")):
        with pytest.raises(InputError, match=says):
            Sampling.within(settings, **wrong)


def test_the_local_model_follows_a_turns_sampling(local, settings):
    prompt = local.fit({"role": "system", "content": "Be brief."}, [], {"role": "user", "content": "Tell me a story."})
    lively = Sampling.within(settings, temperature=1.3, seed=11)
    once, twice = ("".join(local.stream(prompt, sampling=lively)) for _ in range(2))
    assert once == twice  # the seed decides
    assert len(list(local.stream(prompt, sampling=Sampling.within(settings, max_tokens=2)))) <= 2
    stopped = "".join(local.stream(prompt, sampling=Sampling.within(settings, stop=["."])))
    assert "." not in stopped and isinstance(prompt, Prompt)


def test_a_turns_instructions_follow_the_persona_and_reach_the_prompt(assistant, store):
    ann = store.add_profile("Ann")
    options = TurnOptions(Sampling.within(assistant.settings, max_tokens=4), "Answer like a pirate.")
    events = list(assistant.turn("Hello!", ann.id, options=options))
    exchange = events[-1].exchange
    assert isinstance(events[-1], Finished) and 1 <= exchange.tokens <= 4
    assert len([e for e in events if isinstance(e, Chunk)]) == exchange.tokens
    recollection = events[0].recollection
    question = Question(events[0].exchange_id, ann.name, "Hello!", recollection.history, recollection.memories, options)
    prompt = assistant.on_device.prompt(question)
    persona = prompt.text.index(assistant.settings.system_prompt)
    assert persona < prompt.text.index("Answer like a pirate.") < prompt.text.index("Hello!")


def test_a_cloud_request_carries_the_turns_sampling(tmp_path):
    settings = load_settings(data_dir=tmp_path, cloud_base_url="http://127.0.0.1:9/v1", cloud_model="m")
    model = CloudModel(settings)
    body = model.request_body([], sampling=Sampling.within(settings, max_tokens=5, temperature=0.2, seed=4, stop="x"))
    assert (body["max_tokens"], body["temperature"], body["seed"], body["stop"]) == (5, 0.2, 4, ["x"])
    assert "seed" not in model.request_body([]) and model.request_body([])["max_tokens"] == settings.max_tokens


def test_a_request_beyond_capacity_waits_then_is_refused_and_a_freed_slot_is_taken():
    capacity = Capacity(slots=1, queue_size=1, wait=0.3)
    holding, release, outcomes = threading.Event(), threading.Event(), []

    def hold():
        with capacity.slot():
            holding.set()
            release.wait(30)

    def wait_for_slot():
        try:
            with capacity.slot():
                outcomes.append("served")
        except Busy as error:
            outcomes.append(error.retry_after)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(30)
    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    waiter.join(30)
    assert outcomes == [1]  # waited 0.3 s, then refused with Retry-After
    second = threading.Thread(target=wait_for_slot)
    second.start()  # this one waits while the slot is released
    release.set()
    second.join(30)
    holder.join(30)
    assert outcomes == [1, "served"]


def test_the_queue_has_a_size():
    capacity = Capacity(slots=1, queue_size=0, wait=30)
    with capacity.slot():
        with pytest.raises(Busy, match="queue is full"):
            with capacity.slot():
                pass
    with capacity.slot():  # released: free again
        pass


def test_api_keys_are_stored_hashed_found_revoked_and_wrong_ones_lock_the_address(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "dad", "correct horse", ["Dad"])
    users = Users.load(path)
    key = api_keys.issue(users, "dad")
    assert key not in path.read_text() and api_keys.hash_key(key) in path.read_text()
    check = api_keys.KeyCheck(Users.load(path), max_failures=3, lock_seconds=60)
    assert check.login(key, "10.0.0.1") == "dad" and check.login(None, "10.0.0.1") is None
    add_user(path, "dad", "a new password", ["Dad"])  # a new password keeps the login's keys
    assert check.login(key, "10.0.0.1") == "dad"
    api_keys.revoke(Users.load(path), "dad")  # another process revokes: the running check re-reads the file
    assert check.login(key, "10.0.0.1") is None
    key = api_keys.issue(Users.load(path), "dad")
    for _ in range(3):
        assert check.login("cfk-guess", "10.0.0.2") is None
    with pytest.raises(api_keys.Locked):
        check.login(key, "10.0.0.2")  # three wrong keys in a row locked the address, even for a right key
    assert check.login(key, "10.0.0.3") == "dad"  # other addresses are not locked out
    with pytest.raises(NotFoundError):
        api_keys.issue(users, "nobody")
    serving = Users.load(path)  # the server's copy; the CLI revokes meanwhile, then the server grants a profile
    api_keys.revoke(Users.load(path), "dad")
    serving.grant("dad", "Sam")
    assert Users.load(path).get("dad").keys == [] and Users.load(path).get("dad").profiles == ["Dad", "Sam"]


def test_histories_are_matched_to_the_right_stored_conversation(store, settings):
    ann, ben = store.add_profile("Ann"), store.add_profile("Ben")
    first = stored_conversation(store, ann.id, ["Hi", "How are you?"])
    stored_conversation(store, ben.id, ["Hi", "How are you?"])
    asked = lambda *texts: Asked(texts[-1], list(texts[:-1]), "")  # noqa: E731
    assert place(store, [ann.id], asked("Hi", "How are you?", "Good.")).session_id == first
    again = place(store, [ann.id], asked("Hi", "How are you?"))
    assert again.session_id == first and again.answered.user_text == "How are you?"
    assert place(store, [ann.id], asked("Hi", "Who are you?", "x")).session_id is None
    assert place(store, [ann.id], asked("Hi")).session_id is None  # no history: a new conversation
    with pytest.raises(NotFoundError):
        place(store, [ben.id], asked("Hello"), named=first)  # someone else's conversation
    split = read_messages([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "a\r\n"},
                           {"role": "assistant", "content": "b"}, {"role": "developer", "content": "Short."},
                           {"role": "user", "content": " c "}], 100, 50)
    assert split == Asked("c", ["a"], "Be kind.\nShort.")
    with pytest.raises(InputError, match="api_system_chars"):
        read_messages([{"role": "system", "content": "x" * 51}, {"role": "user", "content": "c"}], 100, 50)


def stored_conversation(store, person_id: int, texts: list[str]) -> int:
    from assistant.store.store import GenerationStats
    from assistant.store.turn_log import TurnLog

    session, log = store.new_session(person_id), TurnLog(store)
    for text in texts:
        exchange_id = log.begin_exchange(session.id, person_id, text)
        log.complete_exchange(exchange_id, "ok", GenerationStats("local", "m", 1.0, 1, 1.0))
    return session.id
