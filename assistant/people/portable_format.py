"""The profile export format: its name, version, and reading a file into checked values.

``parse_export(data)`` checks decoded JSON against format version 1 (``docs/export-format.md``)
and returns ``ParsedExport``; ``load_export(path)`` reads and decodes a file first. Anything
wrong is an ``InputError`` naming the JSON path of the first problem, e.g.
``conversations[2].exchanges[0].user_text is missing``; nothing is written here.
Optional fields: ``context`` (default ``[]``), ``completed_at`` (default ``created_at``),
``route``, ``model``, ``source`` (default ``"import"``), a conversation's ``title`` and
``profile.cloud_allowed`` (default true). Unknown fields are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from assistant.errors import InputError
from assistant.store.store import TITLE_CHARS

FORMAT = "confidant.profile"
VERSION = 1


@dataclass(frozen=True)
class ParsedExchange:
    user_text: str
    reply: str
    context: list[str]
    created_at: str
    completed_at: str
    route: str | None
    model: str | None
    source: str


@dataclass(frozen=True)
class ParsedConversation:
    title: str
    created_at: str
    exchanges: list[ParsedExchange]


@dataclass(frozen=True)
class ParsedExport:
    name: str
    created_at: str
    cloud_allowed: bool
    conversations: list[ParsedConversation]


_KINDS = {str: "text", bool: "true or false", int: "a whole number", list: "a list", dict: "an object"}


def _get(obj: dict, key: str, path: str, kind: type, optional: bool = False):
    where = f"{path}.{key}" if path else key
    if key not in obj and not optional:
        raise InputError(f"{where} is missing")
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(f"{where} should be {_KINDS[kind]}, not {json.dumps(value)[:40]}")
    return value


def _time(obj: dict, key: str, path: str, optional: bool = False) -> str | None:
    value = _get(obj, key, path, str, optional)
    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{path}.{key} should be an ISO 8601 time like 2024-05-01T09:30:00+00:00, not {value!r}") from None
    return value


def _exchange(obj, path: str) -> ParsedExchange:
    if not isinstance(obj, dict):
        raise InputError(f"{path} should be an object")
    user_text = _get(obj, "user_text", path, str)
    if not user_text.strip():
        raise InputError(f"{path}.user_text is empty")
    context = _get(obj, "context", path, list, optional=True) or []
    for i, turn in enumerate(context):
        if not isinstance(turn, str):
            raise InputError(f"{path}.context[{i}] should be text")
    created_at = _time(obj, "created_at", path)
    return ParsedExchange(
        user_text, _get(obj, "reply", path, str), context, created_at,
        _time(obj, "completed_at", path, optional=True) or created_at,
        _get(obj, "route", path, str, optional=True), _get(obj, "model", path, str, optional=True),
        _get(obj, "source", path, str, optional=True) or "import",
    )


def parse_export(data) -> ParsedExport:
    """The checked contents of an export, or ``InputError`` naming the first thing wrong."""
    if not isinstance(data, dict):
        raise InputError("the file should hold a JSON object")
    if data.get("format") != FORMAT:
        raise InputError(f"not a Confidant profile export: format should be {FORMAT!r}, not {data.get('format')!r}")
    version = _get(data, "version", "", int)
    if version != VERSION:
        newer = " (written by a newer Confidant; upgrade this one)" if version > VERSION else ""
        raise InputError(f"unsupported version {version}: this Confidant reads version {VERSION}{newer}")
    profile = _get(data, "profile", "", dict)
    conversations = []
    for c, conversation in enumerate(_get(data, "conversations", "", list)):
        path = f"conversations[{c}]"
        if not isinstance(conversation, dict):
            raise InputError(f"{path} should be an object")
        exchanges = _get(conversation, "exchanges", path, list)
        conversations.append(ParsedConversation(
            (_get(conversation, "title", path, str, optional=True) or "")[:TITLE_CHARS],
            _time(conversation, "created_at", path),
            [_exchange(e, f"{path}.exchanges[{i}]") for i, e in enumerate(exchanges)],
        ))
    allowed = _get(profile, "cloud_allowed", "profile", bool, optional=True)
    return ParsedExport(_get(profile, "name", "profile", str), _time(profile, "created_at", "profile"),
                   True if allowed is None else allowed, conversations)


def load_export(source: Path | str | dict) -> ParsedExport:
    """``parse_export`` of a file (or of already-decoded JSON); errors name the file."""
    if isinstance(source, dict):
        return parse_export(source)
    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"could not read {path}: {error.strerror or error}") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not UTF-8 text, so not a profile export") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path.name} is not JSON (line {error.lineno} column {error.colno}: {error.msg})") from None
    try:
        return parse_export(data)
    except InputError as error:
        raise InputError(f"{path.name}: {error}") from None
