"""Training precision and where the LoRA goes: bf16 autocast learns as float32 does and exports
an adapter llama.cpp loads; ``train_precision`` reaches the trainer; ``top_layers`` adapts only
the top layers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from assistant.training import adapter
from assistant.training.dialogues import learnable, prompt_of
from assistant.training.export import read_metadata
from assistant.training.serving import AdapterSwitch, next_token_logits
from assistant.training.trainer import TuneConfig, tune
from profiles.tower import native_bf16
from tests.training_fixtures import QUICK, llm, trained  # noqa: F401 (fixtures)


def test_bf16_training_learns_and_its_adapter_loads_in_llama_cpp(trained, llm, tmp_path):
    """train_precision bf16: the matrix products autocast, the LoRA weights stay float32."""
    settings, memory, float32_result, _ = trained
    result = tune(learnable(memory.store), settings.model_path, replace(QUICK, bf16=True), progress=False)
    assert result.val_nll_after < result.val_nll_before
    assert abs(result.val_nll_after - float32_result.val_nll_after) < 0.1  # learns about as float32 does
    assert all(p.dtype == torch.float32 for p in result.model.parameters() if p.requires_grad)
    path = adapter.save(result, tmp_path / "data", settings.model_path)
    assert read_metadata(path)["settings"]["bf16"] is True
    prompt = prompt_of(result.validation[0])
    switch = AdapterSwitch(llm)
    base = next_token_logits(llm, prompt)
    switch.use(path, 1.0)
    tuned = next_token_logits(llm, prompt)
    switch.use(None)
    assert np.abs(tuned - base).max() > 0.1


def test_the_product_trains_in_the_precision_its_settings_name(settings):
    def config(precision, **overrides):
        return TuneConfig.from_settings(settings.model_copy(update={"train_precision": precision}), **overrides)

    assert config("float32").bf16 is False and config("bf16").bf16 is True
    assert config("auto").bf16 is native_bf16()
    tab = config("float32", seed=3, steps=50)
    assert (tab.seed, tab.steps, tab.threads, tab.r) == (3, 50, settings.n_threads, TuneConfig().r)


def test_lora_on_the_top_layers_only(trained):
    from assistant.training.model import add_lora, load_base

    base, _ = load_base(trained[0].model_path)
    n = base.config.num_hidden_layers
    model = add_lora(base, top_layers=2)
    adapted = {int(name.split(".layers.")[1].split(".")[0]) for name, p in model.named_parameters() if p.requires_grad}
    assert adapted == {n - 2, n - 1}
