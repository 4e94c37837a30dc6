"""Isolation (issue 6, point 3): one person's memories are never another's.

- Property (hypothesis): over random stores of several people and random queries, recall
  (``assistant.memory.recall``, real SQLite, real FAISS) returns only complete exchanges; anything
  not of the asking person is a cold-start style example marked ``borrowed_from`` with its
  real owner's name, and is never put in the prompt as the person's own past turns. At least
  10,000 generated queries. The embedder is a hashed bag of words: different texts get
  different vectors and shared words make them close, so other people's exchanges are real
  nearest neighbours that only the per-person restriction keeps out.
- Canaries: a secret planted in one person's memories never reaches another person's prompt,
  reply or cloud payload (real pipeline and model; the cloud is a real llama.cpp server behind
  a recording proxy). The same secret does reach its owner's prompt, so the probe can fail.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from assistant import prompts
from assistant.models.local import LocalModel
from assistant.memory.memory import Memory
from assistant.memory.recall import recall
from assistant.settings import bundled_model_path, load_settings
from assistant.store.store import GenerationStats, Store
from profiles.tower import dialogue_text
from assistant.store.turn_log import TurnLog
from tests.test_cloud import no_openai_env  # noqa: F401  (autouse: the developer's OPENAI_* stay out)

DIM = 64
WORDS = ["cook", "dinner", "pasta", "sleep", "tired", "run", "knee", "basil", "water", "code", "bug", "tax",
         "bank", "owl", "rain", "walk", "music", "train"]
EXAMPLES, MIN_QUERIES = 110, 95  # 110 stores x at least 95 queries: over 10,000 queries in all
QUERIES = {"n": 0}


class HashedWords:
    """A deterministic embedder: normalised counts of hashed words (a fake only for speed)."""

    def __init__(self, salt: str):
        self.salt = salt

    def encode(self, texts) -> np.ndarray:
        vectors = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                digest = hashlib.blake2b(f"{self.salt}:{word}".encode(), digest_size=4).digest()
                vectors[row, int.from_bytes(digest, "little") % DIM] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def get_embedding_dimension(self) -> int:
        return DIM


class FakeEncoders:
    """What ``Memory`` asks of ``profiles.encoding.Encoders``, over ``HashedWords``."""

    version, meta, encoder_dir = "hashed-words", None, Path("/nonexistent")

    def __init__(self):
        self.general, self._dialogue = HashedWords("query"), HashedWords("dialogue")

    def queries(self, texts) -> np.ndarray:
        return self.general.encode(list(texts))

    def dialogues(self, dialogues) -> np.ndarray:
        return self._dialogue.encode([dialogue_text(d) for d in dialogues])


text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
exchange = st.tuples(text, text, st.sampled_from(["complete"] * 4 + ["failed", "pending"]), st.integers(0, 2))
household = st.lists(st.lists(exchange, max_size=9), min_size=2, max_size=5)
queries = st.lists(st.tuples(st.integers(0, 4), text, st.integers(-1, 2), st.booleans()),
                   min_size=MIN_QUERIES, max_size=MIN_QUERIES + 10)


def build(data_dir: Path, people: list, cold_start_min: int, recall_k: int):
    """A store with ``people`` (lists of (message, reply, status, conversation slot)) and their
    vectors written by the real ``Memory``; returns the memory, profiles and conversations."""
    settings = load_settings(data_dir=data_dir, cold_start_min=cold_start_min, recall_k=recall_k,
                             borrow_style_examples=True,  # borrowing on: the property covers the marked loans too
                             recall_min_score=-1.0, recluster_min=8)  # every candidate counts; clusters early
    store = Store(settings.database_path)
    memory = Memory(settings, store, encoders=FakeEncoders())
    profiles = [store.add_profile(f"P{n}") for n in range(len(people))]
    sessions = [[store.new_session(p.id).id for _ in range(3)] for p in profiles]
    stats = GenerationStats("local", "test", 1.0, 3, 1.0)
    for n, talk in enumerate(people):
        for k, (message, reply, status, slot) in enumerate(talk):
            # a tag of its own makes every text unique, so a leak is visible in the prompt's text too
            exchange_id = TurnLog(store).begin_exchange(sessions[n][slot], profiles[n].id, f"{message} m{n}x{k}")
            if status == "complete":
                memory.remember(TurnLog(store).complete_exchange(exchange_id, f"{reply} r{n}x{k}", stats))
            elif status == "failed":
                TurnLog(store).fail_exchange(exchange_id, "test", f"{reply} r{n}x{k}")
    return settings, memory, profiles, sessions


def check_recall(settings, memory, person, asked: str, session_id: int | None) -> None:
    store = memory.store
    own_texts = {e.user_text for e in store.exchanges(store.memory_ids(person.id)).values()}
    session = session_id if session_id is not None else store.new_session(person.id).id
    recollection = recall(memory, person, asked, session, before_exchange=10**9, settings=settings)
    assert all(e.session_id == session and e.profile_id == person.id for e in recollection.history)
    names = {p.id: p.name for p in store.profiles()}
    for m in recollection.memories:
        assert m.exchange.status == "complete" and m.exchange.session_id != session
        if m.borrowed_from is None:
            assert m.exchange.profile_id == person.id, "another person's exchange presented as theirs"
        else:
            assert m.exchange.profile_id != person.id and m.borrowed_from == names[m.exchange.profile_id]
            assert len(store.memory_ids(person.id, exclude_session=session)) < settings.cold_start_min
    for said in prompts.example_messages(recollection.memories, 10**6):  # the person's "own" past turns
        assert said["role"] == "assistant" or said["content"] in own_texts
    for item in recollection.summary()["memories"]:
        owner = store.exchange(item["id"]).profile_id
        assert (item["borrowed_from"] is None) == (owner == person.id)
    QUERIES["n"] += 1


@hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(people=household, asks=queries, cold_start_min=st.sampled_from([0, 3, 5, 100]),
       recall_k=st.sampled_from([1, 3, 8]))
def recall_stays_with_its_person(people, asks, cold_start_min, recall_k):
    with tempfile.TemporaryDirectory() as folder:
        settings, memory, profiles, sessions = build(Path(folder), people, cold_start_min, recall_k)
        try:
            for who, asked, slot, new_conversation in asks:
                n = who % len(profiles)
                check_recall(settings, memory, profiles[n], asked, None if new_conversation else sessions[n][slot])
        finally:
            memory.store.close()


@pytest.fixture
def one_faiss_thread():
    """FAISS's OpenMP threads spin on a busy 2-core machine: a search of a tiny index then takes
    ~9 ms instead of ~0.1 ms. One thread keeps 10,000 queries quick; the results are the same."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def test_recall_never_returns_another_persons_exchange_as_theirs(one_faiss_thread):
    QUERIES["n"] = 0
    recall_stays_with_its_person()
    print(f"{QUERIES['n']} generated queries over {EXAMPLES} random stores")
    assert QUERIES["n"] >= 10_000


