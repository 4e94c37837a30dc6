"""The one chat-model interface, and the wrappers that compose chat models.

A ``ChatModel`` answers one ``Question`` (the message, who asks, the conversation so far and
the person's recalled memories) with ``answer(question)``: an iterator of text chunks. It has
a ``name`` (shown under the reply and stored with it) and says ``where`` it runs: "local" (on
this device) or "cloud". Each model renders the chat messages it may be shown from the
question itself, which is where the privacy rule lives: only on-device models see memories;
the cloud sees a short recent context, redacted (``escalation.Escalation``).

- ``OnDevice(local, settings)``: the local llama.cpp model (``local.LocalModel``), prompted
  with persona, what the person told it before (their recalled words, in the system message),
  the conversation and the message.
- ``CachedAnswer(on_device, exchange, similarity, k)``: the same model answering a question
  close to an earlier cloud answer of this person's, which goes first among the examples.
- ``Escalation`` (``escalation.py``): the cloud model behind the privacy chokepoint.
- ``Fallback(primary, backup)``: the primary's answer; if it fails with ``CloudError`` or
  ``PrivacyError``, a ``Switch(backup, note)`` is yielded (drop the text so far) and the
  backup answers from scratch. A stream carries ``str`` chunks and at most that one ``Switch``.
- ``Models``: the chat models a route can name (``assistant.routing.router.Route.model``),
  made on demand so that the local model still loads on first use. The local model for a turn
  is the tuned one (``tuned.TunedLocal``: the same loaded llama.cpp model with the adapter
  ``confidant tune`` made) while its adapter exists and ``use_tuned_model`` is on, else
  ``OnDevice``; an adapter refused (made for another base model) is noted on the turn
  (``note(exchange_id, why)``) and ``OnDevice`` answers. The semantic cache always uses ``OnDevice``.
Timing (time to first text, rate) is measured by whoever reads the stream, the same for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Protocol

from assistant import prompts
from assistant.errors import AdapterError, CloudError, PrivacyError
from assistant.models.escalation import fallback_note
from assistant.settings import Settings
from assistant.store.store import Exchange
from assistant.turn_options import TurnOptions


@dataclass(frozen=True)
class Question:
    exchange_id: int
    speaker: str  # the asking person's name
    text: str
    history: list[Exchange] = field(default_factory=list)  # this conversation's recent exchanges
    memories: list = field(default_factory=list)  # the person's recalled exchanges, best first
    options: TurnOptions = TurnOptions()  # a caller's sampling and instructions (the API's)
    context: tuple[str, ...] = ()  # the turn's stored context (``Exchange.context``): the tuned model's prompt


@dataclass(frozen=True)
class Switch:
    """The answering model changed: drop the text so far; ``model`` answers from scratch."""

    model: "ChatModel"
    note: str


class ChatModel(Protocol):
    name: str
    where: str  # "local" or "cloud"

    def answer(self, question: Question) -> Iterator[str | Switch]: ...


class OnDevice:
    """The local model for a turn: persona, the person's recalled words, the conversation."""

    where = "local"

    def __init__(self, local: Callable[[], object], settings: Settings):
        self._local, self.settings = local, settings  # a getter: the model loads on first use

    @property
    def local(self):
        """The loaded ``LocalModel`` (the tuned model puts its adapter on the same one)."""
        return self._local()

    @property
    def name(self) -> str:
        return self._local().name

    def prompt(self, question: Question):
        """Persona (and the caller's instructions), who is asking and their memories, the
        conversation so far, the message."""
        chars = self.settings.recall_example_chars
        persona = "\n".join(filter(None, (self.settings.system_prompt, question.options.instructions)))
        return self._local().fit(
            prompts.chat_system_message(persona, question.speaker, question.memories, chars),
            prompts.history_messages(question.history),
            prompts.user_message_recalling(question.text, question.memories, chars),
        )

    def answer(self, question: Question) -> Iterator[str]:
        stop = prompts.stop_strings(question.speaker, question.memories)
        yield from self._local().stream(self.prompt(question), stop=stop, sampling=question.options.sampling)


