"""What the local model learns from, without training it: only replies a human wrote or the
cloud gave, tagged at inference exactly as in training, and a clear message (in the library and
from ``confidant tune``) when there is too little data. Real SQLite stores; no model is loaded."""

from __future__ import annotations

import pytest

from assistant.errors import TrainingError
from assistant.settings import load_settings
from assistant.store import people as records
from assistant.store.store import GenerationStats, Store
from assistant.store.turn_log import TurnLog
from assistant.training import adapter
from assistant.training.dialogues import learnable, live_prompt, prompt_of, source_counts, turn_prompt


def test_only_human_and_cloud_replies_are_learned(settings, store):
    person = store.add_profile("Sam")
    session = store.new_session(person.id)
    log = TurnLog(store)
    local = log.begin_exchange(session.id, person.id, "hi")
    log.complete_exchange(local, "the local model said this", GenerationStats("local", "smollm2", 1, 1, 1))
    cloud = log.begin_exchange(session.id, person.id, "hard question", ["hi", "the local model said this"])
    log.complete_exchange(cloud, "a cloud answer", GenerationStats("cloud", "gpt", 1, 1, 1))
    imported = store.add_imported_exchange(session.id, person.id, "old question", "my own reply", [], "whatsapp")
    examples = {e.exchange_id: e for e in learnable(store)}
    assert set(examples) == {cloud, imported}  # never the local model's own unedited reply
    records.rewrite_exchange(store, store.exchange(local), "hi", "corrected", {}, None)  # the Memory tab's edit
    assert store.exchange(local).edited_at is not None
    assert local in {e.exchange_id for e in learnable(store)}
    assert source_counts(store) == {"Sam": {"imported": 1, "corrected": 1, "cloud": 1}}


def test_tag_at_inference_is_trainings(settings, store):
    """The prompt a live turn is answered with is, once stored, the prompt training reads."""
    person = store.add_profile("Monica Geller")
    session = store.new_session(person.id)
    log = TurnLog(store)
    first = log.begin_exchange(session.id, person.id, "How are you?")
    log.complete_exchange(first, "Fine, thanks.", GenerationStats("cloud", "gpt", 1, 1, 1))
    context = [e for e in store.session_exchanges(session.id)][-1]
    second = log.begin_exchange(session.id, person.id, "Did you sleep okay?", [context.user_text, context.reply])
    at_inference = live_prompt(store.exchange(second), "Monica Geller")  # the pending turn, as the pipeline has it
    log.complete_exchange(second, "Like a baby.", GenerationStats("cloud", "gpt", 1, 1, 1))
    stored = next(e for e in learnable(store) if e.exchange_id == second)
    assert prompt_of(stored) == at_inference
    assert turn_prompt((context.user_text, context.reply), "Monica Geller", "Did you sleep okay?") == at_inference
    assert at_inference.endswith("Monica Geller: Did you sleep okay?\nAssistant:")
    assert prompt_of(stored, tagged=False).endswith("Someone: Did you sleep okay?\nAssistant:")


def test_too_little_data_says_what_is_needed(settings, store):
    from assistant.training.teach import teach

    person = store.add_profile("Sam")
    session = store.new_session(person.id)
    store.add_imported_exchange(session.id, person.id, "q", "r", [], "whatsapp")
    with pytest.raises(TrainingError, match="at least 300 exchanges from at least 2 people.*there are 1 from 1"):
        teach(settings, store)
    assert not adapter.adapter_path(settings.data_dir).exists()


def test_tune_command_says_what_is_needed(tmp_path, capsys):
    from app.cli import main

    data = tmp_path / "data"
    store = Store(load_settings(data_dir=data).database_path)
    person = store.add_profile("Sam")
    store.add_imported_exchange(store.new_session(person.id).id, person.id, "q", "r", [], "whatsapp")
    store.close()
    assert main(["tune", "--data-dir", str(data), "--minutes", "1"]) == 1
    out, err = capsys.readouterr()
    assert "Sam: 1 imported, 0 corrected, 0 from the cloud" in out
    assert "needs at least 300 exchanges from at least 2 people" in err and "Traceback" not in err
    assert not adapter.adapter_path(data).exists()
