"""The pipeline of one turn: identify → recall → route → generate → remember.

``Assistant.turn()`` is the whole flow in one short generator. It yields events the UI and
the CLI render: ``Started`` (who, which conversation, the route), ``Chunk`` (reply text as
it streams) and ``Finished`` (the stored exchange with its stats). The user's message is
committed before generation starts; if generation fails or the consumer stops early, the
exchange is marked failed with whatever was generated, and the error propagates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from assistant import prompts
from assistant.inputs import clean_message
from assistant.local import LocalModel
from assistant.memory import Memory
from assistant.recall import Recollection, recall
from assistant.router import Route, choose_route
from assistant.settings import CloudMode, Settings
from assistant.store import Exchange, GenerationStats, Profile, Session, Store
from profiles.identify import AUTO, Identification, detect, identify


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
class Finished:
    exchange: Exchange


@dataclass(frozen=True)
class Unsure:
    """The speaker was to be detected and the guess is below the threshold: ask who it is."""

    identification: Identification


TurnEvent = Started | Chunk | Finished | Unsure


class Assistant:
    """Settings, store and models wired together; the UI and the CLI talk only to this."""

    def __init__(self, settings: Settings, store: Store | None = None, local: LocalModel | None = None,
                 memory: Memory | None = None):
        self.settings = settings
        self.store = store or Store(settings.database_path, settings.max_name_chars)
        self.memory = memory or Memory(settings, self.store)
        self._local = local

    @property
    def local(self) -> LocalModel:
        if self._local is None:
            self._local = LocalModel.shared(self.settings)
        return self._local

    def turn(
        self,
        message: str,
        speaker: int | str,
        session_id: int | None = None,
        mode: CloudMode | None = None,
        create_speaker: bool = False,
    ) -> Iterator[TurnEvent]:
        """Answer ``message`` from ``speaker`` (a profile, a name, or ``AUTO`` to detect) in a
        conversation (a new one if ``session_id`` is None)."""
        text = clean_message(message, self.settings.max_message_chars)
        person, guess = self._identify(text, speaker, session_id, create_speaker)
        if person is None:
            yield Unsure(guess)
            return
        session = self._conversation(person, session_id)
        exchange_id = self.store.begin_exchange(session.id, person.id, text, self._context(session.id))
        if guess is not None:
            self.store.record_identification(exchange_id, person.id, guess.confidence)
        reply: list[str] = []
        try:
            recollection = recall(self.memory, person, text, session.id, exchange_id, self.settings)
            self.store.record_recall(exchange_id, recollection.summary())
            route = choose_route(mode or self.settings.cloud_mode, self.settings)
            yield Started(person, session, exchange_id, route, recollection, guess)
            timer = StreamTimer()
            stop = prompts.stop_strings(person.name, recollection.memories)
            for piece in timer.watch(self.local.stream(self._prompt(person, recollection, text), stop=stop)):
                reply.append(piece)
                yield Chunk(piece)
        except BaseException as error:  # includes the consumer closing the stream early
            self.store.fail_exchange(exchange_id, _describe(error), "".join(reply))
            raise
        stats = timer.stats(route.target, self.local.name)
        exchange = self.store.complete_exchange(exchange_id, "".join(reply).strip(), stats)
        self.memory.remember(exchange)
        yield Finished(exchange)

    def _prompt(self, person: Profile, recollection: Recollection, text: str):
        """Persona, who is asking and their memories, the conversation so far, the message."""
        chars = self.settings.recall_example_chars
        return self.local.fit(
            prompts.system_message(self.settings.system_prompt, person.name, recollection.memories, chars),
            prompts.example_messages(recollection.memories, chars) + prompts.history_messages(recollection.history),
            prompts.user_message(text),
        )

    def _identify(self, text, speaker, session_id, create) -> tuple[Profile | None, Identification | None]:
        if speaker != AUTO:
            return identify(self.store, speaker, create=create), None
        earlier = [e.user_text for e in self.store.session_exchanges(session_id)] if session_id else []
        guess = detect(self.memory, text, earlier[-4:], self.settings.identify_threshold,
                       self.settings.identify_temperature)
        return (guess.profile if guess.sure else None), guess

    def _context(self, session_id: int) -> list[str]:
        """The last exchange of the conversation, kept with the new one for its dialogue vector."""
        last = self.store.session_exchanges(session_id, last=1, complete_only=True)
        return [t for e in last for t in (e.user_text, e.reply or "")]

    def _conversation(self, person: Profile, session_id: int | None) -> Session:
        if session_id is None:
            return self.store.new_session(person.id)
        session = self.store.session(session_id)
        if session.profile_id != person.id:  # never continue someone else's conversation
            return self.store.new_session(person.id)
        return session


class StreamTimer:
    """Time to first chunk, chunk count and decode rate of a stream."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first: float | None = None
        self.end: float | None = None
        self.count = 0

    def watch(self, stream: Iterator[str]) -> Iterator[str]:
        for piece in stream:
            if self.first is None:
                self.first = time.perf_counter()
            self.count += 1
            yield piece
        self.end = time.perf_counter()

    def stats(self, route: str, model: str) -> GenerationStats:
        end = self.end or time.perf_counter()
        first = self.first or end
        decode_seconds = end - first
        rate = (self.count - 1) / decode_seconds if self.count > 1 and decode_seconds > 0 else 0.0
        return GenerationStats(route, model, (first - self.start) * 1000, self.count, rate)


def _describe(error: BaseException) -> str:
    if isinstance(error, GeneratorExit):
        return "interrupted before the reply was complete"
    return str(error) or type(error).__name__
