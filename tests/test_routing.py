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
    ("#### 18", True), ("The answer is $18.00.", True), ("It is 1,800", False), ("no idea", False),
    ("She makes 18 dollars, or 20", False),          # the final number counts, not the first
    ("18 eggs, so 16 - 3 - 4 = 9", False), ("20-2", False),  # "-2" after a digit is a minus, not minus two
])
def test_numeric_checker_takes_the_final_number(answer, expected):
    assert is_correct(answer, question("How much?", ["18"], "numeric")) is expected


def test_numeric_checker_reads_a_negative_number():
    assert is_correct("It falls to -5 degrees.", question("How cold?", ["-5"], "numeric"))
    assert not is_correct("10-5", question("How cold?", ["-5"], "numeric"))


@pytest.mark.parametrize("answer, expected", [
    ("It was in December 1972.", True), ("The last time was december, 1972!", True), ("In 1972", False), ("", False),
])
def test_short_answer_checker_is_squad_normalised(answer, expected):
    assert is_correct(answer, question("when?", ["14 December 1972 UTC", "December 1972"], "short")) is expected


MC = "Which gas do plants take in?\nA. oxygen\nB. carbon dioxide\nC. helium\nD. neon"


@pytest.mark.parametrize("answer, expected", [
    # committing to exactly one option, the gold one
    ("B", True), ("(B)", True), ("B.", True), ("**B**", True), ("B. carbon dioxide", True), ("B) carbon dioxide", True),
    ("The answer is B.", True), ("Answer: (B)", True), ("The correct answer is B because plants breathe it.", True),
    ("Plants take in carbon dioxide.", True), ("carbon dioxide", True),
    # a wrong option, or no commitment at all
    ("A", False), ("A. oxygen", False), ("The answer is A.", False),
    ("A plant takes in gases.", False),                       # a sentence starting with "A" chooses nothing
    ("A hollow tube carries carbon dioxide and oxygen", False),
    ("The answer is A hollow tube.", False),
    ("A. oxygen\nB. carbon dioxide", False),                   # listing options chooses none of them
    ("B. carbon dioxide\nC. helium", False), ("A\nB", False), ("B or C", False),
    ("A. carbon dioxide", False),                              # a letter with another choice's text
    ("oxygen or carbon dioxide", False), ("The answer is B.\nThe answer is C.", False),
    ("E.g. plants need light.", False), ("I don't know.", False), ("", False), ("F", False),
])
def test_multiple_choice_checker_needs_exactly_one_committed_option(answer, expected):
    assert is_correct(answer, question(MC, ["B", "carbon dioxide"], "mc")) is expected


def test_multiple_choice_checker_counts_a_choice_inside_a_longer_one_once():
    dogs = "Which is food?\nA. dog\nB. hot dog\nC. cat"
    assert is_correct("A hot dog, of course.", question(dogs, ["B", "hot dog"], "mc"))
    assert not is_correct("A hot dog, of course.", question(dogs, ["A", "dog"], "mc"))


@pytest.mark.parametrize("answer, gold, expected", [
    ("Yes, it is.", "yes", True), ("yes", "yes", True), ("No.", "yes", False), ("No, it is not.", "no", True),
    ("Yes. There is no doubt about it.", "yes", True),       # opens with yes: "no doubt" is not an answer
    ("The answer is no.", "no", True), ("I think the answer is yes, though no one knows.", "yes", True),
    ("True", "yes", True), ("False.", "yes", False), ("It is, yes.", "yes", True),
    ("Yes or no?", "yes", False), ("Yes and no.", "no", False), ("yes/no", "yes", False),
    ("Some say yes, some say no.", "yes", False),            # both, neither leading
    ("Maybe.", "yes", False), ("", "no", False), ("Nothing is certain.", "no", False),
])
def test_yes_no_checker_needs_a_committed_answer(answer, gold, expected):
    assert is_correct(answer, question("Is it?", [gold], "yesno")) is expected


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
                          chat_shares=(0.5, 0.2, 0.8), budget=0.3, seed=0, progress=False)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert (tmp_path / "out" / "routing.png").stat().st_size > 1000
    assert saved["n"] == 24 and saved["n_questions"] == 12 and saved["n_chat"] == 12 and saved["chat_share"] == 0.5
    assert 0.5 <= saved["local_accuracy"] <= 1.0  # the conversation half counts as answered
    at_budget = saved["at_budget"]
    assert {"budget", "cloud_rate", "budget_adherence", "accuracy", "gap_recovered", "oracle_gap_recovered",
            "threshold", "cloud_tokens"} <= set(at_budget)
    assert at_budget["budget_adherence"] == pytest.approx(abs(at_budget["cloud_rate"] - 0.3), abs=1e-4)
    assert set(saved["baselines"]) == {"random", "length", "oracle"}
    assert saved["baselines"]["oracle"]["cloud_rate"] == at_budget["cloud_rate"]
    assert saved["baselines"]["oracle"]["gap_recovered"] >= at_budget["gap_recovered"] - 1e-9
    assert saved["curve"][0][0] == 0.0 and saved["curve"][-1] == [1.0, 1.0]
    assert saved["router_ms_p95"] >= saved["router_ms_p50"] > 0
    # one stream per chat share, each replayed in order, shuffled and in bursts
    assert {share: s["n"] for share, s in saved["streams"].items()} == {"0.5": 24, "0.2": 15, "0.8": 60}
    for stream in saved["streams"].values():
        for order in ("shuffled", "bursts"):
            assert 0 <= stream[order]["cloud_rate"] <= 1 and stream[order]["n"] == stream["n"]
    assert saved["streams"]["0.5"]["shuffled"] == at_budget
    # the cloud tokens at the budget: a part of what sending every turn would cost
    tokens = at_budget["cloud_tokens"]
    assert tokens["total"] == tokens["prompt"] + tokens["completion_estimate"] > 0
    assert tokens["total"] < tokens["if_every_turn_went"]
    assert saved["targets"]["worst_budget_adherence"] == max(
        s[o]["budget_adherence"] for s in saved["streams"].values() for o in ("shuffled", "bursts"))
    cache = saved["cache_replay"]
    assert cache["cloud_rate_with_cache"] <= cache["cloud_rate_without_cache"] and cache["router_choose_ms_p95"] > 0
    assert "assumption" in saved and saved["excluded_as_router_training"] == 0


