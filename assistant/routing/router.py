"""Routing: where one turn is answered (on this device or in the cloud) and why.

Contract: ``Router(settings, store, index, models=...).choose(mode, person, text, query, session_id)``
returns a ``Route``: the chat model that answers (``model``, from ``assistant.models.chat.Models``:
the local one, the cloud one with its local fallback, or the cached answer), where it runs
(``target``), a one-line reason for the status line, the difficulty score (Auto only) and, for a
semantic-cache hit, the earlier cloud exchange it answers from. Without ``models`` (an
evaluation replaying decisions) ``model`` is None. ``store`` and ``index`` (the memory's
``LazyIndex``) are read only for the semantic cache.
The rules, first match wins:

1. mode ``off``, no cloud configured, or the person said "never send my messages" → local;
2. mode ``always`` → cloud;
3. Auto: the person asked something close to an earlier cloud answer (cosine of the general
   tower ≥ ``cache_similarity``, their own exchanges only) → local, from that answer;
4. Auto: a follow-up whose score moved less than ``router_stickiness`` from the previous Auto
   turn of the conversation stays on that turn's side;
5. Auto: cloud when the difficulty score reaches the threshold for ``cloud_budget``: the
   household's online threshold (``assistant.routing.budget``), which starts from the shipped
   calibration and follows every scored turn of this household, so that the share of its turns
   sent to the cloud tracks the budget from the first turns. The reason shows the threshold.

Scoring is a dot product over the message's embedding, which recall computes anyway: no draft
reply, well under the 10 ms budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from assistant.routing.budget import WINDOW, online_threshold
from assistant.routing.difficulty import DifficultyModel
from assistant.errors import ModelError
from assistant.memory.lazy_index import LazyIndex
from assistant.models.chat import ChatModel, Models
from assistant.store.turn_log import TurnLog
from assistant.settings import CloudMode, Settings
from assistant.store.store import Exchange, Profile, Store


@dataclass(frozen=True)
class Route:
    target: str                         # "local" or "cloud"
    reason: str
    score: float | None = None          # the difficulty score, when Auto computed one
    cached: Exchange | None = None      # an earlier cloud answer this turn is answered from
    cache_similarity: float = 0.0
    model: ChatModel | None = None      # the chat model that answers (when the router has the models)


class Router:
    def __init__(self, settings: Settings, store: Store, index: LazyIndex, model: DifficultyModel | None = None,
                 models: Models | None = None, log: TurnLog | None = None):
        self.settings, self.store, self.index, self.log = settings, store, index, log or TurnLog(store)
        self._model, self.models = model, models

    @cached_property
    def model(self) -> DifficultyModel:
        return self._model or DifficultyModel.load(self.settings.router_path)

    def choose(self, mode: CloudMode, person: Profile, text: str, query: np.ndarray, session_id: int) -> Route:
        route = self._decide(mode, person, text, query, session_id)
        if self.models is None:
            return route
        return replace(route, model=self.models.pick(route.target, route.cached, route.cache_similarity))

    def _decide(self, mode: CloudMode, person: Profile, text: str, query: np.ndarray, session_id: int) -> Route:
        if mode == "off":
            return Route("local", "cloud escalation is off")
        if not self.settings.cloud_configured:
            return Route("local", "no cloud model is configured")
        if not person.cloud_allowed:
            return Route("local", f"{person.name}'s messages never go to the cloud")
        if mode == "always":
            return Route("cloud", "cloud escalation is set to always")
        try:
            return self._auto(person, text, query, session_id)
        except ModelError as error:  # a broken router file must not cost the answer
            return Route("local", f"the router is unavailable ({error})")

    def _auto(self, person: Profile, text: str, query: np.ndarray, session_id: int) -> Route:
        hit = self.cached_answer(person, query)
        if hit is not None:
            exchange, similarity = hit
            return Route("local", f"cached: close to an earlier cloud answer (similarity {similarity:.2f})",
                         cached=exchange, cache_similarity=similarity)
        score, kind = self.model.assess(text, query)
        previous = self.log.last_auto(session_id)
        if previous is not None and abs(score - previous[1]) < self.settings.router_stickiness:
            side, before = previous
            return Route(side, f"follow-up stays {'in the cloud' if side == 'cloud' else 'on this device'} "
                               f"(score {score:.2f}, was {before:.2f})", score)
        threshold, turns = self.threshold()
        why = (f"threshold for a {self.settings.cloud_budget:.0%} cloud budget, calibrated on "
               + (f"{turns} scored turn{'s' * (turns != 1)} here" if turns else "the shipped stream"))
        if score >= threshold:
            return Route("cloud", f"hard: {kind}, score {score:.2f} ≥ {threshold:.2f}, the {why}", score)
        return Route("local", f"easy: {kind}, score {score:.2f} < {threshold:.2f}, the {why}", score)

    def threshold(self) -> tuple[float, int]:
        """The household's current online threshold and how many scored turns it has seen (at most WINDOW)."""
        scores, sent = self.log.scored_turns(WINDOW)
        return online_threshold(self.model.quantiles, self.settings.cloud_budget, scores, sent), len(scores)

    def cached_answer(self, person: Profile, query: np.ndarray) -> tuple[Exchange, float] | None:
        """The person's own earlier cloud answer closest to ``query``, if close enough."""
        among = self.log.cloud_exchange_ids(person.id)
        if not among:
            return None
        hits = self.index.search(query, 1, among=among)
        if not hits or hits[0][1] < self.settings.cache_similarity:
            return None
        exchange_id, similarity = hits[0]
        return self.store.exchange(exchange_id), float(similarity)
