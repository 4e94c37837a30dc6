"""How stored conversations look in the chat view: pure functions from records to messages."""

from __future__ import annotations

from datetime import datetime

from assistant.store import Exchange, Session


def status_text(exchange: Exchange) -> str:
    """``local · model · 0.12 s to first token · 140 tok/s`` for a finished reply."""
    parts = [exchange.route or "local", exchange.model or "?"]
    if exchange.ttft_ms is not None:
        parts.append(f"{exchange.ttft_ms / 1000:.2f} s to first token")
    if exchange.tokens_per_s:
        parts.append(f"{exchange.tokens_per_s:.0f} tok/s")
    return " · ".join(parts)


def reply_content(exchange: Exchange) -> str:
    if exchange.status == "complete":
        return f"{exchange.reply or '(no answer)'}\n\n<sub>{status_text(exchange)}</sub>"
    if exchange.status == "failed":
        partial = f"{exchange.reply}\n\n" if exchange.reply else ""
        return f"{partial}<sub>⚠️ not completed: {exchange.error}</sub>"
    return "<sub>…(no reply was recorded)</sub>"


def chat_messages(exchanges: list[Exchange]) -> list[dict]:
    messages = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": exchange.user_text})
        messages.append({"role": "assistant", "content": reply_content(exchange)})
    return messages


def session_label(session: Session) -> str:
    when = datetime.fromisoformat(session.updated_at).astimezone().strftime("%b %d, %H:%M")
    return f"{session.title or 'New conversation'} · {when}"
