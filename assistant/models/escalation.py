"""One turn answered in the cloud: what is sent, through the privacy chokepoint, and back.

Contract:
- ``Escalation(settings, store)`` is the cloud's ``ChatModel`` (``chat.py``): ``answer(question)``
  (or ``stream(exchange_id, history, text)``) yields the cloud's reply with personal data restored. What it sends is the persona, at most ``cloud_context_turns``
  earlier exchanges of this conversation (each text cut to ``cloud_context_chars``) and the
  message — never memories from other conversations, profile vectors or stats — and all of
  it passes ``privacy.redact`` with every profile's name and ``private_names`` on the deny-list. The exact request
  body is stored with the turn *before* it is sent. Raises ``PrivacyError`` (nothing was
  sent) or ``CloudError``; ``chat.Fallback`` answers locally then, with ``fallback_note(error)``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterator

from assistant.models import privacy
from assistant.models.cloud import CloudModel
from assistant.errors import CloudError, CloudUnavailable, PrivacyError
from assistant.store.turn_log import TurnLog
from assistant.settings import Settings
from assistant.store.store import Exchange, Store
from assistant.turn_options import TurnOptions


class Escalation:
    where = "cloud"

    def __init__(self, settings: Settings, store: Store, cloud: CloudModel | None = None, log: TurnLog | None = None):
        self.settings, self.store, self.log = settings, store, log or TurnLog(store)
        self._cloud = cloud

    @cached_property
    def cloud(self) -> CloudModel:
        return self._cloud or CloudModel(self.settings)

    @property
    def name(self) -> str:
        return self.settings.cloud_model or "cloud"

    def answer(self, question) -> Iterator[str]:
        """The ``ChatModel`` side: what a cloud turn may carry of ``question`` (``messages``)."""
        return self.stream(question.exchange_id, question.history, question.text, question.options)

    def messages(self, history: list[Exchange], text: str, instructions: str = "") -> list[dict]:
        """Persona (and the caller's instructions), a short recent context and the message:
        everything a cloud turn may carry."""
        cut = self.settings.cloud_context_chars
        turns = self.settings.cloud_context_turns
        recent = history[-turns:] if turns else []
        context = [m for e in recent for m in ({"role": "user", "content": e.user_text[:cut]},
                                               {"role": "assistant", "content": (e.reply or "")[:cut]})]
        system = "\n".join(filter(None, (self.settings.system_prompt, instructions)))
        return [{"role": "system", "content": system}, *context, {"role": "user", "content": text}]

    def stream(self, exchange_id: int, history: list[Exchange], text: str,
               options: TurnOptions = TurnOptions()) -> Iterator[str]:
        redacted = privacy.redact(self.messages(history, text, options.instructions), self.deny_names())
        self.log.record_payload(exchange_id, self.cloud.request_body(redacted.messages, sampling=options.sampling))
        yield from redacted.restore_stream(self.cloud.stream(redacted.messages, options.sampling))

    def deny_names(self) -> list[str]:
        """Everyone the household knows (people from imported chats are profiles too) and ``private_names``."""
        return [p.name for p in self.store.profiles()] + list(self.settings.private_names)


def fallback_note(error: Exception) -> str:
    """What the status line says when a cloud turn was answered on this device instead."""
    if isinstance(error, PrivacyError):
        return "private details could not be removed, so nothing was sent — answered on this device"
    if isinstance(error, CloudUnavailable):
        return "cloud paused after repeated failures — answered on this device"
    if isinstance(error, CloudError):
        return f"cloud unreachable — answered on this device ({error})"
    raise TypeError(f"not a cloud failure: {error!r}")