def test_the_routing_benchmark_refuses_a_chat_share_of_one(tmp_path):
    with pytest.raises(InputError, match="--chat-share"):
        routing.run(QUESTIONS, FIXTURES / "mqd" / "test.jsonl.gz", tmp_path / "out", load_settings(), chat_shares=(1.0,))


def test_stream_orders_keep_every_item_once_and_bursts_come_in_runs():
    from assistant.evaluation.stream_replay import arrange

    kinds = np.r_[np.ones(100, dtype=bool), np.zeros(300, dtype=bool)]
    for order in ("shuffled", "bursts"):
        assert sorted(arrange(kinds, order, seed=1)) == list(range(400))
    runs = np.count_nonzero(np.diff(kinds[arrange(kinds, "bursts", seed=1)].astype(int)))
    shuffled_runs = np.count_nonzero(np.diff(kinds[arrange(kinds, "shuffled", seed=1)].astype(int)))
    assert runs < shuffled_runs / 3


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


@pytest.mark.parametrize("answer, kind, expected", [
    ("B", "mc", True), ("Plants take in carbon dioxide.", "mc", True), ("A. oxygen\nB. carbon dioxide", "mc", False),
    ("A plant breathes.", "mc", False), ("No, never.", "yesno", True), ("Yes or no?", "yesno", False),
    ("About 40 of them.", "numeric", True), ("Many.", "numeric", False),
    ("Neil Armstrong", "short", True), ("which gas do plants take in", "short", False), ("", "short", False),
])
def test_a_draft_commits_to_an_answer_or_not_without_reading_the_gold(answer, kind, expected):
    from assistant.evaluation.questions import commits

    text = MC if kind == "mc" else "Which gas do plants take in?"
    assert commits(answer, question(text, ["unused"], kind)) is expected


def test_the_cascade_moves_drafts_that_commit_to_nothing_up_and_reports_its_cost():
    from assistant.evaluation import cascade

    settings = load_settings()
    model = DifficultyModel.load(settings.router_path)
    questions = [q for path in QUESTIONS for q in read_questions(path)][:12]
    chat = ["hey, how are you doing today?", "I just got back from the gym, so tired lol"] * 6
    answers = ["I could not say." for _ in questions]     # no draft commits to anything
    graded = np.zeros(len(questions), dtype=bool)
    texts = [q.text for q in questions] + chat
    vectors = np.asarray(shared_general_tower(settings.embedder_path).encode(texts, normalize_embeddings=True))
    correct = np.r_[graded, np.ones(len(chat), dtype=bool)]
    scores = model.score(texts, vectors)
    found = cascade.measure(questions, answers, graded, texts, vectors, correct, scores, 2.0, model, 0.3)
    assert found["committed_share_of_questions"] == 0.0 and found["local_accuracy_when_committed"] is None
    assert found["drafted_share"] == pytest.approx(0.5, abs=0.05)   # the questions, not the conversation
    assert found["cascade"]["auroc"] >= found["fast_score"]["auroc"]  # every uncommitted draft rose
    assert 0 < found["draft_s_added_per_turn"] <= 2.0
