"""Hostile input (issue 6, point 4): each gives one clear message, no traceback, and loses nothing.

Messages go through the real pipeline (real model, real SQLite); names through the real store;
the CLI through a subprocess so its exit code and stderr are what a user sees.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.errors import InputError
from assistant.pipeline import Finished


@pytest.mark.parametrize("message, expected", [
    ("", "The message is empty"),
    ("   \n\t  ", "The message is empty"),
    ("\x00\x01\x02", "The message is empty"),  # only control characters: nothing left to answer
    ("x" * 1_000_001, "the limit is 8,000"),
    (12345, "A message must be text"),
])
def test_bad_messages_are_refused_clearly_and_store_nothing(assistant, store, message, expected):
    alice = store.add_profile("Alice")
    with pytest.raises(InputError, match=expected):
        list(assistant.turn(message, alice.id))
    assert store.count_exchanges() == 0


@pytest.mark.parametrize("message, stored", [
    (b"caf\xc3\xa9 \xff\xfe ok", "café \ufffd\ufffd ok"),      # invalid UTF-8 bytes: replaced, not fatal
    ("tab\tand\x07bell\x1b[31m", "tab\tandbell[31m"),         # control characters dropped, tab kept
    ("emoji 🎉 and עברית مرحبا", "emoji 🎉 and עברית مرحبا"),  # emoji and right-to-left text kept as typed
])
def test_odd_but_valid_messages_are_answered_and_stored_cleanly(assistant, store, message, stored):
    bo = store.add_profile("Bo")
    finished = list(assistant.turn(message, bo.id))[-1]
    assert isinstance(finished, Finished) and finished.exchange.status == "complete"
    assert store.exchange(finished.exchange.id).user_text == stored


@pytest.mark.parametrize("name, expected", [
    ("", "Please enter a name"),
    ("   ", "Please enter a name"),
    ("evil\u0007", "control characters"),
    ("x" * 61, "at most 60"),
])
def test_bad_names_are_refused_clearly(store, name, expected):
    with pytest.raises(InputError, match=expected):
        store.add_profile(name)
    assert store.profiles() == []


def test_emoji_and_right_to_left_names_are_kept(store):
    assert store.add_profile("Zoë 🌻").name == "Zoë 🌻"
    assert store.add_profile("مريم").name == "مريم"
    assert sorted(p.name for p in store.profiles()) == sorted(["مريم", "Zoë 🌻"])


def run_cli(*args, stdin="", tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFIDANT_MAX_TOKENS": "8"}
    return subprocess.run([sys.executable, "-m", "app.cli", *args, "--data-dir", str(tmp_path / "data")],
                          input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_the_cli_answers_bad_lines_with_one_line_each_and_keeps_going(tmp_path):
    done = run_cli("chat", "--as", "Cy", stdin="   \n" + "y" * 9000 + "\nhello\n", tmp_path=tmp_path)
    assert done.returncode == 1  # some lines were refused
    errors = [line for line in done.stderr.splitlines() if line.startswith("confidant:")]
    assert errors == ["confidant: This message is 9,000 characters long; the limit is 8,000. Please shorten it."]
    assert "Traceback" not in done.stderr and done.stdout.strip()  # the good line was still answered


def test_a_missing_model_file_is_one_clear_line(tmp_path):
    env_model = {"CONFIDANT_MODEL_PATH": str(tmp_path / "nope.gguf")}
    done = subprocess.run([sys.executable, "-m", "app.cli", "chat", "--as", "Di", "--data-dir", str(tmp_path)],
                          input="hi\n", capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env_model})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"confidant: setting 'model_path' (CONFIDANT_MODEL_PATH): no GGUF file at {tmp_path / 'nope.gguf'}"