@dataclass(frozen=True)
class EarlierAnswer:
    """An earlier cloud answer shown to the local model as the first example (never borrowed)."""

    exchange: Exchange
    similarity: float
    borrowed_from: None = None
    earlier_answer: bool = True  # the prompt shows its reply, to be reused (``prompts.chat_system_message``)


class CachedAnswer:
    """The semantic cache: the local model answers from the earlier cloud answer to a close question."""

    where = "local"

    def __init__(self, on_device: OnDevice, exchange: Exchange, similarity: float, k: int):
        self.on_device, self.earlier, self.k = on_device, EarlierAnswer(exchange, similarity), max(k, 1)

    @property
    def name(self) -> str:
        return self.on_device.name

    def answer(self, question: Question) -> Iterator[str]:
        others = [m for m in question.memories if m.exchange.id != self.earlier.exchange.id]
        yield from self.on_device.answer(replace(question, memories=[self.earlier, *others][: self.k]))


class Fallback:
    """``primary``'s answer, or ``backup``'s when the primary fails in the cloud or in redaction."""

    def __init__(self, primary: ChatModel, backup: ChatModel):
        self.primary, self.backup = primary, backup
        self.where = primary.where

    @property
    def name(self) -> str:
        return self.primary.name

    def answer(self, question: Question) -> Iterator[str | Switch]:
        try:
            yield from self.primary.answer(question)
            return
        except (CloudError, PrivacyError) as error:
            note = fallback_note(error)
        yield Switch(self.backup, note)
        yield from self.backup.answer(question)


class Noted:
    """``model``'s answer, with ``why`` noted on the turn first (e.g. the tuned adapter was refused)."""

    def __init__(self, model: ChatModel, why: str, note: Callable[[int, str], None]):
        self.model, self.why, self._note = model, why, note
        self.where = model.where

    @property
    def name(self) -> str:
        return self.model.name

    def answer(self, question: Question) -> Iterator[str | Switch]:
        self._note(question.exchange_id, self.why)
        yield from self.model.answer(question)


class Models:
    """The chat models a route can name; the local one and the cloud one are looked up when
    a route is chosen (so the local model loads on first use, and a replaced one is used)."""

    def __init__(self, on_device: OnDevice, cloud: Callable[[], ChatModel], settings: Settings,
                 note: Callable[[int, str], None] = lambda exchange_id, why: None):
        self.on_device, self._cloud, self.settings, self._note = on_device, cloud, settings, note
        self._tuned = None

    def pick(self, target: str, cached: Exchange | None = None, similarity: float = 0.0) -> ChatModel:
        if cached is not None:
            return CachedAnswer(self.on_device, cached, similarity, self.settings.recall_k)
        if target == "cloud":
            return Fallback(self._cloud(), self.local())
        return self.local()

    def local(self) -> ChatModel:
        """The tuned local model while its adapter exists (deleting it, e.g. for privacy, ends it
        at the next turn; one retrained since is opened afresh), else ``OnDevice``."""
        from assistant.models.tuned import TunedLocal  # the training package, only when asked

        if self._tuned is not None and not self._tuned.available:
            self._tuned.close()
            self._tuned = None
        if self._tuned is None and self.settings.use_tuned_model:
            try:
                self._tuned = TunedLocal.open(lambda: self.on_device.local, self.settings)
            except AdapterError as error:
                return Noted(self.on_device, str(error), self._note)
        return self._tuned or self.on_device

    def untuned(self, model: ChatModel) -> ChatModel:
        """``model`` with the base local model in place of the tuned one, for a caller who chose
        the base (``TurnOptions.tuned`` off); the status line then says so."""
        if self._tuned is None:
            return model
        if model is self._tuned:
            return BaseChosen(self.on_device)
        if isinstance(model, Fallback) and model.backup is self._tuned:
            return Fallback(model.primary, BaseChosen(self.on_device))
        return model


class BaseChosen:
    """The base local model answering although a tuned adapter exists (the person turned it off)."""

    where = "local"

    def __init__(self, model: ChatModel):
        self.model = model

    @property
    def name(self) -> str:
        return f"{self.model.name} (base model, tuned off)"

    def answer(self, question: Question) -> Iterator[str | Switch]:
        yield from self.model.answer(question)
