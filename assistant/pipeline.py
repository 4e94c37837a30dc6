"""The pipeline of one turn: identify → recall → route → generate → remember.

``Assistant.turn()`` is the whole flow in one short generator. It yields events the UI and
the CLI render: ``Started`` (who, which conversation, the route and its reason),
``Answering`` (which model the text comes from), ``Chunk`` (reply text as it streams),
``Rerouted`` (the cloud failed: drop the text so far, the local model answers, with a note)
and ``Finished`` (the stored exchange with its stats). The user's message is committed
before generation starts; if generation fails or the consumer stops early, the exchange is
marked failed with whatever was generated, and the error propagates. A cloud failure is not
a failed turn: it is answered locally, once, in the same stored exchange.

The parts: identification (``assistant.people.identification``), recall (``assistant.memory``),
the router, which names the chat model that answers (``assistant.routing``, ``assistant.models``),
and the turn log, which writes every change of the turn's row (``assistant.store.turn_log``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Collection, Iterator

from assistant import prompts
from assistant.errors import InputError
from assistant.inputs import clean_message
from assistant.memory.memory import Memory
from assistant.memory.recall import Recall, Recollection
from assistant.models.chat import ChatModel, Models, Noted, OnDevice, Question, Switch
from assistant.models.escalation import Escalation
from assistant.models.local import LocalModel
from assistant.people.identification import AUTO, Identification, detect, identify
from assistant.people.service import People
from assistant.routing.router import Route, Router
from assistant.settings import CloudMode, Settings
from assistant.store import context_turns
from assistant.store.store import Exchange, GenerationStats, Profile, Session, Store
from assistant.store.turn_log import TurnLog
from assistant.turn_options import TurnOptions


@dataclass(frozen=True)
class Started:
    person: Profile
    session: Session
    exchange_id: int
    route: Route
    recollection: Recollection
    identification: Identification | None = None  # set when the speaker was detected


@dataclass(frozen=True)
class Chunk:
    text: str


@dataclass(frozen=True)
class Answering:
    """Which model the chunks that follow come from (sent before the first chunk)."""

    route: str  # "local" or "cloud"
    model: str


@dataclass(frozen=True)
class Rerouted:
    """The cloud failed: drop the text shown so far; the local model answers from scratch."""

    note: str


@dataclass(frozen=True)
class Finished:
    exchange: Exchange


@dataclass(frozen=True)
class Unsure:
    """The speaker was to be detected and the guess is below the threshold: ask who it is."""

    identification: Identification


TurnEvent = Started | Answering | Chunk | Rerouted | Finished | Unsure


class Assistant:
    """Settings, store and models wired together; the UI and the CLI talk only to this."""

    def __init__(self, settings: Settings, store: Store | None = None, local: LocalModel | None = None,
                 memory: Memory | None = None):
        self.settings = settings
        self.store = store or Store(settings.database_path, settings.max_name_chars)
        self.memory = memory or Memory(settings, self.store)
        self.parts = self.memory.parts()  # what recall, identification and the router are given
        self.recall = Recall(*self.parts)
        self.log = TurnLog(self.store)
        self._local = local
        self.on_device = OnDevice(lambda: self.local, settings)
        self.log.fail_interrupted("interrupted: the app stopped before the reply was complete")

    @property
    def local(self) -> LocalModel:
        if self._local is None:
            self._local = LocalModel.shared(self.settings)
        return self._local

    @cached_property
    def people(self) -> People:
        """The people and what is remembered of them: what the UI and the CLI manage them through."""
        return People(self.settings, self.store, self.memory)

    @cached_property
    def router(self) -> Router:
        models = Models(self.on_device, lambda: self.escalation, self.settings, note=self.log.record_note)
        return Router(self.settings, self.parts.store, self.parts.index, models=models, log=self.log)

    @cached_property
    def escalation(self) -> Escalation:
        return Escalation(self.settings, self.store, log=self.log)

    def turn(
        self,
        message: str,
        speaker: int | str,
        session_id: int | None = None,
        mode: CloudMode | None = None,
        create_speaker: bool = False,
        among: Collection[int] | None = None,
        options: TurnOptions = TurnOptions(),
    ) -> Iterator[TurnEvent]:
        """Answer ``message`` from ``speaker`` (a profile, a name, or ``AUTO`` to detect among the
        profiles ``among``, everyone when None) in a conversation (a new one if ``session_id`` is None).
        ``options`` carry a caller's sampling and instructions (the API's); the defaults are the settings'."""
        text = clean_message(message, self.settings.max_message_chars)
        person, guess = self._identify(text, speaker, session_id, create_speaker, among)
        if person is None:
            yield Unsure(guess)
            return
        session = self._conversation(person, session_id)
        context = self._context(session.id, person)
        exchange_id = self.log.begin_exchange(session.id, person.id, text, context)
        if guess is not None:
            self.log.record_identification(exchange_id, person.id, guess.confidence)
        reply = Reply()
        try:
            query = self.parts.encoders.queries([text])[0]
            recollection = self.recall.turn(person, text, session.id, exchange_id, self.settings, query,
                                            memories=self._may_recall(guess))
            self.log.record_recall(exchange_id, recollection.summary())
            route = self.router.choose(mode or self.settings.cloud_mode, person, text, query, session.id)
            self.log.record(exchange_id, route.target, route.reason, route.score)
            yield Started(person, session, exchange_id, route, recollection, guess)
            question = Question(exchange_id, person.name, text, recollection.history, recollection.memories, options,
                                tuple(t["text"] for t in context))
            model = route.model if options.tuned else self.router.models.untuned(route.model)
            yield from reply.collect(self._reply(model, question))
        except BaseException as error:  # includes the consumer closing the stream early
            self.log.fail_exchange(exchange_id, _describe(error), reply.text)
            raise
        exchange = self.log.complete_exchange(exchange_id, reply.text.strip(), reply.stats())
        self.memory.remember(exchange)
        yield Finished(exchange)

    def correct(self, exchange_id: int, speaker: int, session_id: int | None = None, mode: CloudMode | None = None,
                options: TurnOptions = TurnOptions()) -> Iterator[TurnEvent]:
        """The speaker of a detected turn was ``speaker``, not whom it was filed under: forget the
        exchange from that person for good (its reply came from their memories) and answer its
        message again as ``speaker``, in ``session_id`` if that is their conversation, else a new one."""
        person = identify(self.store, speaker)
        wrong = self.store.exchange(exchange_id)
        if wrong.profile_id == person.id:
            raise InputError(f"That message is already {person.name}'s.")
        if session_id is not None and self.store.session(session_id).profile_id != person.id:
            session_id = None
        self.people.discard_misattributed(exchange_id)
        yield from self.turn(wrong.user_text, person.id, session_id, mode, options=options)

    def temporary_turn(self, message: str, person: Profile, earlier: list[tuple[str, str]]) -> Iterator[Chunk]:
        """A turn that neither reads nor writes memory: no recall, nothing stored, and always on
        this device (a cloud turn keeps a record of what was sent). ``earlier`` is this temporary
        conversation so far, as (message, reply) pairs that only the caller holds."""
        text = clean_message(message, self.settings.max_message_chars)
        history = [{"role": role, "content": content} for asked, answered in earlier
                   for role, content in (("user", asked), ("assistant", answered))]
        prompt = self.local.fit(prompts.system_message(self.settings.system_prompt, person.name), history,
                                prompts.user_message(text))
        yield from map(Chunk, self.local.stream(prompt, stop=prompts.stop_strings(person.name)))

    def preview_turn(self, message: str, person: Profile, tuned: bool = True) -> Iterator[Answering | Chunk]:
        """``message`` answered as if ``person`` asked it, as a preview (Compare): their memories
        are read (recall), nothing is stored or remembered, and it is always answered on this
        device, by the tuned model when there is one and ``tuned`` is on."""
        text = clean_message(message, self.settings.max_message_chars)
        memories, _ = self.recall.memories(person, text, [], self.settings)
        model = self.router.models.local()
        if isinstance(model, Noted):  # the adapter was refused: no stored turn to note it on
            model = model.model
        if not tuned:
            model = self.router.models.untuned(model)
        yield Answering(model.where, model.name)
        yield from map(Chunk, model.answer(Question(0, person.name, text, [], memories)))

    def _reply(self, model: ChatModel, question: Question) -> Iterator[Answering | Chunk | Rerouted]:
        """The reply's text from the model the route names; a model that hands over says so."""
        yield Answering(model.where, model.name)
        for piece in model.answer(question):
            if isinstance(piece, Switch):  # the cloud failed: the local model answers instead
                self.log.record_note(question.exchange_id, piece.note)
                yield Rerouted(piece.note)
                yield Answering(piece.model.where, piece.model.name)
            else:
                yield Chunk(piece)

    def _identify(self, text, speaker, session_id, create, among) -> tuple[Profile | None, Identification | None]:
        if speaker != AUTO:
            return identify(self.store, speaker, create=create), None
        earlier = [e.user_text for e in self.store.session_exchanges(session_id)] if session_id else []
        guess = detect(self.parts.store, self.parts.vectors, self.parts.encoders, text, earlier[-4:],
                       self.settings.identify_threshold, self.settings.identify_temperature, among,
                       self.settings.identify_margin)
        return (guess.profile if guess.sure else None), guess

    def _may_recall(self, guess: Identification | None) -> bool:
        """A chosen speaker's memories are used; a detected one's only from the confidence the
        settings allow (none by default: a confident guess can still be the wrong person)."""
        floor = self.settings.identify_recall_confidence
        return guess is None or (floor is not None and guess.confidence >= floor)

    def _context(self, session_id: int, person: Profile) -> list[dict]:
        """The last exchange of the conversation, kept with the new one for its dialogue vector
        (the person's message tagged as theirs, so deleting them finds it: ``store.context_turns``)."""
        last = self.store.session_exchanges(session_id, last=1, complete_only=True)
        return [t for e in last for t in (context_turns.turn(e.user_text, [(person.name, person.id)]),
                                          context_turns.turn(e.reply or ""))]

    def _conversation(self, person: Profile, session_id: int | None) -> Session:
        if session_id is None:
            return self.store.new_session(person.id)
        session = self.store.session(session_id)
        if session.profile_id != person.id:  # never continue someone else's conversation
            return self.store.new_session(person.id)
        return session


class Reply:
    """The reply as it streams: its text, which model it came from, time to first text, rate."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first: float | None = None
        self.pieces: list[str] = []
        self.route, self.model = "local", ""

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def collect(self, events: Iterator[TurnEvent]) -> Iterator[TurnEvent]:
        for event in events:
            if isinstance(event, Answering):
                self.route, self.model = event.route, event.model
            elif isinstance(event, Rerouted):  # start again: the time to first text is the user's wait
                self.pieces.clear()
                self.first = None
            elif isinstance(event, Chunk):
                self.first = self.first or time.perf_counter()
                self.pieces.append(event.text)
            yield event

    def stats(self) -> GenerationStats:
        end = time.perf_counter()
        first = self.first or end
        rate = (len(self.pieces) - 1) / (end - first) if len(self.pieces) > 1 and end > first else 0.0
        return GenerationStats(self.route, self.model, (first - self.start) * 1000, len(self.pieces), rate)


def _describe(error: BaseException) -> str:
    if isinstance(error, GeneratorExit):
        return "interrupted before the reply was complete"
    return str(error) or type(error).__name__
