"""Shared fixtures: real settings in a temporary data dir, the real store and the real model."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from assistant.models.local import LocalModel
from assistant.pipeline import Assistant
from assistant.settings import load_settings
from assistant.store.store import Store


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch, tmp_path_factory):
    """No test reads the developer's own config file or CONFIDANT_* variables."""
    for name in list(os.environ):
        if name.startswith("CONFIDANT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONFIDANT_CONFIG", str(tmp_path_factory.mktemp("config") / "absent.toml"))


@pytest.fixture
def settings(tmp_path):
    # Greedy decoding and short replies keep the real model fast and the tests repeatable.
    return load_settings(data_dir=tmp_path / "data", max_tokens=48, temperature=0.0, seed=7)


@pytest.fixture
def store(settings):
    store = Store(settings.database_path)
    yield store
    store.close()


@pytest.fixture
def local(settings):
    return LocalModel.shared(settings)


@pytest.fixture
def assistant(settings, store, local):
    return Assistant(settings, store=store, local=local)
