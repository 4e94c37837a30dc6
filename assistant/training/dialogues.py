"""Training dialogues: what the local model may learn from, and how a dialogue is written.

Contract:
- ``render_prompt(context, asker, message, responder)`` is the ONE speaker-tagged prompt: each
  earlier turn on its own line as ``Speaker: text`` (``Someone`` when the speaker is not known),
  then the asking person's message tagged with their name, then ``responder:`` for the reply to
  follow. Training builds its inputs with it and the tuned model answers a live turn with it, so
  who is asking reaches the model at inference exactly as in training. ``asker=None`` writes the
  untagged variant (the plain fine-tune baseline): the message is tagged ``Someone``.
- ``reply_text(reply)`` is what follows the prompt in training: the reply, then a newline (the
  tuned model stops there).
- ``learnable(store)`` lists the exchanges a human wrote or a stronger model gave: imported
  history (``route = 'import'``: the ``--me`` person's replies), replies a person corrected in
  the Memory tab (``edited_at`` set) and answers from the cloud (``route = 'cloud'``, sent only
  with the person's consent). Never the local model's own unedited replies.
- ``live_prompt(exchange, asker)`` is the prompt a live turn (already begun in the store, so
  with the context the store keeps for it) is answered with: built from the exchange row
  exactly as ``learnable`` builds a training dialogue, so training sees the same text;
  ``turn_prompt(context, asker, message)`` is the same from a turn's stored context
  (``Question.context``), which is what the tuned local model uses.
- ``source_counts(store)`` says how many of each source there are, per person (for the UI/CLI).
- ``ends_sentence(text)``: whether a token's text ends a sentence, the one test the length prior
  uses on train replies (``trainer.sentence_lead``) and on llama.cpp's tokens
  (``serving.sentence_end_tokens``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from assistant.store import context_turns
from assistant.store.store import Store
from assistant.store.training_data import learnable_rows

UNKNOWN_SPEAKER = "Someone"
RESPONDER = "Assistant"
MAX_TURN_CHARS = 400  # an earlier turn longer than this is clipped: the reply is what is learned



@dataclass(frozen=True)
class Turn:
    speaker: str | None
    text: str


@dataclass(frozen=True)
class Example:
    """One dialogue to learn from: who asked, what came before, the message and the reply."""

    querier: str
    context: tuple[Turn, ...]
    query: str
    reply: str
    cluster: int = 0
    exchange_id: int | None = None
    profile_id: int | None = None


def _line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TURN_CHARS else text[: MAX_TURN_CHARS - 1] + "…"


def render_prompt(context, asker: str | None, message: str, responder: str = RESPONDER) -> str:
    """The speaker-tagged prompt (see the module contract); the reply follows it."""
    lines = [f"{turn.speaker or UNKNOWN_SPEAKER}: {_line(turn.text)}" for turn in context if turn.text.strip()]
    lines.append(f"{asker or UNKNOWN_SPEAKER}: {_line(message)}")
    return "\n".join(lines) + f"\n{responder}:"


def reply_text(reply: str) -> str:
    return " " + " ".join(reply.split()) + "\n"


def prompt_of(example: Example, tagged: bool = True, responder: str = RESPONDER) -> str:
    return render_prompt(example.context, example.querier if tagged else None, example.query, responder)


def _kind(row: dict) -> str:
    if row["edited_at"]:
        return "corrected"
    return "cloud" if row["route"] == "cloud" else "imported"


def _context(row: dict) -> tuple[Turn, ...]:
    """A chat exchange's context is the conversation's previous exchange (its asker, then the
    assistant); an import keeps only the earlier turns' text, so their speakers are unknown."""
    texts = context_turns.texts(row["context"])
    if row["source"] == "chat" and len(texts) == 2:
        return (Turn(row["name"], texts[0]), Turn(RESPONDER, texts[1]))
    return tuple(Turn(None, t) for t in texts)


def _example(row: dict) -> Example:
    return Example(row["name"], _context(row), row["user_text"], row["reply"] or "", row["cluster"] or 0, row["id"],
                   row["profile_id"])


def learnable(store: Store) -> list[Example]:
    """Every exchange the model may learn from (see the module contract), oldest first."""
    return [_example(row) for row in learnable_rows(store)]


def source_counts(store: Store) -> dict[str, dict[str, int]]:
    """``{person: {"imported": n, "corrected": n, "cloud": n}}`` of the learnable exchanges."""
    counts: dict[str, dict[str, int]] = {}
    for row in learnable_rows(store):
        person = counts.setdefault(row["name"], {"imported": 0, "corrected": 0, "cloud": 0})
        person[_kind(row)] += 1
    return counts


def live_prompt(exchange, asker: str) -> str:
    """The tagged prompt for a live turn (see the module contract)."""
    return turn_prompt(context_turns.texts(exchange.context), asker, exchange.user_text, exchange.source)


def turn_prompt(context, asker: str, message: str, source: str = "chat") -> str:
    """The tagged prompt for a turn from its stored context (the texts ``Exchange.context``
    holds), built exactly as ``learnable`` builds a training dialogue."""
    row = {"name": asker, "context": json.dumps(list(context)), "source": source, "user_text": message,
           "reply": None, "cluster": None, "id": None, "profile_id": None}
    return prompt_of(_example(row))


def ends_sentence(text: str) -> bool:
    """``.``, ``!`` or ``?`` at the end, maybe followed by a closing quote or bracket."""
    return text.rstrip("\"')]").endswith((".", "!", "?"))
