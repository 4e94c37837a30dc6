"""Issue 16 points 1–2: the conversation eval and its scorers, memories in the system message
(not as earlier chat turns), and replies that end on a sentence or show the cut."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.evaluation import conversation
from assistant.evaluation import conversation_scores as score
from assistant.memory.recall import recall
from assistant.models.chat import Question
from assistant.models.local import LocalModel
from assistant.models.sentences import CUT_MARK, end_at_sentence
from assistant.pipeline import Assistant, Chunk, Finished
from assistant.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "tests" / "fixtures" / "conversation" / "small.json"
HOUSEHOLD = ["Maya", "Tom", "Priya"]


@pytest.mark.parametrize("reply, allowed, names, verdict", [
    ("Sure! Here is a recipe you will like.", set(), [], "none"),
    ("Hi Maya, try a lentil curry.", set(), ["Maya"], "right"),
    ("Maya, as a nurse you could rest first.", set(), ["Maya"], "right"),
    ("Of course, Tom. Night shifts are hard.", set(), ["Tom"], "other"),  # asked by Maya
    ("Great question, Amara! Try tofu.", set(), ["Amara"], "invented"),
    ("Hello Amara. Try tofu.", set(), ["Amara"], "invented"),  # after a greeting
    ("🌟Celeste, welcome to the kitchen.", set(), ["Celeste"], "invented"),  # addressed at the start
    ("Sure, try tofu. Usually, rice works.", set(), [], "none"),  # openers, not names
    ("Cooking is fun. Beans are cheap.", set(), [], "none"),  # sentence-initial words are not names
    ("Enjoy a run along the river in Portland this Saturday.", {"portland"}, [], "none"),  # she said Portland
    ("Enjoy a run along the river in Portland this Saturday.", set(), ["Portland"], "invented"),
    ("I think you and Priya's sister would agree.", set(), ["Priya"], "other"),
])
def test_the_name_scorer_tells_right_other_and_invented_names(reply, allowed, names, verdict):
    found = score.names_in(reply, HOUSEHOLD, allowed)
    assert found == names
    assert score.name_verdict(found, "Maya", HOUSEHOLD) == verdict


def test_the_copy_scorers_see_copies_and_not_fresh_text():
    earlier = "A great meal after marathon training is always what you really need to recover well."
    assert score.overlap(earlier, [earlier]) == pytest.approx(100.0)
    assert score.overlap("Try a bowl of lentil soup with bread.", [earlier]) < 20
    assert score.overlap("anything", []) == 0.0
    assert score.ngram_precision(earlier, ["unrelated words only here", earlier]) == 1.0
    assert score.ngram_precision("Lentil soup with crusty bread tonight.", [earlier]) == 0.0
    half = "A great meal after marathon training is a bowl of lentil soup tonight"
    assert 0.3 < score.ngram_precision(half, [earlier]) < 0.7


@pytest.mark.parametrize("reply, keywords, hit", [
    ("Since you're vegetarian, try a bean chili.", ["vegetarian"], True),
    ("Try a Vegetarian lasagne.", ["vegetarian"], True),
    ("Try a steak.", ["vegetarian", "meat"], False),
    ("Try meatless Monday.", ["meat"], True),  # a word that starts with the keyword
    ("I'd suggest the cream tea.", ["tea"], True),
    ("I'd suggest something steady.", ["tea"], False),  # "steady" holds "tea" but not as a word start
])
def test_the_fact_scorer_matches_keywords_at_word_starts(reply, keywords, hit):
    assert score.reflects(reply, keywords) is hit


@pytest.mark.parametrize("reply, cut", [
    ("That sounds good.", False), ("Really?", False), ("Go for it!", False), ("She said \"yes.\"", False),
    ("Try this (it works.)", False), ("Enjoy 🌟", False), ("And then…", False),
    ("don't be late; I", True), ("A great meal after marathon training is always what you really", True),
    ("Buy: 1. tofu, 2. rice,", True), ("", False),
])
def test_the_cut_scorer_flags_replies_that_end_mid_sentence(reply, cut):
    assert score.is_cut(reply) is cut


def chunks(*texts, finish="stop"):
    for text in texts:
        yield {"choices": [{"text": text, "finish_reason": None}]}
    yield {"choices": [{"text": "", "finish_reason": finish}]}


def test_a_stream_stops_at_the_sentence_end_near_the_limit_and_marks_a_hard_cut():
    words = ["One", " two", " three", " four", " five", " six", " end", ".", " Next", " part"]
    assert "".join(end_at_sentence(chunks(*words, finish="length"), max_tokens=9)) == "One two three four five six end."
    # no sentence end in the last tokens: the cut is marked
    assert "".join(end_at_sentence(chunks("a", " b", " c", " d", finish="length"), 4)) == "a b c d" + CUT_MARK
    # far from the limit a sentence end changes nothing, and a normal stop adds no mark
    assert "".join(end_at_sentence(chunks("Hi.", " More", " text", "."), 100)) == "Hi. More text."
    assert list(end_at_sentence(chunks("a", "b", "c"), 100)) == ["a", "b", "c"]  # one chunk per model chunk


def test_a_reply_stopped_by_max_tokens_with_the_real_model_ends_on_a_sentence_or_shows_the_cut(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", max_tokens=12, temperature=0.0, seed=7, n_threads=1)
    assistant = Assistant(settings, local=LocalModel.shared(settings))
    events = list(assistant.turn("Tell me a long story about a dragon and a knight.", "Ann", create_speaker=True))
    streamed = "".join(e.text for e in events if isinstance(e, Chunk))
    [finished] = [e.exchange for e in events if isinstance(e, Finished)]
    assert finished.reply == streamed.strip() and len([e for e in events if isinstance(e, Chunk)]) > 1
    assert not score.is_cut(finished.reply), finished.reply  # ends on ". ! ?" or on the visible "…"
    assert finished.tokens <= settings.max_tokens
    assistant.store.close()


def test_recalled_exchanges_reach_the_model_in_the_system_message_not_as_earlier_turns(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", max_tokens=24, temperature=0.0, seed=7, n_threads=1,
                             recall_min_score=-1.0)
    assistant = Assistant(settings, local=LocalModel.shared(settings))
    list(assistant.turn("I'm vegetarian, I never eat meat.", "Maya", create_speaker=True))
    [first] = assistant.store.exchanges(assistant.store.memory_ids(assistant.store.profiles()[0].id)).values()
    person = assistant.store.profiles()[0]
    session = assistant.store.new_session(person.id)
    asked = "What should I cook for dinner tonight?"
    recollection = recall(assistant.memory, person, asked, session.id, 10**9, settings)
    assert [m.exchange.id for m in recollection.memories] == [first.id]
    prompt = assistant.on_device.prompt(Question(10**9, "Maya", asked, recollection.history, recollection.memories))
    system = prompt.text.split("<|im_end|>")[0]
    assert system.startswith("<|im_start|>system") and "What you know about them" in system
    assert "- I'm vegetarian, I never eat meat." in system and system.count("Maya") == 1  # the name stated once
    assert prompt.text.count("<|im_start|>user") == 1 and prompt.text.count("<|im_start|>assistant") == 1
    assert first.reply.strip() and first.reply.strip()[:40] not in prompt.text  # the old reply is not shown
    user = prompt.text.split("<|im_start|>user")[1].split("<|im_end|>")[0]
    assert "(What I told you before: I'm vegetarian, I never eat meat.)" in user and user.rstrip().endswith(asked)
    assistant.store.close()


def test_the_eval_plays_a_slice_end_to_end_and_writes_its_json(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", "conversation", "--data", str(SMALL), "--out", str(out),
         "--set", "max_tokens=24", "--set", "n_threads=1"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**__import__("os").environ, "CONFIDANT_DATA_DIR": str(tmp_path / "ignored")})
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["n"] == 4 and results["people"] == ["Maya", "Tom"] and results["settings"]["max_tokens"] == 24
    rows = results["replies"]
    assert [r["person"] for r in rows] == ["Maya", "Tom", "Maya", "Tom"]
    assert all(r["reply"].strip() and r["name"] in ("none", "right", "other", "invented") for r in rows)
    assert rows[2]["recalled"] >= 0 and rows[2]["fact"] in (True, False) and rows[3]["fact"] is None
    assert rows[0]["rougeL_previous"] == 0.0  # nothing before the first reply
    for key, _ in conversation.METRICS:
        assert set(results["aggregate"][key]) == {"mean", "ci95", "n"}
    assert "| stated fact reflected" in done.stdout
    assert not (tmp_path / "ignored").exists()  # a temporary store, never the configured data dir
    rescored = conversation.rescore(results)
    assert rescored["aggregate"] == results["aggregate"]  # the saved replies score the same again
    table = conversation.comparison_table({"before": results, "after": rescored}).splitlines()
    assert table[0] == "| measure | before | after |" and len(table) == 2 + len(conversation.METRICS)


def test_a_malformed_script_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"people": ["Maya"], "turns": [{"person": "Zed", "conversation": "z", "text": "hi"}]}))
    with pytest.raises(Exception, match="people not listed"):
        conversation.read_script(bad)
    bad.write_text("{not json")
    with pytest.raises(Exception, match="cannot read the conversation script"):
        conversation.read_script(bad)


def test_the_semantic_caches_earlier_answer_is_shown_with_its_reply_to_reuse():
    from types import SimpleNamespace

    from assistant import prompts
    from assistant.models.chat import EarlierAnswer

    cloud = SimpleNamespace(id=1, user_text="How far is the Moon?", reply="About 384,400 km on average.")
    own = SimpleNamespace(exchange=SimpleNamespace(id=2, user_text="I love astronomy.", reply="Noted!"), borrowed_from=None)
    text = prompts.chat_system_message("P", "Maya", [EarlierAnswer(cloud, 0.95), own])["content"]
    assert "About 384,400 km on average." in text and "- I love astronomy." in text
    assert "Noted!" not in text and "- How far is the Moon?" not in text and "Do not repeat" not in text
