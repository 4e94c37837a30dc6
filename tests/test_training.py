"""Teaching the local model, on the real small model and real data from the fixtures.

One short training run (a few dozen steps on the fixture's 350 Friends pairs, one torch thread)
is shared by the tests of the module: the loss falls, the exported adapter loads in llama.cpp and
moves the next-token distribution the way the torch model moved, scale 0 is the base exactly,
a tuned reply holds its length prior, and deleting a person removes the adapter. What it learns
from and when there is too little is ``test_training_data``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from assistant.errors import AdapterError, TrainingCancelled, TrainingError
from assistant.memory.memory import Memory
from assistant.models.llama_runtime import create_llama
from assistant.people.importers import mqd
from assistant.people.service import People
from assistant.settings import load_settings
from assistant.store.store import GenerationStats, Store
from assistant.store.turn_log import TurnLog
from assistant.training import adapter
from assistant.training.export import read_metadata
from assistant.training.dialogues import learnable, prompt_of, render_prompt
from assistant.training.model import encode
from assistant.training.serving import (AdapterSwitch, line_end_tokens, next_token_logits, reply_length,
                                       sentence_end_tokens)
from assistant.training.teaching import PRIOR_TOKENS_PER_S
from assistant.training.trainer import TuneConfig, sentence_lead, tune
from assistant.turn_options import TurnOptions
from tests.training_fixtures import FIXTURES, QUICK, RESPONDER, llm, trained  # noqa: F401 (fixtures)


def test_training_tokens_are_llama_cpps(trained, llm):
    tokenizer = trained[2].tokenizer
    prompt = render_prompt([], "Joey Tribbiani", "How you doin'?")
    ids, labels = encode(tokenizer, prompt, " Fine.\n", 64)
    assert ids[: labels.count(-100)] == llm.tokenize(prompt.encode(), add_bos=False, special=True)
    assert [t for t in labels if t != -100] == tokenizer(" Fine.\n", add_special_tokens=False).input_ids


def test_loss_falls(trained):
    result = trained[2]
    assert result.steps == QUICK.steps and result.tokens > 0
    assert result.val_nll_after < result.val_nll_before  # held-out reply NLL, never trained on


def test_adapter_metadata(trained):
    settings, memory, result, path = trained
    info = adapter.load_info(settings.data_dir, settings.model_path)
    assert info["exchanges"] == len(result.train) and len(info["people"]) == 5
    assert info["base_model"]["sha256"] == adapter.base_model_hash(settings.model_path)
    assert info["settings"]["r"] == 16 and info["settings"]["alpha"] == 8.0
    assert len(info["exchange_ids"]) == 350


def test_adapter_changes_llama_cpp_like_torch_and_scale_zero_is_base(trained, llm):
    settings, memory, result, path = trained
    prompt = prompt_of(result.validation[0])
    ids = torch.tensor([result.tokenizer(prompt, add_special_tokens=False).input_ids])
    with torch.no_grad():
        torch_tuned = result.model(input_ids=ids).logits[0, -1].numpy()
        with result.model.disable_adapter():
            torch_base = result.model(input_ids=ids).logits[0, -1].numpy()
    switch = AdapterSwitch(llm)
    base = next_token_logits(llm, prompt)
    switch.use(path, 1.0)
    tuned = next_token_logits(llm, prompt)
    switch.use(path, 0.0)
    zero = next_token_logits(llm, prompt)
    switch.use(None)
    assert np.abs(tuned - base).max() > 0.1
    assert np.corrcoef(tuned - base, torch_tuned - torch_base)[0, 1] > 0.5  # same change, through the Q4_1 base
    assert np.array_equal(zero, base) and np.array_equal(next_token_logits(llm, prompt), base)


def test_the_adapter_merged_into_the_weights_moves_llama_cpp_as_the_adapter_does(trained, llm, tmp_path):
    from assistant.training.merge import merge_adapter

    settings, memory, result, path = trained
    merged_path = merge_adapter(settings.model_path, path, tmp_path / "merged.gguf")
    assert read_metadata(merged_path) == read_metadata(path) and list(tmp_path.iterdir()) == [merged_path]
    merged = create_llama(model_path=str(merged_path), n_ctx=512, n_threads=1, verbose=False)
    switch, agree = AdapterSwitch(llm), 0
    prompts = [prompt_of(e) for e in result.validation[:6]]
    for prompt in prompts:
        base = next_token_logits(llm, prompt)
        switch.use(path, 1.0)
        tuned = next_token_logits(llm, prompt)
        switch.use(None)
        fused = next_token_logits(merged, prompt)
        assert np.corrcoef(fused - base, tuned - base)[0, 1] > 0.85  # the same change (Q8_0 re-rounds the base)
        agree += int(fused.argmax() == tuned.argmax())
    assert agree >= len(prompts) - 1


def test_an_adapter_for_another_model_is_not_merged(trained, tmp_path):
    from assistant.training.export import _write
    from assistant.training.merge import merge_adapter

    settings, _, _, _ = trained
    foreign = _write(tmp_path / "foreign.gguf", 8.0, {}, {"blk.99.attn_q.weight.lora_a": np.zeros((2, 4), np.float32),
                                                        "blk.99.attn_q.weight.lora_b": np.zeros((4, 2), np.float32)})
    with pytest.raises(AdapterError, match="trained for another model"):
        merge_adapter(settings.model_path, foreign, tmp_path / "merged.gguf")
    assert not (tmp_path / "merged.gguf").exists()


def test_the_length_prior_holds_the_line_to_its_length_then_ends_at_a_sentence_end(trained, llm):
    settings, memory, result, path = trained
    switch = AdapterSwitch(llm)
    prompt = render_prompt([], "Monica Geller", "Do you smell beets?")
    free = switch.generate(prompt, max_tokens=64)
    held = switch.generate(prompt, max_tokens=64, length=30)
    tokens = lambda text: len(llm.tokenize(text.encode(), add_bos=False))  # noqa: E731
    assert tokens(free) < 29  # the base model's own line ends sooner...
    assert "\n" not in held and tokens(held) >= 29  # ...the held one goes on (the strip may take a space)...
    assert held.rstrip("\"')]").endswith((".", "!", "?")) and tokens(held) < 63  # ...to the first sentence end after
    ends, sentence_ends = line_end_tokens(llm), sentence_end_tokens(llm)
    assert llm.token_eos() in ends and all(b"\n" in llm.detokenize([t]) for t in ends if t != llm.token_eos())
    assert {llm.tokenize(text, add_bos=False)[-1] for text in (b"Yes.", b"Why?", b"No!")} <= sentence_ends
    assert llm.tokenize(b"Yes, the", add_bos=False)[-1] not in sentence_ends


def test_the_example_replies_are_decoded_as_a_tuned_turn_through_llama_cpp(trained, llm):
    from assistant.training.samples import before_and_after

    settings, memory, result, path = trained
    fixed = settings.model_copy(update={"seed": 7, "temperature": 0.6})
    samples = before_and_after(result, fixed, path, 3)
    assert [s["message"] for s in samples] == [e.query for e in result.validation[:3]]
    assert before_and_after(result, fixed, path, 3) == samples  # sampled at the settings' fixed seed
    tokens = lambda text: len(llm.tokenize(text.encode(), add_bos=False))  # noqa: E731
    for sample, example in zip(samples, result.validation):
        floor = reply_length(result.reply_length_quantiles, 7, example.query, result.sentence_lead)
        assert "\n" not in sample["after"] and tokens(sample["after"]) >= min(floor, 64) - 1  # the length prior holds
    assert any(s["before"] != s["after"] for s in samples)  # the adapter is on for "after" only


def test_adapter_for_another_base_model_is_refused(trained, tmp_path):
    settings, _, _, path = trained
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF not the same model")
    with pytest.raises(AdapterError, match="trained for the base model SmolLM2"):
        adapter.load_info(settings.data_dir, other)


def test_cancel_leaves_no_file(trained, tmp_path):
    settings = trained[0]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TrainingCancelled):
        tune(learnable(trained[1].store), settings.model_path, QUICK, cancel=cancel, progress=False)
    assert sorted(p.name for p in settings.data_dir.iterdir() if "adapter" in p.name) == [adapter.ADAPTER_FILE]


def test_interrupted_write_keeps_the_old_adapter(trained, monkeypatch):
    import gguf

    settings, _, result, path = trained
    before = path.read_bytes()

    def fail(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", fail)
    with pytest.raises(KeyboardInterrupt):
        adapter.save(result, settings.data_dir, settings.model_path)
    assert path.read_bytes() == before
    assert [p.name for p in settings.data_dir.iterdir() if "adapter" in p.name] == [adapter.ADAPTER_FILE]


def test_live_turn_answers_with_the_adapter_and_the_switch_turns_it_off(trained, llm):
    from assistant.models.local import LocalModel
    from assistant.pipeline import Assistant, Finished

    settings, memory, _, path = trained
    quick = settings.model_copy(update={"max_tokens": 8, "temperature": 0.0, "seed": 7})
    local = LocalModel.shared(quick)
    tuned = [e for e in Assistant(quick, memory.store, local, memory).turn("How are you?", "Monica Geller")
             if isinstance(e, Finished)][0].exchange
    assert tuned.route == "local" and tuned.model.endswith(f"+ tuned ({adapter.load_info(settings.data_dir, settings.model_path)['created_at'][:10]})")
    merged = adapter.merged_path(settings.data_dir)  # it answered with the adapter merged into a copy of the base
    assert read_metadata(merged) == read_metadata(path)
    base_settings = quick.model_copy(update={"use_tuned_model": False})
    base = [e for e in Assistant(base_settings, memory.store, local, memory).turn("How are you?", "Monica Geller")
            if isinstance(e, Finished)][0].exchange
    assert base.model == local.name and path.is_file()
    assistant = Assistant(quick, memory.store, local, memory)
    chosen = [e for e in assistant.turn("How are you?", "Monica Geller", options=TurnOptions(tuned=False))
              if isinstance(e, Finished)][0].exchange
    assert chosen.model == f"{local.name} (base model, tuned off)"  # a login's switch: the base, and it says so
    stored = memory.store.count_exchanges(None)
    previews = list(assistant.preview_turn("How are you?", memory.store.profile("Monica Geller")))
    assert previews[0].model == tuned.model and "".join(p.text for p in previews[1:]).strip()
    assert memory.store.count_exchanges(None) == stored  # Compare's preview stores nothing


def test_a_tuned_turn_holds_the_adapters_length_prior(trained):
    from assistant.models.chat import Question
    from assistant.models.local import LocalModel
    from assistant.models.tuned import TunedLocal

    settings, memory, result, path = trained
    info = adapter.load_info(settings.data_dir, settings.model_path)
    quantiles = info["reply_length_quantiles"]  # from its train replies, stored with it
    assert quantiles == result.reply_length_quantiles and len(quantiles) == 21 and quantiles == sorted(quantiles)
    assert info["sentence_lead"] == result.sentence_lead > 0  # how far short of its draw a reply may end
    quick = settings.model_copy(update={"max_tokens": 64, "temperature": 0.0, "seed": 7})
    tuned = TunedLocal.open(lambda: LocalModel.shared(quick), quick)
    question = Question(0, "Monica Geller", "Do you smell beets?")
    tokens = lambda text: len(tuned.llm.tokenize(text.encode(), add_bos=False))  # noqa: E731
    tuned.info = {**tuned.info, "reply_length_quantiles": [0]}
    free = "".join(tuned.answer(question))
    tuned.info = {**tuned.info, "reply_length_quantiles": [34, 34], "sentence_lead": 4.0}
    held = "".join(tuned.answer(question))
    before_prior = {key: value for key, value in tuned.info.items() if key not in ("reply_length_quantiles", "sentence_lead")}
    tuned.info = {**before_prior, "min_reply_tokens": 30}  # an adapter made before they were kept
    older = "".join(tuned.answer(question))
    counts = tokens(free), tokens(held)
    tuned.close()  # frees its llama.cpp model: count first
    assert counts[0] < 29  # its own line ends sooner...
    assert "\n" not in held and counts[1] >= 29  # ...a live turn goes on to the prior less its lead, as the benchmark does
    assert older == held  # its one fixed length (30, no lead) still holds


def test_the_reply_length_is_drawn_from_the_train_replies_lengths():
    quantiles = [2, 4, 6, 8, 40]
    draws = [reply_length(quantiles, 7, f"question {i}") for i in range(2000)]
    assert min(draws) >= 2 and max(draws) <= 40 and len(set(draws)) > 10  # spread over the whole range
    assert np.median(draws) == pytest.approx(6, abs=1)  # the middle of the distribution
    assert reply_length(quantiles, 7, "same") == reply_length(quantiles, 7, "same")  # seeded: one question draws alike
    assert reply_length([12], None, "x") == 12 and reply_length([], 7, "x") == 0  # one fixed length; no prior
    # the line's floor is the draw less the sentence lead, at least 1 token; a draw of 0 stays no prior
    assert reply_length([12], 7, "x", 4.4) == 8 and reply_length([2], 7, "x", 5.0) == 1 and reply_length([0], 7, "x", 3.0) == 0
    led = [reply_length(quantiles, 7, f"question {i}", 1.5) for i in range(2000)]
    assert np.mean(draws) - np.mean(led) == pytest.approx(1.5, abs=0.2)  # the same draws, shifted


def test_the_sentence_lead_is_the_mean_run_from_a_point_to_its_sentence_end(trained):
    tokenizer = trained[2].tokenizer
    ids = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    count = lambda text: len(ids(text))  # noqa: E731
    one = "I was there with my sister and her friend all day"  # one sentence, no end mark: ends at the reply's end
    assert sentence_lead(tokenizer, [ids(one)]) == pytest.approx((count(one) - 1) / 2, abs=0.01)
    short = sentence_lead(tokenizer, [ids("No. Yes! Why? Ok.")])  # four short sentences
    assert short < 1.0 < sentence_lead(tokenizer, [ids(one), ids("No. Yes! Why? Ok.")])
    assert sentence_lead(tokenizer, []) == 0.0


def test_without_a_merged_model_the_tuned_turn_puts_the_adapter_on_the_base(trained, monkeypatch):
    from assistant.models.local import LocalModel
    from assistant.models.tuned import TunedLocal
    from assistant.training import merge

    settings, memory, _, path = trained
    adapter.merged_path(settings.data_dir).unlink(missing_ok=True)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(merge, "merge_adapter", disk_full)
    local = LocalModel.shared(settings.model_copy(update={"max_tokens": 8, "temperature": 0.0}))
    tuned = TunedLocal.open(lambda: local, settings)
    assert tuned.llm is local.llm and tuned.switch is not None  # slower, not broken
    assert not adapter.merged_path(settings.data_dir).exists() and not list(settings.data_dir.glob(".*partial"))
    monkeypatch.undo()
    tuned.close()


def test_editing_forgetting_or_merging_what_it_learned_removes_the_adapter(trained):
    settings, memory, _, path = trained
    saved = path.read_bytes()
    merged = adapter.merged_model(settings.data_dir, settings.model_path)
    store = memory.store
    people = People(settings, store, memory)
    chandler, ross = store.profile("Chandler Bing"), store.profile("Dr Ross Geller")
    monica = store.profile("Monica Geller")
    log = TurnLog(store)  # a local reply of her own, which teaching never learns from
    untrained = log.begin_exchange(store.new_session(monica.id).id, monica.id, "How are you?")
    log.complete_exchange(untrained, "I am well.", GenerationStats("local", "smollm2", 1, 1, 1))
    people.edit(untrained, "How are you?", "Fine.", store.profile("Monica Geller").id)
    assert path.read_bytes() == saved  # nothing it learned from changed
    learned = store.rows("SELECT id FROM exchanges WHERE profile_id = ? AND source = 'import' LIMIT 2", (chandler.id,))
    people.edit(learned[0]["id"], "What?", "Nothing.", chandler.id)
    assert not path.exists() and not merged.exists()  # the merged model holds the same words
    path.write_bytes(saved)
    people.delete_memory(learned[1]["id"], chandler.id)
    assert not path.exists()
    path.write_bytes(saved)
    people.merge(ross.name, chandler.name)
    assert not path.exists()
    path.write_bytes(saved)


def _tensors(path: Path) -> dict:
    import gguf

    return {t.name: np.array(t.data) for t in gguf.GGUFReader(str(path)).tensors}


def test_archive_carries_the_adapter_and_refuses_another_base_model(tmp_path):
    """A one-step adapter on a small household (its own fixture: quick), through an archive and back."""
    import zipfile

    from assistant.training.dialogues import Example
    from tests.test_web_manage import seed

    source = load_settings(data_dir=tmp_path / "source", n_threads=1)
    seed(source.data_dir, {"Maya": [("What should I eat before a run?", "Oats and a banana.", "2026-10-01T09:00:00+00:00")],
                           "Tom": [("Is coffee ok at 3am?", "A small one, early in the shift.", "2026-11-01T03:00:00+00:00")]})
    store = Store(source.database_path)
    memory = Memory(source, store)
    examples = [Example(store.profile(e.profile_id).name, (), e.user_text, e.reply, 0, e.id, e.profile_id)
                for p in store.profiles() for e in store.session_exchanges(store.sessions(p.id)[0].id)]
    trained = tune(examples, source.model_path, TuneConfig(steps=1, batch=2, max_tokens=32, validation_share=0,
                                                          threads=1), progress=False)
    path = adapter.save(trained, source.data_dir, source.model_path)
    original = adapter.load_info(source.data_dir, source.model_path)
    zipped = tmp_path / "household.zip"
    People(source, store, memory).write_archive(zipped)
    assert "adapter/tuned-adapter.gguf" in zipfile.ZipFile(zipped).namelist()
    assert "a tuned adapter" in People.describe_archive(zipped)

    here = load_settings(data_dir=tmp_path / "here", n_threads=1)
    store_here = Store(here.database_path)
    store_here.add_profile("Someone Else")  # so this device's ids differ from the source's
    people = People(here, store_here, Memory(here, store_here))
    report = people.import_archive(zipped)
    assert report.adapter == "restored from the archive", report.summary()
    restored = adapter.load_info(here.data_dir, here.model_path)
    assert restored["created_at"] == original["created_at"] and restored["people"] == original["people"]
    ids = {people.find(name).id for name in ("Maya", "Tom")}
    assert set(restored["profile_ids"]) == ids != set(original["profile_ids"])  # this device's ids, not the other's
    assert set(restored["exchange_ids"]) == {int(i) for p in ids for i in store_here.memory_ids(p)}
    before, after = _tensors(path), _tensors(adapter.adapter_path(here.data_dir))
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    again = people.import_archive(zipped)  # this device has one now: kept, and said so
    assert again.adapter == "kept this device's" and any("already has a tuned adapter" in c for c in again.conflicts)
    people.delete("Tom")  # a person it came with: the restored adapter follows their deletion
    assert not adapter.adapter_path(here.data_dir).exists()

    other_model = tmp_path / "other.gguf"
    other_model.write_bytes(b"another base model")
    there = load_settings(data_dir=tmp_path / "there", n_threads=1, model_path=other_model)
    store_there = Store(there.database_path)
    report = People(there, store_there, Memory(there, store_there)).import_archive(zipped)
    assert report.adapter == "left out: made for another base model"
    assert any("trained for the base model" in c for c in report.conflicts)
    assert not list(there.data_dir.glob("*.gguf")) and not list(there.data_dir.glob(".*incoming"))
    assert {r.name for r in report.people} == {"Maya", "Tom"}  # the people still came in


def test_teaching_in_the_background_is_one_run_at_a_time_and_cancel_keeps_the_adapter(trained):
    import time

    settings, memory, result, path = trained
    adapter.save(result, settings.data_dir, settings.model_path)
    saved, measured = path.read_bytes(), adapter.load_info(settings.data_dir, settings.model_path)
    same_precision = settings.model_copy(update={"teach_max_steps": 50, "train_precision": "float32"})  # as trained
    people = People(same_precision, memory.store, memory)
    plan = people.teach_plan()
    assert plan.enough and not plan.message and plan.exchanges == len(learnable(memory.store)) and plan.steps == 50
    assert plan.tokens_per_s == measured["tokens_per_s"] and "measured by the last training on this device" in plan.rate_source
    assert plan.seconds == pytest.approx(plan.tokens / plan.tokens_per_s)
    other = People(same_precision.model_copy(update={"train_precision": "bf16"}), memory.store, memory).teach_plan()
    assert other.tokens_per_s == PRIOR_TOKENS_PER_S[True] and "other precision" in other.rate_source
    people.start_teaching()
    with pytest.raises(TrainingError, match="already running"):
        people.start_teaching()  # a second click, or another login
    people.cancel_teaching()
    deadline = time.monotonic() + 900
    while people.teaching_status().running and time.monotonic() < deadline:
        time.sleep(0.5)
    status = people.teaching_status()
    assert status.state == "cancelled" and "cancelled" in status.error
    assert path.read_bytes() == saved and not list(settings.data_dir.glob(".*partial"))


def test_deleting_a_person_removes_the_adapter(trained):
    """Last in the module: it deletes the adapter the other tests use."""
    settings, memory, _, path = trained
    assert path.is_file() and adapter.merged_model(settings.data_dir, settings.model_path).is_file()
    People(settings, memory.store, memory).delete("Monica Geller")
    assert not path.exists()
    assert not list(settings.data_dir.glob("*.gguf")) and not list(settings.data_dir.glob(".*partial"))