# --- canaries through the real pipeline ---------------------------------------------------------

CANARIES = ["ZEBRA-4471", "PELICAN-0932"]
TRANSCRIPT = """\
Alice: My locker code is ZEBRA-4471, please remember it.
Confidant: Noted: your locker code is ZEBRA-4471.
Alice: And the wifi password is PELICAN-0932.
Confidant: Got it, the wifi password is PELICAN-0932.
Alice: What should I cook tonight?
Confidant: A quick vegetable stir-fry with rice.
Alice: Any tip for sleeping better?
Confidant: Keep the same bedtime every night.
Alice: How long do I boil an egg?
Confidant: Nine minutes for a hard-boiled egg.

Bob: yo what's a good film for tonight
Confidant: Try a classic comedy.
Bob: how do i fix a squeaky door
Confidant: A drop of oil on the hinge.
Bob: what's a quick lunch
Confidant: A sandwich with hummus and salad.
Bob: remind me to buy batteries
Confidant: Noted: batteries.
Bob: how far is a 10k run in miles
Confidant: About 6.2 miles.
"""
ASK_SECRET = "Remind me of my locker code and the wifi password, please."


@pytest.fixture(scope="module")
def cloud_server():
    """A real OpenAI-compatible server (llama.cpp's) on 127.0.0.1, on one thread (see ``quick_local``)."""
    from tests.browser import free_port, serving
    from tests.test_cloud import KEY

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "assistant.models.llama_runtime", "serve", "--model", str(bundled_model_path()), "--model_alias",
               "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "1",
               "--api_key", KEY, "--verbose", "False"]
    with serving(command, f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}):
        yield url


