"""A fault-injecting OpenAI-compatible server on 127.0.0.1 for the cloud backend's tests.

``FaultServer`` answers ``POST /v1/chat/completions`` following ``script``: each request takes
the next behaviour (the last one repeats). It records every request (path, headers, JSON body).
Behaviours: ok, 500, 429, hang (nothing at all), drop (two chunks, then the socket closes),
malformed (an SSE event that is not JSON), error_event (a chunk, then an error inside the stream),
trickle (SSE comments, a byte at a time, no text), slow (a token every 0.4 s, forever),
echo (streams back the last user message, to test placeholder restoration) and proxy (forwards
to ``upstream``, a real server, and streams its answer back: a recording man in the middle).
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ["Hello", " from", " the", " fault", " server", "."]


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fault",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FaultServer"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.record(self, None)
        self._json(200, {"object": "list", "data": [{"id": "fault", "object": "model", "created": 0,
                                                     "owned_by": "tests"}]})

    def do_POST(self):
        self._raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.loads(self._raw or b"{}")
        behaviour = self.server.record(self, body)
        getattr(self, f"_{behaviour}")()

    def _json(self, status: int, payload: dict, headers: dict | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json", "content-length": str(len(data)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _send(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _ok(self):
        self._start_stream()
        self._send(b'data: {"id":"c1","object":"chat.completion.chunk","created":0,"model":"fault",'
                   b'"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}\n\n')
        for word in WORDS:
            self._send(chunk(word))
        self._send(chunk(finish="stop"))
        self._send(b"data: [DONE]\n\n")
        self._end()

    def _echo(self):
        said = [m["content"] for m in self.server.requests[-1]["body"]["messages"] if m["role"] == "user"][-1]
        self._start_stream()
        for start in range(0, len(said), 7):  # small pieces: placeholders get cut across chunks
            self._send(chunk(said[start: start + 7]))
        self._send(chunk(finish="stop") + b"data: [DONE]\n\n")
        self._end()

    def _proxy(self):
        upstream = urllib.parse.urlsplit(self.server.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        connection.request("POST", upstream.path.rstrip("/") + self.path.removeprefix("/v1"), body=self._raw, headers=headers)
        response = connection.getresponse()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        while data := response.read1(65536):
            self._send(data)
        self._end()
        connection.close()

    def _500(self):
        self._json(500, {"error": {"message": "boom", "type": "server_error"}})

    def _429(self):
        self._json(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "0"})

    def _hang(self):
        self.server.stopping.wait(60)

    def _drop(self):
        self._start_stream()
        self._send(chunk(WORDS[0]) + chunk(WORDS[1]))
        self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: the body is incomplete
        self.close_connection = True

    def _malformed(self):
        self._start_stream()
        self._send(b"data: {this is not json\n\n")
        self._send(chunk(finish="stop") + b"data: [DONE]\n\n")
        self._end()

    def _error_event(self):
        self._start_stream()
        self._send(chunk(WORDS[0]) + b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
        self._end()

    def _trickle(self):
        self._start_stream()
        while not self.server.stopping.wait(0.2):
            self._send(b":")  # an SSE comment that never ends: bytes arrive, no text ever does

    def _slow(self):
        self._start_stream()
        while not self.server.stopping.wait(0.4):
            self._send(chunk("tick "))


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[str], upstream: str | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.upstream = upstream  # the real server behind "proxy"
        self.requests: list[dict] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # the client hanging up is expected here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def completions(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def record(self, handler: _Handler, body: dict | None) -> str:
        with self._lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body})
            if body is None:
                return "models"
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def close(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()
