"""Which stored conversation an API request continues, from the history its client resends.

OpenAI-style clients send the whole conversation on every request. Confidant keeps conversations
itself, so the resent history only has to say *which* one this is; the prompt is built from the
stored conversation, as in the browser.

Rules (documented in the README, "Use Confidant from other apps"):
- ``system`` (and ``developer``) messages are the client's instructions, joined, added after the
  persona; over ``api_system_chars`` they are refused, never cut.
- The last message must be the user's: it is the new message. The earlier *user* messages are
  compared, after the same clean-up the store applies, with the person's stored conversations'
  complete exchanges. Assistant messages are not compared: clients trim, reformat or let people
  edit them, and the stored reply is what the prompt uses anyway.
- ``X-Confidant-Conversation: ID`` names the conversation instead (one of the person's).
- Earlier messages equal to a stored conversation → that conversation continues. Earlier messages
  plus the new one equal to a stored conversation → the request was already answered (a retry or a
  resend): the stored answer is returned and nothing is stored again. No earlier messages, or none
  that match → a new conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from assistant.errors import InputError, NotFoundError
from assistant.inputs import clean_message
from assistant.store.store import Exchange, Store
from assistant.turn_options import instructions_within

SEARCHED = 200  # most recent candidate conversations of one person compared with a history
INSTRUCTION_ROLES = ("system", "developer")
ROLES = (*INSTRUCTION_ROLES, "user", "assistant")


@dataclass(frozen=True)
class Asked:
    """What a request's messages say: the new message, the user's earlier ones, instructions."""

    text: str
    earlier: list[str]
    instructions: str


@dataclass(frozen=True)
class Placement:
    session_id: int | None  # the conversation to continue; None: a new one
    answered: Exchange | None = None  # the request was answered before: this is the answer


def read_messages(messages: list[dict], max_chars: int, max_system_chars: int) -> Asked:
    """Split ``messages`` (already checked to be role/text pairs) per the module's rules."""
    if not messages or messages[-1]["role"] != "user":
        raise InputError("The last message must be the user's (role 'user'): it is the message to answer.")
    instructions = "\n".join(m["content"].strip() for m in messages if m["role"] in INSTRUCTION_ROLES)
    users = [m["content"] for m in messages if m["role"] == "user"]
    return Asked(clean_message(users[-1], max_chars), [_comparable(t, max_chars) for t in users[:-1]],
                 instructions_within(instructions, max_system_chars))


def place(store: Store, people: Collection[int], asked: Asked, named: int | None = None) -> Placement:
    """Where the request belongs among the conversations of ``people`` (the person named, or
    everyone the speaker may be detected among; see the module rules)."""
    if named is not None:
        session = store.session(named)
        if session.profile_id not in people:  # worded as if it did not exist
            raise NotFoundError(f"No conversation {named}.")
        stored = _complete(store, named)
        answered = _answered(stored, asked)
        return Placement(named, answered)
    if not asked.earlier:
        return Placement(None)
    for session_id in _candidates(store, people, asked):
        stored = _complete(store, session_id)
        answered = _answered(stored, asked)
        if answered is not None or [e.user_text for e in stored] == asked.earlier:
            return Placement(session_id, answered)
    return Placement(None)


def _answered(stored: list[Exchange], asked: Asked) -> Exchange | None:
    if stored and [e.user_text for e in stored] == [*asked.earlier, asked.text]:
        return stored[-1]
    return None


def _candidates(store: Store, people: Collection[int], asked: Asked) -> list[int]:
    """The people's conversations holding the history's first message, most recent first."""
    return store.sessions_with_message(people, asked.earlier[0], SEARCHED)


def _complete(store: Store, session_id: int) -> list[Exchange]:
    return store.session_exchanges(session_id, complete_only=True)


def _comparable(text: str, max_chars: int) -> str:
    """An earlier user message as the store would have kept it ("" if it could never have been)."""
    try:
        return clean_message(text, max_chars)
    except InputError:
        return ""
