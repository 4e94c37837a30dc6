"""How stored conversations look in the chat view: pure functions from records to messages.

Text that came from a model or an import (replies, recalled memories, what was sent to the
cloud) goes through ``app.sanitize`` (``model_text``, ``model_line``) before it is put in a
message; the markup added here (the ``<sub>`` status lines, bold, lists) comes after, so it
keeps working.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Callable

from app.sanitize import model_line, model_text
from assistant.store.store import Exchange, Session

Lookup = Callable[[list[int]], dict[int, Exchange]]


def status_text(exchange: Exchange) -> str:
    """``cloud · model · why · 0.12 s to first token · 140 tok/s`` for a finished reply."""
    parts = [exchange.route or "local", exchange.model or "?"]
    if exchange.route_note:
        parts.append(exchange.route_note)
    elif exchange.route_reason and exchange.route in ("local", "cloud"):
        parts.append(exchange.route_reason)
    if exchange.ttft_ms is not None:
        parts.append(f"{exchange.ttft_ms / 1000:.2f} s to first token")
    if exchange.tokens_per_s:
        parts.append(f"{exchange.tokens_per_s:.0f} tok/s")
    if exchange.identified_as is not None and exchange.identify_confidence is not None:
        parts.append(f"speaker detected ({exchange.identify_confidence:.0%})")
    return " · ".join(parts)


def reply_content(exchange: Exchange) -> str:
    if exchange.status == "complete":
        return f"{model_text(exchange.reply) or '(no answer)'}\n\n<sub>{status_text(exchange)}</sub>"
    if exchange.status == "failed":
        partial = f"{model_text(exchange.reply)}\n\n" if exchange.reply else ""
        return f"{partial}<sub>⚠️ not completed: {model_line(exchange.error)}</sub>"
    return "<sub>…(no reply was recorded)</sub>"


def memories_message(recalled: str | dict | None, lookup: Lookup) -> dict | None:
    """A collapsible note listing the memories a reply drew on, or None when it used none."""
    summary = json.loads(recalled) if isinstance(recalled, str) else recalled
    if not summary or not summary.get("memories"):
        return None
    found = lookup([m["id"] for m in summary["memories"]])
    lines = [summary.get("trace", "")]
    for memory in summary["memories"]:
        exchange = found.get(memory["id"])
        if exchange is None:
            lines.append("- *(a memory that has since been forgotten)*")
            continue
        who = f"borrowed from {memory['borrowed_from']}" if memory.get("borrowed_from") else exchange.created_at[:10]
        lines.append(f"- **{_clip(exchange.user_text)}** → {_clip(exchange.reply or '')} <sub>({who}, score {memory['score']:.2f})</sub>")
    count = len(summary["memories"])
    title = f"🧠 {count} {'memory' if count == 1 else 'memories'} used"
    return {"role": "assistant", "content": "\n".join(lines), "metadata": {"title": title, "status": "done"}}


def payload_message(payload: str | None) -> dict | None:
    """A collapsible note showing exactly what was sent to the cloud for a turn, or None."""
    if not payload:
        return None
    body = json.loads(payload)
    lines = [f"Sent to **{body.get('model', '?')}** (personal details replaced by placeholders):"]
    lines += [f"- *{m['role']}*: {_clip(str(m.get('content', '')), 400)}" for m in body.get("messages", [])]
    return {"role": "assistant", "content": "\n".join(lines), "metadata": {"title": "☁️ What was sent to the cloud", "status": "done"}}


def chat_messages(exchanges: list[Exchange], lookup: Lookup) -> list[dict]:
    messages = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": model_text(exchange.user_text)})  # shown as markdown: made inert
        for note in (memories_message(exchange.recalled, lookup), payload_message(exchange.cloud_payload)):
            if note:
                messages.append(note)
        messages.append({"role": "assistant", "content": reply_content(exchange)})
    return messages


def guess_line(identification, person) -> str:
    """``🔍 Identified as Maya (91%). Not Maya? It was:``: the profile's own spelling every time,
    made inert (a name is typed by people)."""
    said = identification.describe()
    return f"🔍 {model_line(said[:1].upper() + said[1:])}. Not {model_line(person.name)}? It was:"


def session_label(session: Session) -> str:
    when = datetime.fromisoformat(session.updated_at).astimezone().strftime("%b %d, %H:%M")
    return f"{session.title or 'New conversation'} · {when}"


def encoder_status(meta: dict | None) -> str:
    if not meta:
        return "Not trained yet: people are told apart by the general sentence embedder only."
    when = datetime.fromisoformat(meta["trained_at"]).astimezone().strftime("%b %d %Y, %H:%M")
    return f"Trained {when} on {meta['n_dialogues']:,} exchanges of {meta['n_queriers']} people."


def _clip(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters, sanitised (it comes from a model or an import)."""
    text = " ".join(text.split())
    return model_line(text if len(text) <= limit else text[: limit - 1] + "…")
