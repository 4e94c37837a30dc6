"""The cloud chat model: any OpenAI-compatible chat-completions endpoint, through ``openai``.

Contract:
- ``CloudModel(settings).stream(messages)`` yields the reply as text chunks, or raises
  ``CloudError`` (``CloudUnavailable`` while the circuit breaker is open, before anything is sent).
- 429, 5xx and connection errors are retried (``cloud_max_retries`` times, with backoff) only
  until the first text arrives; after that a failure is final, so retried text is never duplicated.
- No reply outlives its bounds: the first text must come within ``cloud_first_token_timeout``
  and the whole reply, retries included, within ``cloud_total_timeout``, however the server
  trickles its bytes. A reply that ends without a finish reason counts as cut off.
- ``messages`` are sent as given: redact them first (``assistant.models.privacy``).
- ``check(settings)`` reports what the endpoint does (for ``confidant cloud test``) and does
  not raise for ordinary failures.
"""

from __future__ import annotations

import time
from typing import Iterator

import httpx2
import openai
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from assistant.models.breaker import CircuitBreaker, shared_breaker
from assistant.models.cloud_reply import CancellableTransport, Reply, Transient, status_message
from assistant.errors import CloudError
from assistant.settings import Settings
from assistant.turn_options import Sampling

Message = dict  # {"role": ..., "content": str}
# The client describes this machine (OS, CPU, Python) to the endpoint by default; it needn't know.
_FINGERPRINT_HEADERS = ("x-stainless-os", "x-stainless-arch", "x-stainless-runtime",
                        "x-stainless-runtime-version", "x-stainless-lang", "x-stainless-package-version")


