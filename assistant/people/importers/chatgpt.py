"""ChatGPT's data export, ``conversations.json``.

The file is a JSON list of conversations, each with a ``title``, a ``mapping`` of node id to
``{message, parent, children}`` and a ``current_node``. Only the chain from ``current_node``
back through the parents counts (the branch that was shown last); edited-away branches are
ignored. Of its messages, the text parts of ``user`` and ``assistant`` messages are kept;
system and tool messages, messages addressed to a tool, hidden ones, non-text parts (images,
code runs, browsing) and empty text are skipped.

Unlike the other formats, ``me`` is the HUMAN here: the person who typed the prompts. Every
exchange (a user turn answered by ChatGPT's next turn, with up to four earlier turns as
context) goes to the profile ``me``, and ChatGPT's answers become the assistant's side.

A file that is not UTF-8 JSON, or not a list of conversations, raises ``InputError``; a
conversation that cannot be followed (no ``current_node``, a missing parent, a cycle) is
skipped and reported as a problem numbered by its position in the list (1 = first).
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.errors import InputError
from assistant.people.importers import ImportBatch, clean_speaker, conversations_from, read_lines

KEPT_CONTENT = ("text", "multimodal_text")
EXPECTED = "expected a list of conversations with a 'mapping' (ChatGPT's conversations.json)"


def parse(path: Path, me: str) -> ImportBatch:
    """Every prompt ``me`` typed that ChatGPT answered, as exchanges of the profile ``me``."""
    path, person = Path(path), clean_speaker(me)
    if not person:
        raise InputError("--me must name the person who typed the prompts")
    items = _load(path)
    conversations, problems = [], []
    for number, item in enumerate(items, start=1):
        try:
            turns = linear_turns(item)
        except ValueError as error:
            problems.append((number, f"conversation {_title(item)!r}: {error}"))
            continue
        key = str(item.get("id") or item.get("conversation_id") or f"conversation-{number}")
        for conversation in conversations_from(turns, "assistant", key):
            conversation.person = person  # the asker is always the user: me
            conversations.append(conversation)
    if not conversations:
        raise InputError(f"{path.name}: no prompt answered by ChatGPT in {len(items)} conversations")
    return ImportBatch(f"chatgpt:{path.stem}", conversations, problems)


def _load(path: Path) -> list:
    try:
        data = json.loads("\n".join(read_lines(path)))
    except json.JSONDecodeError as error:
        raise InputError(f"{path.name} line {error.lineno}: not valid JSON ({error.msg})") from None
    if isinstance(data, dict) and "mapping" in data:  # a single conversation
        data = [data]
    if not isinstance(data, list) or not any(isinstance(c, dict) and isinstance(c.get("mapping"), dict) for c in data):
        raise InputError(f"{path.name}: {EXPECTED}")
    return data


def _title(item) -> str:
    return str(item.get("title") or "untitled") if isinstance(item, dict) else "?"


def linear_turns(conversation) -> list[tuple[str, str]]:
    """(role, text) of the shown branch, oldest first; ``ValueError`` saying why it cannot be followed."""
    if not isinstance(conversation, dict) or not isinstance(conversation.get("mapping"), dict):
        raise ValueError("not a conversation (no 'mapping')")
    mapping, node_id = conversation["mapping"], conversation.get("current_node")
    if not isinstance(node_id, str) or node_id not in mapping:
        raise ValueError("its 'current_node' is missing from the mapping")
    chain, seen = [], set()
    while node_id is not None:
        node = mapping.get(node_id) if isinstance(node_id, str) else None
        if not isinstance(node, dict):
            raise ValueError(f"node {node_id!r} is missing")
        if node_id in seen:
            raise ValueError("its messages form a cycle")
        seen.add(node_id)
        chain.append(node.get("message"))
        node_id = node.get("parent")
    return [turn for turn in map(_turn, reversed(chain)) if turn]


def _turn(message) -> tuple[str, str] | None:
    """(role, text) of a user or assistant message with visible text, else None."""
    if not isinstance(message, dict):
        return None
    role = _get(message, "author", "role")
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    if role not in ("user", "assistant") or metadata.get("is_visually_hidden_from_conversation"):
        return None
    if message.get("recipient", "all") != "all" or _get(message, "content", "content_type") not in KEPT_CONTENT:
        return None
    parts = _get(message, "content", "parts")
    text = "\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) if isinstance(parts, list) else ""
    return (role, text) if text else None


def _get(value, *keys):
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value
