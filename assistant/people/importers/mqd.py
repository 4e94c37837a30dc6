"""The MQDialog-style JSONL format (optionally gzipped), as in ``mqd-friends``.

One JSON object a line: ``responder``, ``querier``, ``context`` (earlier turns
``{"speaker", "text"}``, oldest first), ``query``, ``response`` and optionally ``scene_id``.
The chosen responder's replies become the assistant's side; every querier becomes a profile;
the exchanges of one querier in one scene form one conversation. Malformed lines are skipped
and reported with their line numbers.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

from assistant.errors import InputError
from assistant.people.importers import ImportBatch, ImportedConversation, ImportedExchange


def speaker_key(name: str) -> str:
    """``"Rachel Green"`` and ``"rachel_green"`` are the same speaker."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def display_name(speaker_id: str) -> str:
    return " ".join(part.capitalize() for part in speaker_id.split("_"))


def _speakers(field) -> tuple[str, ...]:
    """Who said a context turn: ``"a@b"`` is a line said by a and b together; none if not given."""
    if not isinstance(field, str):
        return ()
    return tuple(display_name(speaker_key(part)) for part in field.split("@") if part.strip())


def read_records(path: Path) -> Iterator[tuple[int, dict | None, str]]:
    """(line number, record or None, problem) for every non-blank line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="strict") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, None, f"not valid JSON ({error.msg})"
                    continue
                yield number, record, _problem(record)
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"could not read {path}: {error}") from None


def _problem(record) -> str:
    if not isinstance(record, dict):
        return "not a JSON object"
    for name in ("responder", "querier", "query", "response"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            return f"missing or empty '{name}'"
    context = record.get("context", [])
    if not isinstance(context, list) or not all(isinstance(t, dict) and isinstance(t.get("text"), str) for t in context):
        return "'context' must be a list of {speaker, text} objects"
    return ""


def parse(path: Path, responder: str) -> ImportBatch:
    """Every pair answered by ``responder`` in the file at ``path``."""
    path = Path(path)
    wanted = speaker_key(responder)
    conversations: dict[tuple[str, str], ImportedConversation] = {}
    problems, responders = [], set()
    for number, record, problem in read_records(path):
        if problem:
            problems.append((number, problem))
            continue
        responders.add(speaker_key(record["responder"]))
        if speaker_key(record["responder"]) != wanted:
            continue
        person = display_name(speaker_key(record["querier"]))
        key = (person, str(record.get("scene_id") or f"line-{number}"))
        conversation = conversations.setdefault(key, ImportedConversation(person, key[1]))
        turns = [turn for turn in record.get("context", []) if turn["text"].strip()]
        conversation.exchanges.append(ImportedExchange(
            record["query"].strip(), record["response"].strip(), [turn["text"].strip() for turn in turns],
            [_speakers(turn.get("speaker")) for turn in turns]))
    if not conversations:
        found = ", ".join(sorted(responders)) or "none"
        raise InputError(f"no exchanges answered by {responder!r} in {path} (responders found: {found})")
    return ImportBatch(f"mqd:{wanted}", list(conversations.values()), problems)