class CloudModel:
    def __init__(self, settings: Settings, breaker: CircuitBreaker | None = None):
        if not settings.cloud_configured:
            raise CloudError("no cloud model is configured: set cloud_base_url and cloud_model")
        s = self.settings = settings
        self.name = s.cloud_model
        self.breaker = breaker or shared_breaker(
            (s.cloud_base_url, s.cloud_model), s.cloud_breaker_failures, s.cloud_breaker_cooldown
        )
        timeout = httpx2.Timeout(connect=s.cloud_connect_timeout, read=s.cloud_first_token_timeout,
                                 write=s.cloud_first_token_timeout, pool=s.cloud_connect_timeout)
        self._client = openai.OpenAI(
            base_url=s.cloud_base_url,
            api_key=s.cloud_api_key or "none",  # local servers need no key; the client insists on one
            max_retries=0,  # tenacity retries, and only before the first text
            timeout=timeout,
            http_client=httpx2.Client(transport=CancellableTransport(), timeout=timeout),
            default_headers={name: openai.Omit() for name in _FINGERPRINT_HEADERS},
        )

    def request_body(self, messages: list[Message], max_tokens: int | None = None,
                     sampling: Sampling | None = None) -> dict:
        """The exact JSON body sent for ``messages`` (log this, never the unredacted messages)."""
        s = self.settings
        body = {"model": s.cloud_model, "messages": messages, "stream": True,
                "max_tokens": max_tokens or s.max_tokens, "temperature": s.temperature, "top_p": s.top_p}
        if sampling is not None:  # a caller's overrides (the API's), already within the settings' bounds
            body.update(max_tokens=max_tokens or sampling.max_tokens, temperature=sampling.temperature,
                        top_p=sampling.top_p)
            body.update({k: v for k, v in (("stop", list(sampling.stop)), ("seed", sampling.seed)) if v not in ([], -1)})
        return body

    def stream(self, messages: list[Message], sampling: Sampling | None = None) -> Iterator[str]:
        """Yield the reply to ``messages`` chunk by chunk; raises ``CloudError``."""
        self.breaker.acquire()
        verdict = None
        try:
            yield from self._stream(self.request_body(messages, sampling=sampling))
            verdict = True
        except CloudError:
            verdict = False
            raise
        finally:  # a consumer that stops reading early is neither a success nor a failure
            {True: self.breaker.success, False: self.breaker.failure}.get(verdict, self.breaker.release)()

    def _stream(self, body: dict) -> Iterator[str]:
        deadline = time.monotonic() + self.settings.cloud_total_timeout
        reply, texts, first = self._open(body, deadline)
        try:
            if first is not None:
                yield first
                yield from texts
        finally:
            texts.close()
            reply.cancel()

    def _open(self, body: dict, deadline: float) -> tuple["Reply", Iterator[str], str | None]:
        """Send the request until the first text arrives, retrying transient failures."""
        backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)
        retrying = Retrying(
            retry=retry_if_exception_type(Transient),
            wait=lambda state: max(backoff(state), min(state.outcome.exception().retry_after, 10.0)),
            # never sleep past the total deadline: give up with the last error instead
            stop=stop_after_attempt(self.settings.cloud_max_retries + 1)
            | (lambda state: time.monotonic() + state.upcoming_sleep >= deadline),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    first_deadline = min(deadline, time.monotonic() + self.settings.cloud_first_token_timeout)
                    reply = Reply(self._client, body)
                    texts = reply.texts(first_deadline, deadline, self.settings)
                    try:
                        return reply, texts, next(texts, None)
                    except BaseException:
                        reply.cancel()
                        raise
        except Transient as error:
            tries = retrying.statistics.get("attempt_number", 1)
            raise CloudError(f"{error} ({tries} attempt{'s' if tries > 1 else ''})") from None
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def check(self) -> dict:
        """What the endpoint does: reachable, models listed, a tiny completion, latencies."""
        s = self.settings
        found = {"endpoint": s.cloud_base_url, "model": s.cloud_model, "api_key": bool(s.cloud_api_key),
                 "reachable": False, "models": None, "model_listed": None, "list_ms": None, "reply": None,
                 "first_token_ms": None, "total_ms": None, "problems": []}
        start = time.monotonic()
        try:
            found["models"] = [m.id for m in self._client.models.list()]
            found["reachable"], found["list_ms"] = True, round((time.monotonic() - start) * 1000)
            found["model_listed"] = s.cloud_model in found["models"]
            if not found["model_listed"]:
                found["problems"].append(f"the model '{s.cloud_model}' is not among the models the endpoint lists")
        except openai.APIStatusError as error:
            found["reachable"] = True  # it answered, just not with a model list (some servers don't)
            found["problems"].append(f"listing models: {status_message(error)}")
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as error:
            found["problems"].append(f"listing models: {error}")
        start, pieces = time.monotonic(), []
        try:
            for piece in self._stream(self.request_body([{"role": "user", "content": "Say OK."}], 8)):
                found["first_token_ms"] = found["first_token_ms"] or round((time.monotonic() - start) * 1000)
                pieces.append(piece)
            found["reply"] = "".join(pieces)
            found["total_ms"] = round((time.monotonic() - start) * 1000)
            found["reachable"] = True
        except CloudError as error:
            found["problems"].append(f"tiny completion: {error}")
        found["ok"] = found["reply"] is not None and not found["problems"]  # a problem is not OK
        return found


def check(settings: Settings) -> dict:
    """``CloudModel.check()``, or what is missing when no cloud model is configured."""
    try:
        return CloudModel(settings).check()
    except CloudError as error:
        return {"ok": False, "endpoint": settings.cloud_base_url, "model": settings.cloud_model,
                "problems": [str(error)]}


def describe_check(found: dict) -> str:
    """``check()``'s findings as a few lines for the terminal."""
    lines = [f"endpoint: {found.get('endpoint') or '(not set)'}   model: {found.get('model') or '(not set)'}"]
    if found.get("models") is not None:
        lines.append(f"models listed: {', '.join(found['models']) or '(none)'}")
    if found.get("reply") is not None:
        lines.append(f"tiny completion: {found['reply'].strip()!r} (first text after {found['first_token_ms']} ms, "
                     f"done in {found['total_ms']} ms)")
    lines += [f"problem: {problem}" for problem in found.get("problems", [])]
    lines.append("cloud OK" if found.get("ok") else "cloud NOT usable")
    return "\n".join(lines)
