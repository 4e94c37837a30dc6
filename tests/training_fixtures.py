"""The short training run the training tests share: a few dozen steps on the fixture's 350
Friends pairs, one torch thread, exported as the data dir's adapter (module-scoped: each test
module that imports these fixtures gets its own run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.memory.memory import Memory
from assistant.models.llama_runtime import create_llama
from assistant.people.importers import mqd
from assistant.settings import load_settings
from assistant.store.store import Store
from assistant.training import adapter
from assistant.training.dialogues import learnable
from assistant.training.trainer import TuneConfig, tune

FIXTURES = Path(__file__).parent / "fixtures" / "mqd"
RESPONDER = "rachel_green"
QUICK = TuneConfig(steps=16, batch=4, max_tokens=64, lr=1e-3, validation_share=0.1, seed=0, threads=1,
                   contrast_weight=0.5)  # the querier contrast on, so the shared run exercises the whole loss


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("tuned") / "data", n_threads=1)
    memory = Memory(settings, Store(settings.database_path))
    memory.ingest(mqd.parse(FIXTURES / "train.jsonl.gz", RESPONDER), progress=False)
    examples = learnable(memory.store)
    result = tune(examples, settings.model_path, QUICK, progress=False)
    path = adapter.save(result, settings.data_dir, settings.model_path)
    return settings, memory, result, path


@pytest.fixture(scope="module")
def llm(trained):
    settings = trained[0]
    return create_llama(model_path=str(settings.model_path), n_ctx=512, n_threads=1, verbose=False)
