"""Confidant as an OpenAI-compatible endpoint: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Served by ``confidant serve`` next to the web app (``routes(...)`` is mounted on the same FastAPI
app, ``app.web``). Every reply is one ``Assistant.turn()``, the browser's own pipeline: the API
only says who is asking, which conversation it is and which cloud mode the model asks for.

- Who: the ``X-Confidant-Person`` header, else the request's ``user`` field, names a profile the
  caller may use; absent or ``auto``, the speaker is detected among them as the browser does. An
  unknown name is a 404 unless the request asks to create it (header
  ``X-Confidant-Create-Person: true`` or ``"confidant": {"create_person": true}`` in the body).
- Which conversation: ``assistant.conversations`` (the resent history or ``X-Confidant-Conversation``).
- Access: without a users file, everyone on this computer may use everything (the server binds to
  loopback, ``app.web.check_binding``). With one, a bearer key (``app.api_keys``) names the login,
  and ``app.auth.Access`` decides which profiles it reaches, exactly as for the browser.
- Limits: the request body (``api_max_request_bytes``), the message (``max_message_chars``), the
  client's system text (``api_system_chars``), and reply slots (``app.api_capacity``: 429 with
  Retry-After when full). Every refusal is an OpenAI error object; nothing is stored for it.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app import native_memory
from app.api_capacity import Busy, Capacity
from assistant.conversations import Asked, place, read_messages
from app.api_keys import KeyCheck, Locked
from app.api_schema import ANSWERED_BY, MODELS, ApiError, ChatRequest, chunk, completion, error_body, models, \
    parse_request, sse
from app.auth import Access, Users
from assistant.errors import ConfidantError, InputError, NotFoundError
from assistant.pipeline import Answering, Assistant, Chunk, Finished, Rerouted, Started, Unsure
from assistant.store.store import Exchange, Profile
from assistant.turn_options import Sampling, TurnOptions
from assistant.pipeline import AUTO

PERSON_HEADER, CONVERSATION_HEADER, CREATE_HEADER = "x-confidant-person", "x-confidant-conversation", "x-confidant-create-person"
STATUS = {InputError: (400, "invalid_request"), NotFoundError: (404, "not_found")}  # the rest: 503, server_error


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, shaped like a Gradio request for ``Access`` (its ``username``)."""

    username: str | None


def routes(assistant: Assistant, users: Users | None) -> APIRouter:
    api = Endpoint(assistant, users)
    router = APIRouter(prefix="/v1")
    router.add_api_route("/models", api.list_models, methods=["GET"])
    router.add_api_route("/models/{model}", api.one_model, methods=["GET"])
    router.add_api_route("/chat/completions", api.chat, methods=["POST"])
    return router


