"""Chat messages for the local model: who the assistant is, who is asking, what was said.

Pure functions over plain data; the backend renders them with the model's own template.
A small model follows short, concrete prompts best, so examples are few and clipped, and the
prompt says how long this person's replies usually are.
"""

from __future__ import annotations

import statistics

from assistant.store import Exchange


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def typical_words(replies: list[str]) -> int | None:
    lengths = [len(r.split()) for r in replies if r.strip()]
    return int(statistics.median(lengths)) if lengths else None


def system_message(persona: str, speaker: str, memories=(), example_chars: int = 240) -> dict:
    """Persona, who is asking, and recalled exchanges as examples (own first, then borrowed)."""
    lines = [persona, f"You are talking with {speaker}."]
    own = [m.exchange for m in memories if not m.borrowed_from]
    borrowed = [m.exchange for m in memories if m.borrowed_from]
    if own:
        lines.append(f"Earlier, {speaker} asked you things like this, and you answered:")
        lines += [f"{speaker}: {clip(e.user_text, example_chars)}\nYou: {clip(e.reply or '', example_chars)}" for e in own]
    if borrowed:
        lines.append(f"You don't know {speaker} well yet. Here is how you answered people who talk like them:")
        lines += [f"Someone: {clip(e.user_text, example_chars)}\nYou: {clip(e.reply or '', example_chars)}" for e in borrowed]
    words = typical_words([e.reply or "" for e in own or borrowed])
    if words:
        lines.append(f"Answer {speaker} in your own voice, in about {max(words, 3)} words.")
    return {"role": "system", "content": "\n".join(lines)}


def history_messages(exchanges: list[Exchange]) -> list[dict]:
    """Earlier complete exchanges as alternating user/assistant messages, oldest first."""
    messages = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": exchange.user_text})
        messages.append({"role": "assistant", "content": exchange.reply or ""})
    return messages


def user_message(text: str, context: list[str] = ()) -> dict:
    """The message, preceded by earlier lines of a scene that are not part of this chat."""
    if not context:
        return {"role": "user", "content": text}
    earlier = "\n".join(f"(earlier) {line}" for line in context)
    return {"role": "user", "content": f"{earlier}\n{text}"}
