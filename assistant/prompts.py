"""Chat messages for the local model: who the assistant is, who is asking, what was said.

Pure functions over plain data; the backend renders them with the model's own template.
"""

from __future__ import annotations

from assistant.store import Exchange


def system_message(persona: str, speaker: str) -> dict:
    return {"role": "system", "content": f"{persona}\nYou are talking with {speaker}."}


def history_messages(exchanges: list[Exchange]) -> list[dict]:
    """Earlier complete exchanges as alternating user/assistant messages, oldest first."""
    messages = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": exchange.user_text})
        messages.append({"role": "assistant", "content": exchange.reply or ""})
    return messages


def user_message(text: str) -> dict:
    return {"role": "user", "content": text}