class Endpoint:
    def __init__(self, assistant: Assistant, users: Users | None):
        settings = assistant.settings
        self.assistant, self.store, self.settings = assistant, assistant.store, settings
        self.access = Access(assistant.store, users)
        self.keys = KeyCheck(users) if users else None
        self.capacity = Capacity(settings.concurrency, settings.api_queue_size, settings.api_queue_wait)
        self.started = int(time.time())

    async def list_models(self, request: Request) -> Response:
        try:
            self._caller(request)
        except ConfidantError as error:
            return _error_response(error)
        return JSONResponse(models(self.started))

    async def one_model(self, request: Request, model: str) -> Response:
        try:
            self._caller(request)
            found = [m for m in models(self.started)["data"] if m["id"] == model]
            if not found:
                raise ApiError(404, f"The model {model!r} does not exist; use one of {', '.join(MODELS)}.",
                               code="model_not_found", param="model")
        except ConfidantError as error:
            return _error_response(error)
        return JSONResponse(found[0])

    async def chat(self, request: Request) -> Response:
        try:
            caller = self._caller(request)
            body = parse_request(await self._body(request))
            return await run_in_threadpool(self._answer, caller, body, request.headers)
        except ConfidantError as error:
            return _error_response(error)

    # Who is asking

    def _caller(self, request: Request) -> Caller:
        if self.keys is None:
            return Caller(None)
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        client = request.client.host if request.client else "?"
        try:
            login = self.keys.login(key.strip() if scheme.lower() == "bearer" else None, client)
        except Locked as error:
            raise ApiError(429, str(error), "rate_limit_error", "too_many_wrong_keys",
                           {"Retry-After": str(max(1, round(error.retry_after)))}) from None
        if login is None:
            raise ApiError(401, "Missing or wrong API key: send `Authorization: Bearer KEY` with a key from "
                           "`confidant users key LOGIN`.", "authentication_error", "invalid_api_key",
                           {"WWW-Authenticate": "Bearer"})
        return Caller(login)

    def _person(self, caller: Caller, body: ChatRequest, headers) -> Profile | None:
        """The profile named by the request (None: detect), created if the request asks to."""
        # URL-unquoted: Open WebUI's forwarded user name (README) arrives quoted
        name = (urllib.parse.unquote(headers.get(PERSON_HEADER, "")) or body.user or "").strip()
        if not name or name.lower() == AUTO:
            return None
        for profile in self.access.people(caller):
            if profile.name.casefold() == name.casefold():
                return profile
        if not _asks_to_create(body, headers):
            raise ApiError(404, f"No person named {name!r}. To add them, send the header "
                           f"`X-Confidant-Create-Person: true` (or \"confidant\": {{\"create_person\": true}}).",
                           code="person_not_found", param="user")
        self.access.may_claim(caller, name)
        profile = self.store.add_profile(name)
        self.access.created(caller, profile)
        return profile

    # The turn

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.api_max_request_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        raw = bytearray()
        async for piece in request.stream():
            raw += piece
            if len(raw) > limit:
                raise _too_large(limit)
        return bytes(raw)

    def _answer(self, caller: Caller, body: ChatRequest, headers) -> Response:
        if body.model not in MODELS:
            raise ApiError(404, f"The model {body.model!r} does not exist; use one of {', '.join(MODELS)}.",
                           code="model_not_found", param="model")
        s = self.settings
        asked = read_messages(body.plain_messages(), s.max_message_chars, s.api_system_chars)
        options = TurnOptions(_sampling(s, body), asked.instructions)
        named = _conversation_header(headers)
        person = self._person(caller, body, headers)  # the last check: it may create the person
        allowed = [person.id] if person else [p.id for p in self.access.people(caller)]
        placement = place(self.store, allowed, asked, named)
        if placement.answered is not None:  # a resend of a request already answered
            return self._replay(placement.answered, body.stream)
        turn = Turn(self, asked, person, allowed, placement.session_id, MODELS[body.model], options)
        if body.stream:
            events = turn.sse()
            first = next(events)  # up to the first chunk here: a refusal is still an HTTP error
            return StreamingResponse(_prepend(first, events), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return JSONResponse(turn.whole())

    def _replay(self, exchange: Exchange, stream: bool) -> Response:
        extension = {**_extension(self.store.profile(exchange.profile_id), exchange), "replayed": True}
        model = ANSWERED_BY.get(exchange.route or "local", "confidant-local")
        if not stream:
            return JSONResponse(completion(exchange.id, model, exchange.reply or "", "stop", extension))
        frames = [chunk(exchange.id, model, {"role": "assistant", "content": exchange.reply or ""}),
                  chunk(exchange.id, model, {}, "stop", extension)]
        return StreamingResponse(iter([*map(sse, frames), sse("[DONE]")]), media_type="text/event-stream")


class Turn:
    """One API turn through ``Assistant.turn()``, holding a reply slot while it runs."""

    def __init__(self, endpoint: Endpoint, asked: Asked, person: Profile | None, allowed: list[int],
                 session_id: int | None, mode, options: TurnOptions):
        self.endpoint, self.asked, self.person, self.allowed = endpoint, asked, person, allowed
        self.session_id, self.mode, self.options = session_id, mode, options

    def events(self) -> Iterator:
        """The pipeline's events; ``Unsure`` becomes an error, as there is nobody to ask."""
        endpoint = self.endpoint
        try:
            with endpoint.capacity.slot():
                speaker = self.person.id if self.person else AUTO
                for event in endpoint.assistant.turn(self.asked.text, speaker, self.session_id, self.mode,
                                                     among=self.allowed, options=self.options):
                    if isinstance(event, Unsure):
                        raise _unsure(event)
                    yield event
        except Busy as error:
            raise ApiError(429, str(error), "rate_limit_error", "busy", {"Retry-After": str(error.retry_after)}) from None
        finally:
            native_memory.trim()  # as the browser's turns: give the turn's pages back

    def whole(self) -> dict:
        started, model, pieces = None, "confidant-local", []
        for event in self.events():
            if isinstance(event, Started):
                started = event
            elif isinstance(event, Answering):
                model = ANSWERED_BY[event.route]
            elif isinstance(event, Rerouted):
                pieces.clear()
            elif isinstance(event, Chunk):
                pieces.append(event.text)
            elif isinstance(event, Finished):
                exchange = event.exchange
                return completion(exchange.id, model, exchange.reply or "", self._finish(exchange),
                                  _extension(started.person, exchange))
        raise ApiError(500, "The turn ended without a reply.", "server_error", "no_reply")

    def sse(self) -> Iterator[bytes]:
        started, model, sent_role = None, "confidant-local", False
        try:
            for event in self.events():
                if isinstance(event, Started):
                    started = event
                elif isinstance(event, Answering):
                    model = ANSWERED_BY[event.route]
                    if not sent_role:
                        sent_role = True
                        yield sse(chunk(started.exchange_id, model, {"role": "assistant", "content": ""}, None,
                                        _started_extension(started)))
                elif isinstance(event, Rerouted):  # the cloud failed mid-reply: say so; the local answer follows
                    yield sse(chunk(started.exchange_id, model, {"content": f"\n\n[{event.note}]\n\n"}))
                elif isinstance(event, Chunk):
                    yield sse(chunk(started.exchange_id, model, {"content": event.text}))
                elif isinstance(event, Finished):
                    exchange = event.exchange
                    yield sse(chunk(exchange.id, model, {}, self._finish(exchange), _extension(started.person, exchange)))
        except ConfidantError as error:
            if not sent_role:
                raise  # nothing sent yet: the endpoint answers with the HTTP error
            yield sse(error_body(str(error), "server_error", "turn_failed"))  # the OpenAI client raises this
        yield sse("[DONE]")

    def _finish(self, exchange: Exchange) -> str:
        limit = (self.options.sampling or Sampling.of(self.endpoint.settings)).max_tokens
        return "length" if (exchange.tokens or 0) >= limit else "stop"


def _sampling(settings, body: ChatRequest) -> Sampling:
    return Sampling.within(settings, body.max_completion_tokens or body.max_tokens, body.temperature, body.top_p,
                           body.seed, body.stop)


def _extension(person: Profile, exchange: Exchange) -> dict:
    return {"route": exchange.route, "reason": exchange.route_reason, "note": exchange.route_note,
            "person": person.name, "person_id": person.id, "conversation": exchange.session_id,
            "exchange": exchange.id, "model": exchange.model, "identified": exchange.identify_confidence}


def _started_extension(started: Started) -> dict:
    guess = started.identification
    return {"route": started.route.target, "reason": started.route.reason, "person": started.person.name,
            "person_id": started.person.id, "conversation": started.session.id, "exchange": started.exchange_id,
            "identified": guess.confidence if guess else None}


def _unsure(event: Unsure) -> ApiError:
    guesses = ", ".join(f"{p.name} {c:.0%}" for p, c in event.identification.candidates) or "nobody is known yet"
    return ApiError(400, f"Not sure who is speaking ({guesses}). Name the person in `user` or the "
                    "X-Confidant-Person header.", code="person_unsure", param="user")


def _asks_to_create(body: ChatRequest, headers) -> bool:
    return headers.get(CREATE_HEADER, "").strip().lower() in ("1", "true", "yes") or \
        bool((body.confidant or {}).get("create_person"))


def _conversation_header(headers) -> int | None:
    value = headers.get(CONVERSATION_HEADER, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ApiError(400, "X-Confidant-Conversation must be a conversation number.", code="invalid_conversation")
    return int(value)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request is larger than {limit:,} bytes (setting api_max_request_bytes).",
                    code="request_too_large")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _error_response(error: ConfidantError) -> JSONResponse:
    if isinstance(error, ApiError):
        status, type_, code, headers, param = error.status, error.type, error.code, error.headers, error.param
    else:
        status, code = next((found for kind, found in STATUS.items() if isinstance(error, kind)), (503, "unavailable"))
        type_ = "invalid_request_error" if status < 500 else "server_error"
        headers, param = {}, None
    return JSONResponse(error_body(str(error), type_, code, param), status_code=status, headers=headers)
