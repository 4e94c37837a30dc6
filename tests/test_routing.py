"""The router's model, the answer checkers and the routing benchmark end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.routing.difficulty import DifficultyModel
from assistant.errors import InputError
from assistant.evaluation import routing
from assistant.evaluation.questions import Question, is_correct, read_questions
from assistant.settings import load_settings
from profiles.encoding import shared_general_tower

FIXTURES = Path(__file__).parent / "fixtures"
QUESTIONS = sorted((FIXTURES / "routing").glob("*.jsonl"))


def question(text, answers, kind):
    return Question("q", "test", text, tuple(answers), kind)


@pytest.mark.parametrize("answer, expected", [
    ("She makes $18 every day.", True), ("So 16 - 3 - 4 = 9 eggs, 9 * 2 = 18", True), ("18.0", True),
    ("It is 1,800", False), ("no idea", False), ("She makes 18 dollars, or 20", False),
])
def test_numeric_checker_takes_the_last_number(answer, expected):
    assert is_correct(answer, question("How much?", ["18"], "numeric")) is expected


@pytest.mark.parametrize("answer, expected", [
    ("It was in December 1972.", True), ("The last time was december, 1972!", True), ("In 1972", False), ("", False),
])
def test_short_answer_checker_is_squad_normalised(answer, expected):
    assert is_correct(answer, question("when?", ["14 December 1972 UTC", "December 1972"], "short")) is expected


MC = "Which gas do plants take in?\nA. oxygen\nB. carbon dioxide\nC. helium\nD. neon"


@pytest.mark.parametrize("answer, expected", [
    ("B", True), ("B. carbon dioxide", True), ("The answer is B.", True), ("(B)", True),
    ("Plants take in carbon dioxide.", True), ("A", False), ("oxygen or carbon dioxide", False), ("A plant", False),
])
def test_multiple_choice_checker_reads_a_letter_or_the_choice_text(answer, expected):
    assert is_correct(answer, question(MC, ["B", "carbon dioxide"], "mc")) is expected


def test_yes_no_checker():
    assert is_correct("Yes, it is.", question("Is it?", ["yes"], "yesno"))
    assert not is_correct("No.", question("Is it?", ["yes"], "yesno"))


def test_a_malformed_question_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answers": ["a"], "type": "short"}\n{"question": "q", "type": "essay"}\n')
    with pytest.raises(InputError, match="line 2"):
        read_questions(bad)


def test_the_shipped_router_scores_questions_above_conversation():
    settings = load_settings()
    model = DifficultyModel.load(settings.router_path)
    texts = ["A shop sells 4 pens for $2 each and 3 books for $5 each. How much for all of them?",
             "Which planet is closest to the sun?\nA. Venus\nB. Mercury\nC. Mars\nD. Earth",
             "hey, how are you doing today?", "I just got back from the gym, so tired lol"]
    vectors = np.asarray(shared_general_tower(settings.embedder_path).encode(texts, normalize_embeddings=True))
    scores = model.score(texts, vectors)
    assert ((0 <= scores) & (scores <= 1)).all()
    assert min(scores[:2]) > max(scores[2:])
    assert model.kind(texts, vectors) == ["arithmetic word problem", "science question", "conversation", "conversation"]
    assert model.threshold(0.1) >= model.threshold(0.3) >= model.threshold(0.6)


def test_the_routing_benchmark_end_to_end(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    results = routing.run(QUESTIONS, FIXTURES / "mqd" / "test.jsonl.gz", tmp_path / "out", settings, limit=2,
                          chat_share=0.5, budget=0.3, seed=0, progress=False)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert (tmp_path / "out" / "routing.png").stat().st_size > 1000
    assert saved["n"] == 24 and saved["n_questions"] == 12 and saved["n_chat"] == 12
    assert 0.5 <= saved["local_accuracy"] <= 1.0  # the conversation half counts as answered
    assert {"budget", "cloud_rate", "accuracy", "gap_recovered"} <= set(saved["at_budget"])
    assert set(saved["baselines"]) == {"random", "length", "oracle"}
    assert saved["baselines"]["oracle"]["gap_recovered"] >= saved["at_budget"]["gap_recovered"] - 1e-9
    assert saved["curve"][0][0] == 0.0 and saved["curve"][-1] == [1.0, 1.0]
    assert saved["router_ms_p95"] >= saved["router_ms_p50"] > 0
    assert saved["cache_replay"]["cloud_rate_with_cache"] <= saved["cache_replay"]["cloud_rate_without_cache"]
    assert "assumption" in saved and saved["excluded_as_router_training"] == 0


def test_training_a_router_round_trips_and_remembers_what_it_saw(tmp_path):
    from assistant.routing.difficulty import CONVERSATION, Example, train
    from assistant.evaluation.questions import read_chat

    settings = load_settings()
    tower = shared_general_tower(settings.embedder_path)
    questions = [q for path in QUESTIONS for q in read_questions(path)]
    chat = read_chat(FIXTURES / "mqd" / "test.jsonl.gz")[: len(questions)]
    examples = [Example(q.text, True, q.source) for q in questions] + [Example(t, False, CONVERSATION) for t in chat]
    graded = [(q.text, q.type != "mc") for q in questions]  # as if only multiple choice were ever right
    model = train(examples[::2], examples[1::2], graded, lambda texts: tower.encode(texts, normalize_embeddings=True))
    model.save(tmp_path / "router.npz")
    loaded = DifficultyModel.load(tmp_path / "router.npz")
    texts = [q.text for q in questions[:3]] + chat[:3]
    vectors = tower.encode(texts, normalize_embeddings=True)
    assert np.allclose(loaded.score(texts, vectors), model.score(texts, vectors))
    assert loaded.seen(questions[0].text) and not loaded.seen(chat[0])
    mc = [q.text for q in questions if q.type == "mc"][:5]
    numeric = [q.text for q in questions if q.type == "numeric"][:5]
    assert loaded.score(numeric, tower.encode(numeric, normalize_embeddings=True)).mean() > \
        loaded.score(mc, tower.encode(mc, normalize_embeddings=True)).mean()  # the failure factor at work


def test_a_broken_router_file_is_a_clear_error(tmp_path):
    from assistant.errors import ModelError

    (tmp_path / "router.npz").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="could not read the router model"):
        DifficultyModel.load(tmp_path / "router.npz")
