"""Chat messages for the local model: who the assistant is, who is asking, what was said.

Pure functions over plain data; the backend renders them with the model's own template.
A small model follows short, concrete prompts best, so examples are few and clipped, and the
prompt says how long this person's replies usually are.
"""

from __future__ import annotations

import statistics

from assistant.store.store import Exchange


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def typical_words(replies: list[str]) -> int | None:
    lengths = [len(r.split()) for r in replies if r.strip()]
    return int(statistics.median(lengths)) if lengths else None


SHORT_REPLY_WORDS = 20  # people answered in a line or two get a one-paragraph reply


def system_message(persona: str, speaker: str, memories=(), example_chars: int = 240, scene: list[str] = ()) -> dict:
    """Persona, who is asking, borrowed style examples, and how long replies to them usually are.

    The benchmark's replies in character (``evaluation.personalization``): the person's own
    memories are not here, they go in as earlier chat turns (``example_messages``), the format a
    small chat model imitates best. Everyday chat uses ``chat_system_message`` instead.
    """
    lines = [persona, f"You are talking with {speaker}."]
    own = [m.exchange for m in memories if not m.borrowed_from]
    lines += borrowed_lines(f"You don't know {speaker} well yet.", memories, example_chars)
    if scene:
        lines.append("What was just said, before this message:")
        lines += [f"- {clip(line, example_chars)}" for line in scene]
    words = typical_words([m.exchange.reply or "" for m in memories])
    if words:
        lines.append(f"Answer {speaker} in your own voice, in about {max(words, 3)} words.")
    return {"role": "system", "content": "\n".join(lines)}


def borrowed_lines(opening: str, memories, example_chars: int) -> list[str]:
    """Borrowed style examples (only with ``borrow_style_examples``): other people's exchanges, quoted."""
    borrowed = [m.exchange for m in memories if m.borrowed_from]
    if not borrowed:
        return []
    return [f"{opening} Here is how you answered people who talk like them:",
            *(f"- \"{clip(e.user_text, example_chars)}\" → \"{clip(e.reply or '', example_chars)}\"" for e in borrowed)]


def chat_system_message(persona: str, speaker: str, memories=(), example_chars: int = 240) -> dict:
    """Everyday chat: persona, the person's name once, what they told you before, how to answer.

    The person's own recalled exchanges reach the model as their own statements in this system
    message, never as earlier chat turns and never with the assistant's old replies: a small
    model shown its old replies as turns copies them (issue 16). Borrowed style examples (only
    with ``borrow_style_examples``) stay as ``system_message`` words them, and the semantic
    cache's earlier cloud answer (``earlier_answer``) is shown with its reply, to be reused.
    """
    lines = [persona, f"You are talking with {speaker}."]
    said = own_statements(memories, example_chars)
    if said:
        lines.append("What you know about them, from what they told you before:")
        lines += [f"- {text}" for text in said]
    lines += borrowed_lines("You don't know them well yet.", memories, example_chars)
    earlier = [m.exchange for m in memories if getattr(m, "earlier_answer", False)]  # the semantic cache's
    for e in earlier:
        lines.append(f"A close question they asked before: \"{clip(e.user_text, example_chars)}\". "
                     f"Your answer then, to reuse: \"{clip(e.reply or '', example_chars)}\"")
    lines.append("Answer the last message in a few sentences. Use what you know only when it helps."
                 + ("" if earlier else " Do not repeat earlier answers."))
    return {"role": "system", "content": "\n".join(lines)}


def own_statements(memories, example_chars: int = 240) -> list[str]:
    """What the person said in their own recalled exchanges (not borrowed, not a cached cloud
    answer), oldest first, each once."""
    own = sorted((m.exchange for m in memories if not m.borrowed_from and not getattr(m, "earlier_answer", False)),
                 key=lambda e: e.id)
    return list(dict.fromkeys(clip(e.user_text, example_chars) for e in own))


def user_message_recalling(text: str, memories=(), example_chars: int = 240) -> dict:
    """The message, preceded by what the person told you before, in their voice. A 135M model
    heeds its user turn far more than its system message: with the statements in the system
    message only, 2 of 21 replies that called for a stated fact used it; with them here too, 5
    of 21, for no more copying (docs/conversation.md)."""
    said = own_statements(memories, example_chars)
    if not said:
        return user_message(text)
    return user_message("(What I told you before: " + " / ".join(said) + ")\n\n" + text)


def example_messages(memories, example_chars: int = 240) -> list[dict]:
    """The person's own recalled exchanges as earlier user/assistant turns, oldest first."""
    own = sorted((m.exchange for m in memories if not m.borrowed_from), key=lambda e: e.id)
    messages = []
    for exchange in own:
        messages.append({"role": "user", "content": clip(exchange.user_text, example_chars)})
        messages.append({"role": "assistant", "content": clip(exchange.reply or "", example_chars)})
    return messages


def stop_strings(speaker: str, memories=()) -> list[str]:
    """Where a small model must stop: when it starts writing the other side of the dialogue, and
    after the first paragraph when this person is usually answered in a line or two."""
    stops = [f"\n{speaker}:", "\nYou:", "\nUser:"]
    words = typical_words([m.exchange.reply or "" for m in memories])
    if words is not None and words <= SHORT_REPLY_WORDS:
        stops.append("\n")
    return stops


def history_messages(exchanges: list[Exchange]) -> list[dict]:
    """Earlier complete exchanges as alternating user/assistant messages, oldest first."""
    messages = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": exchange.user_text})
        messages.append({"role": "assistant", "content": exchange.reply or ""})
    return messages


def user_message(text: str) -> dict:
    return {"role": "user", "content": text}