@pytest.fixture(scope="module")
def quick_local(tmp_path_factory):
    """The real bundled model with short greedy replies on one llama.cpp thread (its threads spin
    while they wait, so on a shared 2-core machine one thread is faster than two)."""
    return LocalModel(load_settings(data_dir=tmp_path_factory.mktemp("model"), max_tokens=16, temperature=0.0,
                                    seed=7, n_threads=1))


@pytest.fixture
def household(tmp_path, cloud_server, quick_local, monkeypatch):
    """Alice (with the canaries) and Bob, imported through the real importer and memory; the
    cloud is the real llama.cpp server behind a proxy that records every request."""
    from assistant.people.importers import transcript
    from assistant.pipeline import Assistant
    from tests.faults import FaultServer
    from tests.test_cloud import KEY

    proxy = FaultServer(["proxy"], upstream=cloud_server)
    settings = load_settings(data_dir=tmp_path / "data", max_tokens=16, temperature=0.0, seed=7,
                             cloud_base_url=proxy.url, cloud_model="smollm2", cloud_api_key=KEY,
                             cloud_first_token_timeout=120, cloud_total_timeout=240)
    local = quick_local
    assistant = Assistant(settings, local=local)
    (tmp_path / "chat.txt").write_text(TRANSCRIPT)
    assistant.memory.ingest(transcript.parse(tmp_path / "chat.txt", "Confidant"), progress=False)
    seen: list[str] = []
    fit = local.fit

    def recording(*args, **kwargs):  # observes the prompt the model gets; changes nothing
        prompt = fit(*args, **kwargs)
        seen.append(prompt.text)
        return prompt

    monkeypatch.setattr(local, "fit", recording)
    yield assistant, proxy, seen
    proxy.close()


def leaks(texts) -> list[str]:
    return [c for c in CANARIES for t in texts if c.lower() in (t or "").lower()]


def turn_texts(assistant, proxy, seen, person, mode) -> list[str]:
    """Everything one turn showed the model, said back, or sent out, as text."""
    from assistant.pipeline import Finished

    sent_before, prompts_before = len(proxy.completions), len(seen)
    finished = list(assistant.turn(ASK_SECRET, person.id, mode=mode))[-1]
    assert isinstance(finished, Finished)
    exchange = finished.exchange
    recalled = [assistant.store.exchange(m["id"]) for m in json.loads(exchange.recalled)["memories"]]
    texts = seen[prompts_before:] + [exchange.reply, exchange.cloud_payload]
    texts += [json.dumps(r["body"]) for r in proxy.completions[sent_before:]]
    return texts + [f"{e.user_text} {e.reply}" for e in recalled]  # the "memories used" note


def test_a_canary_in_one_persons_memories_never_reaches_another_persons_turn(household):
    assistant, proxy, seen = household
    bob, alice = assistant.store.profile("Bob"), assistant.store.profile("Alice")
    for mode in ("off", "auto", "always"):
        assert leaks(turn_texts(assistant, proxy, seen, bob, mode)) == [], mode
    assert len(proxy.completions) >= 1  # "always" did reach the (real) cloud
    # the probe works: the owner's own turn does put the secret in front of the model
    assert leaks(turn_texts(assistant, proxy, seen, alice, "off"))


def test_a_canary_never_reaches_a_newcomers_turn(household):
    assistant, proxy, seen = household
    carol = assistant.store.add_profile("Carol")
    assert leaks(turn_texts(assistant, proxy, seen, carol, "off")) == []
