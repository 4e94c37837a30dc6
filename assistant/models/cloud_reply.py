"""One cloud reply on the wire: read by a thread, handed over with exact deadlines.

Contract:
- ``Reply(client, body)`` sends one streaming chat-completions request; ``texts(first_deadline,
  deadline, settings)`` yields its text and raises ``CloudError`` on a timeout, a cut-off or
  malformed stream, or an HTTP error; ``Transient`` (a ``CloudError``) marks failures before the
  first text that another attempt may not have (429, 408, 5xx, connection errors).
- ``cancel()`` abandons it: the reader thread stops at the next bytes it receives, or at the
  client's read timeout if none come. Build the client with ``CancellableTransport``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import httpx2
import openai

from assistant.errors import CloudError
from assistant.settings import Settings


class Transient(CloudError):
    """A failure before the first text that another attempt may not have (429, 5xx, connection)."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


class Reply:
    """One request, read by a daemon thread while the caller waits on a queue with deadlines.

    Why a thread: httpx's read timeout bounds each read, not the reply, so a server sending a byte
    now and then could hold a plain loop forever. The caller's deadlines are exact; the thread is
    stopped by ``cancel()`` at its next received bytes (or by the read timeout if none come).
    """

    def __init__(self, client: openai.OpenAI, body: dict):
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._cancel = threading.Event()
        threading.Thread(target=self._read, args=(client, body), daemon=True, name="cloud-reply").start()

    def cancel(self) -> None:
        self._cancel.set()

    def _read(self, client: openai.OpenAI, body: dict) -> None:
        _thread.cancel = self._cancel
        try:
            with client.chat.completions.create(**body) as stream:
                for chunk in stream:
                    if self._cancel.is_set():
                        return
                    for choice in chunk.choices or []:  # usage-only chunks have no choices
                        if choice.delta is not None and choice.delta.content:
                            self._events.put(("text", choice.delta.content))
                        if choice.finish_reason:
                            self._events.put(("finish", choice.finish_reason))
            self._events.put(("end", None))
        except Exception as error:  # handed to the caller, who turns it into a CloudError
            self._events.put(("error", error))

    def texts(self, first_deadline: float, deadline: float, s: Settings) -> Iterator[str]:
        started = finished = False
        while True:
            limit = deadline if started else first_deadline
            left = limit - time.monotonic()
            try:
                if left <= 0:
                    raise queue.Empty
                kind, value = self._events.get(timeout=left)
            except queue.Empty:
                if limit == deadline:
                    raise CloudError(f"the cloud reply took longer than {s.cloud_total_timeout:g} s") from None
                raise CloudError(
                    f"the cloud model sent nothing within {s.cloud_first_token_timeout:g} s") from None
            if kind == "text":
                started = True
                yield value
            elif kind == "finish":
                finished = True
            elif kind == "error":
                raise describe(value, retryable=not started) from None
            elif not finished:  # the stream ended without saying it was complete
                raise CloudError("the cloud reply was cut off before it finished")
            else:
                return


def describe(error: Exception, retryable: bool) -> CloudError:
    if isinstance(error, openai.APIStatusError):
        code = error.status_code
        if retryable and (code in (408, 429) or code >= 500):
            return Transient(f"the cloud model failed: {status_message(error)}", _retry_after(error))
        return CloudError(f"the cloud model failed: {status_message(error)}")
    if isinstance(error, openai.APITimeoutError):  # already spent a full timeout: not worth repeating
        return CloudError("the cloud model stopped answering (timed out)")
    if isinstance(error, openai.APIConnectionError):
        message = f"lost the connection to the cloud model: {error.__cause__ or error}"
        return Transient(message) if retryable else CloudError(message)
    if isinstance(error, openai.APIError):  # an error event inside the stream
        return CloudError(f"the cloud model reported an error: {error.message}")
    return CloudError(f"the cloud model sent a malformed reply ({type(error).__name__}: {error})")


def status_message(error: openai.APIStatusError) -> str:
    hints = {401: "the API key was refused", 403: "the API key may not use this model",
             404: "no such model or endpoint"}
    return f"HTTP {error.status_code}" + (f" ({hints[error.status_code]})" if error.status_code in hints else "")


def _retry_after(error: openai.APIStatusError) -> float:
    try:
        return max(0.0, float(error.response.headers.get("retry-after", 0)))
    except ValueError:  # an HTTP date; the exponential backoff will do
        return 0.0


_thread = threading.local()  # the cancel flag of the reply the current thread is reading


class CancellableTransport(httpx2.HTTPTransport):
    """Lets a cancelled reply's reader thread stop at the next bytes it receives."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        cancel = getattr(_thread, "cancel", None)
        if cancel is not None:
            response.stream = _CancellableStream(response.stream, cancel)
        return response


class _CancellableStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, cancel: threading.Event):
        self._inner, self._cancel = inner, cancel

    def __iter__(self) -> Iterator[bytes]:
        for part in self._inner:
            if self._cancel.is_set():
                raise httpx2.ReadError("the reply was abandoned")
            yield part

    def close(self) -> None:
        self._inner.close()
