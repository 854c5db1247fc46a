"""Serve recorded LLM provider HTTP exchanges from a real HTTP server on 127.0.0.1.

The official SDKs (``openai``, ``anthropic``, raw ``httpx``/``httpx2``) are pointed at :attr:`ReplayServer.url`
with ``base_url`` and receive the recorded bodies byte for byte. Streaming bodies are sent as HTTP/1.1
chunks, one server-sent event per chunk, with a delay before the first chunk and between chunks so time to
first chunk is measurable.

Matching is explicit: the test queues the recordings it expects (:meth:`ReplayServer.expect`), and a request
is served the first queued recording with the same method and path (the query string is ignored). A request
that matches nothing gets status 599 with a body that says so, and is kept in
:attr:`ReplayServer.unmatched`; the pytest fixture fails the test on teardown when that list is not empty.

Usage::

    with ReplayServer() as server:
        server.expect(load_recording("tests/fixtures/llm-http/openai__chat-completions__nostream__chat__i1.json"))
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0)
        client.chat.completions.create(...)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

UNMATCHED_STATUS = 599
"""Status sent for a request no queued recording matches (a 599-style error no provider uses)."""


@dataclass(frozen=True)
class Recording:
    """One recorded exchange. ``raw`` is the whole file, provenance fields included."""

    name: str
    provider: str
    api: str
    streaming: bool
    method: str
    host: str
    path: str
    request_body: Any
    status: int
    content_type: str
    body: str
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def route(self) -> str:
        """The request path without its query string."""
        return urlsplit(self.path).path

    @property
    def json(self) -> Any:
        """The response body decoded as JSON (non-streaming recordings)."""
        return json.loads(self.body)

    def events(self) -> list[str]:
        """The response body split into the pieces sent as separate chunks.

        Server-sent events are split at their blank-line boundaries; other bodies are sent whole.
        """
        if "event-stream" not in self.content_type:
            return [self.body]
        parts = [p for p in self.body.split("\n\n") if p.strip()]
        return [p + "\n\n" for p in parts]


def load_recording(path: str | Path) -> Recording:
    p = Path(path)
    raw = json.loads(p.read_text(encoding="utf-8"))
    req, resp = raw["request"], raw["response"]
    headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
    return Recording(
        name=p.stem,
        provider=raw.get("provider", ""),
        api=raw.get("api", ""),
        streaming=bool(raw.get("streaming")),
        method=req["method"].upper(),
        host=req.get("host", ""),
        path=req["path"],
        request_body=req.get("body"),
        status=int(resp["status"]),
        content_type=headers.get("content-type", "application/json"),
        body=resp["body"] if isinstance(resp["body"], str) else json.dumps(resp["body"]),
        raw=raw,
    )


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class UnmatchedRequest:
    method: str
    path: str
    reason: str


class ReplayServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (ephemeral port) that replays queued recordings."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        first_chunk_delay: float = 0.02,
        chunk_delay: float = 0.002,
    ) -> None:
        self.first_chunk_delay = first_chunk_delay
        self.chunk_delay = chunk_delay
        self._lock = threading.Lock()
        self._queue: deque[Recording] = deque()
        self._always: dict[tuple[str, str], Recording] = {}
        self.requests: list[ReceivedRequest] = []
        self.unmatched: list[UnmatchedRequest] = []
        self._httpd = _QuietServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReplayServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="replay-server", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- what to serve --------------------------------------------------------------------------
    def expect(self, *recordings: Recording) -> None:
        """Queue recordings; each is served once, in order, to the first request with its method and path."""
        with self._lock:
            self._queue.extend(recordings)

    def always(self, recording: Recording) -> None:
        """Serve ``recording`` to every request with its method and path (benchmarks, the demo)."""
        with self._lock:
            self._always[(recording.method, recording.route)] = recording

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._always.clear()
            self.requests.clear()
            self.unmatched.clear()

    @property
    def pending(self) -> list[Recording]:
        """Queued recordings no request has consumed yet."""
        with self._lock:
            return list(self._queue)

    def _match(self, method: str, path: str) -> Recording | None:
        route = urlsplit(path).path
        with self._lock:
            for i, rec in enumerate(self._queue):
                if rec.method == method and rec.route == route:
                    del self._queue[i]
                    return rec
            return self._always.get((method, route))

    def _record(self, req: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _miss(self, miss: UnmatchedRequest) -> None:
        with self._lock:
            self.unmatched.append(miss)

    def chunks(self, recording: Recording) -> Iterator[bytes]:
        for piece in recording.events():
            yield piece.encode("utf-8")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its keep-alive connection (an abandoned stream, a closed SDK client) is a
        # normal test case, not an error worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def _make_handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _read_body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._read_body()
            method = self.command.upper()
            server._record(ReceivedRequest(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            rec = server._match(method, self.path)
            if rec is None:
                reason = f"spyglass replay: no recording queued for {method} {urlsplit(self.path).path}"
                server._miss(UnmatchedRequest(method, self.path, reason))
                payload = json.dumps({"error": {"message": reason, "type": "replay_unmatched"}}).encode()
                self.send_response(UNMATCHED_STATUS, "Unmatched Replay Request")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if rec.streaming and rec.status < 400:
                self._stream(rec)
            else:
                payload = rec.body.encode("utf-8")
                self.send_response(rec.status)
                self.send_header("content-type", rec.content_type)
                self.send_header("content-length", str(len(payload)))
                self.send_header("x-request-id", f"req_replay_{rec.name[-40:]}")
                self.end_headers()
                self.wfile.write(payload)

        def _stream(self, rec: Recording) -> None:
            self.send_response(rec.status)
            self.send_header("content-type", rec.content_type)
            self.send_header("transfer-encoding", "chunked")
            self.send_header("cache-control", "no-cache")
            self.end_headers()
            self.wfile.flush()
            delay = server.first_chunk_delay
            try:
                for chunk in server.chunks(rec):
                    if delay:
                        time.sleep(delay)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                    delay = server.chunk_delay
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The client stopped reading (an early break or close): that is a legitimate test case.
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    return Handler
