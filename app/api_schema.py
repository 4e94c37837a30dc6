"""The OpenAI wire format of Confidant's endpoint: what a request may say, and the bodies sent back.

Contract:
- ``parse_request(raw)`` turns a request body (bytes) into a ``ChatRequest``, or raises
  ``ApiError`` with the status and the OpenAI error ``type``/``code``: not UTF-8 or not JSON,
  missing or malformed ``messages``, content that is not text, features Confidant does not have
  (``n`` > 1, tools, logprobs, a structured ``response_format``). Fields it has no use for
  (``frequency_penalty``, ``stream_options``, …) are accepted and ignored, as OpenAI clients send them.
- ``error_body``, ``completion``, ``chunk`` and ``models`` build the JSON bodies; ``sse`` frames one
  server-sent event. The ``confidant`` field of a reply is Confidant's own: route, reason, person,
  conversation and exchange.
"""

from __future__ import annotations

import json
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.errors import ConfidantError

MODELS = {  # model id -> the cloud mode its turns use (None: the settings' own)
    "confidant": None,
    "confidant-local": "off",
    "confidant-cloud": "always",
}
ANSWERED_BY = {"local": "confidant-local", "cloud": "confidant-cloud"}


class ApiError(ConfidantError):
    """A request the endpoint refuses: its HTTP status and OpenAI error ``type`` and ``code``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str = "invalid_request",
                 headers: dict | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.type, self.code, self.headers, self.param = status, type_, code, headers or {}, param


class Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        if any(part.type != "text" or part.text is None for part in self.content):
            raise ApiError(400, "Only text content is supported (no images, audio or files).", code="unsupported_content")
        return "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    n: int | None = None
    tools: list | None = None
    functions: list | None = None
    logprobs: bool | None = None
    response_format: dict | None = None
    confidant: dict | None = None  # Confidant's own options, e.g. {"create_person": true}

    def plain_messages(self) -> list[dict]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


def parse_request(raw: bytes) -> ChatRequest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not UTF-8 text; send JSON.", code="invalid_json") from None
    except ValueError as error:
        raise ApiError(400, f"The request body is not valid JSON ({error}).", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        param = str(first["loc"][0]) if first["loc"] else None
        code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
        raise ApiError(400, f"{where}: {first['msg']}", code=code, param=param) from None
    _refuse_unsupported(request)
    return request


def _refuse_unsupported(request: ChatRequest) -> None:
    if request.n not in (None, 1):
        raise ApiError(400, "n: Confidant writes one reply per request (n must be 1).", code="unsupported_parameter")
    if request.tools or request.functions:
        raise ApiError(400, "tools: Confidant does not call tools or functions.", code="unsupported_parameter")
    if request.logprobs:
        raise ApiError(400, "logprobs: Confidant does not return log-probabilities.", code="unsupported_parameter")
    if request.response_format and request.response_format.get("type", "text") != "text":
        raise ApiError(400, "response_format: only plain text replies are supported.", code="unsupported_parameter")


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def models(created: int) -> dict:
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "confidant"}
                                       for name in MODELS]}


def completion(exchange_id: int, model: str, text: str, finish: str, extension: dict) -> dict:
    return {
        "id": f"chatcmpl-confidant-{exchange_id}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                     "logprobs": None}],
        "confidant": extension,
    }


def chunk(exchange_id: int, model: str, delta: dict, finish: str | None = None, extension: dict | None = None) -> dict:
    body = {
        "id": f"chatcmpl-confidant-{exchange_id}", "object": "chat.completion.chunk", "created": int(time.time()),
        "model": model, "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if extension is not None:
        body["confidant"] = extension
    return body


def sse(data: dict | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode("utf-8")
