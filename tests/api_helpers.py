"""Helpers for the OpenAI-compatible endpoint's tests: a real ``confidant serve`` with its API, the
README's own client settings, and the store read back after each request."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.error
import urllib.request
from contextlib import contextmanager
from email.message import Message
from pathlib import Path

import openai

from tests.browser import running_server

README = Path(__file__).resolve().parent.parent / "README.md"
README_URL = "http://127.0.0.1:7860/v1"
# Greedy, short and on one thread: the real model shares 2 cores with the test run.
SERVER_ENV = {"CONFIDANT_MAX_TOKENS": "32", "CONFIDANT_N_THREADS": "1", "CONFIDANT_TEMPERATURE": "0",
              "CONFIDANT_SEED": "7"}


@contextmanager
def api_server(data_dir: Path, *args: str, env: dict | None = None):
    """``confidant serve`` on a free port; yields the API's base URL (``.../v1``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    absent = data_dir.parent / "absent-config.toml"  # never the developer's own settings
    with running_server(data_dir, *args, env_extra={**SERVER_ENV, "CONFIDANT_CONFIG": str(absent), **(env or {})}) as url:
        yield url + "v1"


def client(base_url: str, key: str = "unused", **headers) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=300,
                         default_headers=headers or None)


def post(base_url: str, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict, Message]:
    """POST to /chat/completions as raw bytes: (status, JSON body, headers)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url}/chat/completions", data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def rows(data_dir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(data_dir / "confidant.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def exchanges_of(data_dir: Path, name: str) -> list[tuple]:
    """(id, session id, user text, reply, status) of a person's exchanges, oldest first."""
    return rows(data_dir, """SELECT e.id, e.session_id, e.user_text, e.reply, e.status FROM exchanges e
                             JOIN profiles p ON p.id = e.profile_id WHERE p.name = ? ORDER BY e.id""", (name,))


def readme_block(language: str, after: str) -> str:
    """The first ``language`` code block after the line ``after`` in the README's API section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use Confidant from other apps"):]
    section = section[section.index(after):]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)
