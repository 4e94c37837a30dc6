"""One dialogue as the questioner tower reads it: the query, earlier turns and the reply.

Plain data and text, no model: ``Dialogue``; ``dialogue_text(d)`` the one string the tower
embeds (query, reply, then context from the most recent turn, joined by ``SEP``);
``dialogue_from(user_text, context, reply)`` a dialogue from a stored exchange's columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

SEP = " [SEP] "  # the tokenizer's own separator: segments stay recognisable after tokenizing


@dataclass(frozen=True)
class Dialogue:
    query: str
    context: list[str] = field(default_factory=list)  # earlier turns, oldest first
    reply: str = ""


def dialogue_text(d: Dialogue) -> str:
    """Query, reply, then context from the most recent turn, joined by [SEP].

    What matters most comes first so truncation only cuts old context. The reply keeps its
    slot even when empty, so segment k is always: 0 query, 1 reply, 2+ earlier turns.
    """
    parts = [d.query.strip(), d.reply.strip(), *(t.strip() for t in reversed(d.context))]
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return SEP.join(parts)


def dialogue_from(user_text: str, context_json: str | list, reply: str | None) -> Dialogue:
    context = json.loads(context_json) if isinstance(context_json, str) else list(context_json)
    # a stored turn is its text with who said it (assistant.store.context_turns); the tower reads the text
    return Dialogue(query=user_text, context=[c["text"] if isinstance(c, dict) else str(c) for c in context],
                    reply=reply or "")
