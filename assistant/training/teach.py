"""Teach the local model from the store, end to end: what ``confidant tune`` (and the UI) call.

Contract of ``teach(settings, store, seed=0, minutes=None, cancel=None, progress=True)``:
reads the learnable exchanges (``dialogues.learnable``), refuses too little data
(``adapter.require_enough``), trains the querier-aware LoRA (``trainer.tune``) with the
project's query clusters (the store's ``cluster`` column) and writes the adapter into the data
dir atomically (``adapter.save``), then merges it into a copy of the base model for serving
(``adapter.merged_model``; a failure there only makes tuned turns slower). Returns its
metadata, plus (``samples=N``) under ``"samples"`` a few example replies before and after on
held-out exchanges, decoded through llama.cpp with the saved adapter (``samples.before_and_after``;
not stored in the file). ``on_step`` receives the trainer's ``Progress`` after every step. A
cancelled run (``TrainingCancelled``, while training or the last held-out pass) leaves the
adapter that was there before, or none.
"""

from __future__ import annotations

from assistant.errors import AdapterError, TrainingCancelled
from assistant.settings import Settings
from assistant.store.store import Store
from assistant.training import adapter
from assistant.training.dialogues import learnable
from assistant.training.samples import before_and_after
from assistant.training.trainer import TuneConfig, tune


def teach(settings: Settings, store: Store, seed: int = 0, minutes: float | None = None, cancel=None,
          progress: bool = True, config: TuneConfig | None = None, on_step=None, samples: int = 0) -> dict:
    examples = learnable(store)
    adapter.require_enough(examples)
    config = config or TuneConfig.from_settings(settings, seed=seed, minutes=minutes)
    result = tune(examples, settings.model_path, config, cancel=cancel, progress=progress, on_step=on_step)
    if cancel is not None and cancel.is_set():  # cancelled during the last held-out pass: still nothing written
        raise TrainingCancelled("Training was cancelled; the adapter in use (if any) is unchanged.")
    path = adapter.save(result, settings.data_dir, settings.model_path)
    try:
        adapter.merged_model(settings.data_dir, settings.model_path)  # so the first tuned turn need not build it
    except (OSError, AdapterError):
        pass  # the tuned model tries again when it opens, and else puts the adapter on the base model
    shown = before_and_after(result, settings, path, samples) if samples else []
    return {**adapter.load_info(settings.data_dir, settings.model_path), "samples": shown}
