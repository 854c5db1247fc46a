"""HTTP-level LLM instrumentation for ``httpx`` and ``httpx2``: raw calls to LLM APIs become GenAI spans.

Usage::

    from spyglass.instrumentation import HttpxInstrumentor

    HttpxInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    httpx.post("https://api.groq.com/openai/v1/chat/completions", json={...})   # -> span "chat llama-3..."

    # hosts Spyglass cannot know (a vLLM server, a gateway): name their provider
    HttpxInstrumentor().instrument(providers={"gpu-box:8000": "vllm"})   # or OTEL_SPYGLASS_HTTPX_PROVIDERS

Also loaded by ``opentelemetry-instrument`` through the ``spyglass_httpx`` entry point.

What is recognised (any host; ``POST`` only): OpenAI-style ``.../chat/completions``, ``.../completions``,
``.../embeddings``, ``.../responses`` (OpenAI, Azure OpenAI ``/openai/deployments/{name}/...``, Groq, DeepSeek,
Mistral, OpenRouter, Ollama and vLLM OpenAI-compatible servers...), Anthropic ``/v1/messages`` and
``/v1/complete``, Gemini and Vertex AI ``:generateContent``, ``:streamGenerateContent``, ``:embedContent``,
``:batchEmbedContents``, Cohere ``/v2/chat`` and ``/v2/embed``. The provider comes from the ``Host`` the
request is sent to (``providers=`` first, then the shared table in ``_providers``; port 11434 is Ollama);
an unknown host gets the API family's provider (``openai`` for OpenAI-style paths).

How it hooks in: ``Client._send_single_request`` / ``AsyncClient._send_single_request`` of both libraries,
one level above the transport. The span starts before the request is sent and is current while it is,
and the response's byte stream is wrapped: the bytes the application reads pass through unchanged while a
copy is parsed (JSON, or server-sent events: held per read, then split and decoded in batches), so nothing is read
on the application's behalf and the span ends when the body is fully read, the response is closed, or the
read fails.

Composition:

- **Under an SDK span** (``openai``/``anthropic`` instrumented by Spyglass): the SDK instrumentor marks the
  context (:data:`~spyglass.instrumentation._telemetry.LLM_SPAN_KEY`) and this instrumentor adds nothing,
  so one call is one LLM span. The same holds for any other Spyglass LLM span (DSPy/litellm).
- **With ``opentelemetry-instrumentation-httpx``** (httpx and httpx2): it patches the transport, below the seam used
  here, so its plain ``POST`` client span is always a child of the LLM span, whichever was instrumented
  first. The trace context it injects names that HTTP span. Nothing is suppressed.
- Suppressed instrumentation (``suppress_instrumentation()``, as exporters use) is honoured.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
import zlib
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from itertools import accumulate, repeat
from typing import Any, TypeVar

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from spyglass.semconv import extensions as ext
from spyglass.semconv.environment import OTEL_SPYGLASS_HTTPX_PROVIDERS
from spyglass.semconv.values import ProviderName

from . import _httpx_formats as f
from ._config import load_settings
from ._context import install_context_processor
from ._providers import provider_for_host
from ._stream import ABANDONED, StreamRecorder
from ._telemetry import LLMInvocation, LLMTelemetry, llm_span_active, log_once

__all__ = ["HttpxInstrumentor", "Route", "match_route"]

logger = logging.getLogger(__name__)

_MODULES = ("httpx", "httpx2")
_MAX_BODY = 16 * 1024 * 1024
"""Largest JSON response body parsed (bytes); a bigger one is passed through and not parsed."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_KEPT = 256
"""URL paths, ``Host`` headers and servers whose route, host and port, and provider are kept per instrumentor."""
_UNDECODABLE: Any = object()
_UNSEEN: Any = object()
K = TypeVar("K")
V = TypeVar("V")
_perf = time.perf_counter

try:  # optional (the ``speedups`` extra): parses request and response bodies about 4x faster than json
    import orjson as _orjson
except ImportError:
    _orjson = None  # type: ignore[assignment]


def loads(data: bytes) -> Any:
    """``json.loads(data)``: through ``orjson`` when installed; what orjson refuses (NaN, lone surrogates,
    invalid UTF-8...) goes to ``json``, so the result and the errors are ``json``'s, except that orjson reads
    an integer past 64 bits as the nearest float (no token count or parameter comes near one)."""
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except ValueError:
            pass
    return json.loads(data)


class Route:
    """A recognised LLM API request: its wire format, model from the path, streaming from the path."""

    __slots__ = ("fmt", "path_model", "stream_path")

    def __init__(self, fmt: f.Format, path_model: str | None = None, stream_path: bool = False) -> None:
        self.fmt = fmt
        self.path_model = path_model
        self.stream_path = stream_path


def _segment_after(path: str, marker: str) -> str | None:
    i = path.find(marker)
    if i < 0:
        return None
    rest = path[i + len(marker) :]
    return rest.split("/", 1)[0].split(":", 1)[0] or None


def match_route(method: str, path: str) -> Route | None:
    """The LLM API a request goes to, from its method and URL path (query excluded); ``None`` if not one."""
    if method != "POST":
        return None
    if ":" in path:
        model = _segment_after(path, "/models/")
        if path.endswith(":streamGenerateContent"):
            return Route(f.GEMINI_GENERATE, model, True)
        if path.endswith(":generateContent"):
            return Route(f.GEMINI_GENERATE, model)
        if path.endswith((":embedContent", ":batchEmbedContents")):
            return Route(f.GEMINI_EMBED, model)
    deployment = _segment_after(path, "/openai/deployments/")  # Azure: the deployment stands in for the model
    if path.endswith("/chat/completions"):
        return Route(f.OPENAI_CHAT, deployment)
    if path.endswith("/completions"):
        return Route(f.OPENAI_COMPLETIONS, deployment)
    if path.endswith("/embeddings"):
        return Route(f.OPENAI_EMBEDDINGS, deployment)
    if path.endswith("/responses"):
        return Route(f.OPENAI_RESPONSES, deployment)
    if path.endswith("/v1/messages"):
        return Route(f.ANTHROPIC_MESSAGES)
    if path.endswith("/v1/complete"):
        return Route(f.ANTHROPIC_COMPLETE)
    if path.endswith("/v2/chat"):
        return Route(f.COHERE_CHAT)
    if path.endswith("/v2/embed"):
        return Route(f.COHERE_EMBED)
    return None


_FAMILY_PROVIDER = {
    "openai": ProviderName.OPENAI.value,
    "anthropic": ProviderName.ANTHROPIC.value,
    "gemini": ProviderName.GCP_GEMINI.value,
    "cohere": ProviderName.COHERE.value,
}


def _keep(cache: dict[K, V], key: K, value: V) -> V:
    """``cache[key] = value`` in one of the per-instrumentor caches, emptied when it holds :data:`_KEPT`."""
    if len(cache) >= _KEPT:
        cache.clear()
    cache[key] = value
    return value


def _host_header(header: str) -> tuple[str | None, int | None]:
    """A ``Host`` header's host and port (``None`` when it names none)."""
    if header.startswith("["):  # IPv6 literal
        host, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = header.partition(":")
    return host or None, int(port) if port.isdigit() else None


def _server(request: Any, seen: dict[str, tuple[str | None, int | None]]) -> tuple[str | None, int | None]:
    """Host and port the request is addressed to: the ``Host`` header (what the server sees), else the URL.
    ``seen`` keeps the headers already read (an application talks to a handful of hosts)."""
    url = request.url
    header = request.headers.get("host")
    if header:
        parsed = seen.get(header)
        if parsed is None:
            parsed = _keep(seen, header, _host_header(header))
        host, port = parsed
        return host, port if port is not None else _DEFAULT_PORTS.get(url.scheme)
    return (url.host or None), (url.port or _DEFAULT_PORTS.get(url.scheme))


def _decode_one(decoder: json.JSONDecoder, text: str) -> Any:
    """``decoder.decode(text)``, calling the decoder's C scanner directly for the usual event (a JSON value
    from the first character): ``decode`` adds two regex matches and two Python calls per event. Anything
    else (leading whitespace, an error) goes through ``decode``, so results and errors are ``json``'s."""
    try:
        # ``scan_once`` is what ``JSONDecoder.__init__`` builds and ``raw_decode`` calls (not in typeshed).
        value, end = decoder.scan_once(text, 0)  # type: ignore[attr-defined]
    except StopIteration:
        return decoder.decode(text)
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return decoder.decode(text)  # raises "Extra data", as json does
    return value


_EVENTS = json.JSONDecoder()
"""Event data that ``orjson`` refuses (or all of it, without orjson): decoded by ``json``, as one value each."""


def _event(block: bytes) -> tuple[str, bytes] | None:
    """One server-sent event's name (``""`` if none) and raw data; ``None`` without data or for ``[DONE]``."""
    if block.startswith(b"data:") and b"\n" not in block:
        event, data = "", block[5:].lstrip(b" ")  # the usual event: one data line, no name
    else:
        event, data_lines = "", []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data_lines.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
        if not data_lines:
            return None
        data = b"\n".join(data_lines)
    if data == b"[DONE]":
        return None
    return event, data


def _decode(data: bytes) -> Any:
    """One event's data as JSON (as :func:`loads` reads it, undecodable UTF-8 replaced), :data:`_UNDECODABLE`
    if it is not exactly one JSON value. Each event on its own, so no value moves to another event."""
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except ValueError:
            pass
    try:
        return _decode_one(_EVENTS, data.decode("utf-8", "replace"))
    except ValueError:
        return _UNDECODABLE


def _ends_event(read: bytes) -> bool:
    return read.endswith(b"\n\n")


_BATCH_READS = 64
"""Event-stream reads held, unparsed, before they are split into events, decoded and accumulated as a batch..."""
_BATCH_BYTES = 64 * 1024
"""... or bytes held, whichever comes first: what a long stream holds back stays bounded."""


class _Parser:
    """Decodes the response bytes the application reads and turns them into the invocation's response."""

    __slots__ = (
        "_buffer",
        "_decoder",
        "_ended",
        "_held",
        "_pending",
        "_read_times",
        "_reads",
        "_size",
        "broken",
        "content",
        "error_type",
        "fmt",
        "inv",
        "recorder",
        "route",
        "span",
        "sse",
        "tel",
    )

    def __init__(
        self,
        tel: LLMTelemetry,
        inv: LLMInvocation,
        span: Any,
        route: Route,
        content: bool,
        error_type: str | None,
        sse: bool,
    ) -> None:
        self.tel = tel
        self.inv = inv
        self.span = span
        self.route = route
        self.fmt = route.fmt
        self.content = content
        self.error_type = error_type
        self.sse = sse
        self.recorder: StreamRecorder | None = None
        if sse:
            self.recorder = StreamRecorder(tel, inv, span, self.fmt.stream(inv) if self.fmt.stream else None)
        self._buffer: list[bytes] = []  # joined once at the end (a single in-memory body is not copied)
        self._pending = b""
        """Event-stream bytes after the last complete event (events are split as bytes: a blank line never
        falls inside a UTF-8 character, so each complete event decodes on its own)."""
        self._reads: list[bytes] = []
        self._read_times: list[float] = []
        """Event-stream reads not looked at yet, and the ``perf_counter()`` at each (see :meth:`_flush`)."""
        self._held = 0
        self._size = 0
        self._ended = False
        self.broken = False
        self._decoder: Any = None

    def whole(self, body: bytes) -> None:
        """An event stream the transport handed over already read: all of it is one read, now."""
        self._reads.append(body)
        self._read_times.append(_perf())
        self.end()

    def on_wire(self, response: Any) -> None:
        """A body still to be read: decompressed here when the response says it is compressed."""
        # get_list: no KeyError raised and caught when the header is absent (the usual event stream)
        encoding = ", ".join(response.headers.get_list("content-encoding")).strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            self.broken = True  # br/zstd: passed through untouched; the span keeps the request side only

    def feed(self, chunk: bytes) -> None:
        if self.broken or self._ended:
            return
        try:
            if self._decoder is not None:
                chunk = self._decoder.decompress(chunk)
            if self.sse:  # per read, only keep the bytes and the time: the rest waits for a batch
                self._reads.append(chunk)
                self._read_times.append(_perf())
                self._held += len(chunk)
                if len(self._reads) >= _BATCH_READS or self._held >= _BATCH_BYTES:
                    self._flush()
            else:
                self._take(chunk)
        except Exception as exc:
            self.broken = True
            log_once("parsing an LLM HTTP response", exc)

    def reader(self) -> Callable[[bytes], None]:
        """What each read goes through: :meth:`feed`, or :meth:`_hold` for an event stream read as is."""
        return self._hold if self.sse and self._decoder is None and not self.broken else self.feed

    def _hold(self, chunk: bytes) -> None:
        """:meth:`feed` for an uncompressed event stream: per read, only keep the bytes and the time."""
        reads = self._reads
        reads.append(chunk)
        self._read_times.append(_perf())
        self._held += len(chunk)
        if (len(reads) >= _BATCH_READS or self._held >= _BATCH_BYTES) and not self._ended:
            try:
                self._flush()
            except Exception as exc:
                self.broken = True
                log_once("parsing an LLM HTTP response", exc)

    def _take(self, data: bytes) -> None:
        if self.sse:
            self._reads.append(data)
            self._read_times.append(_perf())
            return
        self._size += len(data)
        if self._size > _MAX_BODY:
            self.broken = True
            self._buffer.clear()
            return
        if data:
            self._buffer.append(data)

    def _flush(self, final: bool = False) -> None:
        """Split the held reads into events, decode them and hand them to the accumulator in order. Each
        event keeps the time of the read that completed it (its blank line), as if it had been handled then;
        with ``final``, what is left after the last blank line is an event too (time: now)."""
        reads, read_times = self._reads, self._read_times
        self._reads, self._read_times, self._held = [], [], 0
        if self.recorder is None:
            return
        text = self._pending + b"".join(reads) if self._pending else b"".join(reads)
        if b"\r" in text:  # CRLF line ends: split read by read, as they came (the rare case)
            pending = self._pending
            for read, at in zip(reads, read_times, strict=True):
                pending = pending + read if pending else read
                if b"\r" in pending:
                    pending = pending.replace(b"\r\n", b"\n")
                blocks = pending.split(b"\n\n")
                pending = blocks.pop()
                self._events(blocks, repeat(at, len(blocks)))
            self._pending = pending
        else:
            blocks = text.split(b"\n\n")
            self._pending = blocks.pop()
            if len(reads) == 1:  # a whole body, or one read: every event completed in it
                self._events(blocks, repeat(read_times[0], len(blocks)))
            elif len(blocks) == len(reads) and all(map(_ends_event, reads)):
                # One event per read, as a network delivers them: a read ending in a blank line holds the end
                # of at least one event, and there are as many events as reads, so each read completed one.
                self._events(blocks, read_times)
            elif blocks:
                ends = list(accumulate(map(len, reads), initial=len(text) - sum(map(len, reads))))[1:]
                at_end: list[float] = []
                pos = -1
                for block in blocks:
                    pos += len(block) + 2  # the last byte of the block's blank line
                    at_end.append(read_times[bisect_right(ends, pos)])
                self._events(blocks, at_end)
        if final and self._pending:
            self._events([self._pending], (_perf(),))
            self._pending = b""

    def _events(self, blocks: list[bytes], times: Iterable[float]) -> None:
        """Decode each block's event and hand it, with its time, to the recorder's accumulator."""
        recorder = self.recorder
        if recorder is None:
            return
        append = recorder.times.append
        accumulate = recorder.acc.accumulate if recorder.acc is not None else None
        decode = _decode if _orjson is None else _orjson.loads
        for block, at in zip(blocks, times, strict=True):
            if block[:6] == b"data: " and b"\n" not in block:  # the usual event: one data line, no name
                name, data = "", block[6:]  # (more spaces after the colon are JSON whitespace)
                if data == b"[DONE]":
                    continue
            else:
                parsed = _event(block)
                if parsed is None:
                    continue
                name, data = parsed
            try:
                payload = decode(data)
            except ValueError:  # what orjson refuses
                payload = _decode(data)
            if payload is _UNDECODABLE:
                continue
            append(at)
            if recorder.broken or accumulate is None:
                continue
            try:
                accumulate((name, payload))
            except Exception as exc:
                recorder.broken = True
                log_once("accumulating a stream chunk", exc)

    def abandon(self) -> None:
        """The response was dropped unread and unclosed: end the span as the stream lifecycle does."""
        if not self._ended:
            self.error_type = ABANDONED
            self.broken = True
            self.end()

    def end(self, error: BaseException | None = None) -> None:
        if self._ended:
            return
        if self._decoder is not None and not self.broken:
            try:
                self._take(self._decoder.flush())  # what the decompressor still holds
            except Exception as exc:
                self.broken = True
                log_once("parsing an LLM HTTP response", exc)
        self._ended = True
        if self.recorder is not None:
            try:
                # Reads held back are events the application has seen, even after a break or an abandon;
                # a last event without its blank line only counts when the body was read to its end.
                self._flush(final=not self.broken)
            except Exception as exc:
                log_once("parsing an LLM event stream", exc)
            self.recorder.end(error, self.error_type)
            return
        if not self.broken and self._buffer and self.error_type is None:
            _read_json(self.fmt, self.inv, self.content, b"".join(self._buffer))
        self._buffer = []
        self.tel.finish(self.inv, self.span, error, error_type=self.error_type)


def _read_json(fmt: f.Format, inv: LLMInvocation, content: bool, data: bytes) -> None:
    """A whole JSON response body into the invocation (errors logged, never raised)."""
    try:
        body = loads(data)
        if isinstance(body, list) and fmt.stream is not None:
            # A stream sent as one JSON array (Gemini without alt=sse).
            acc = fmt.stream(inv)
            for item in body:
                acc.accumulate(("", item))
            acc.finish(inv)
        else:
            fmt.response(body, inv, content)
    except Exception as exc:
        log_once("parsing an LLM HTTP response", exc)


def _respond(
    tel: LLMTelemetry, inv: LLMInvocation, span: Any, route: Route, content: bool, response: Any
) -> _Parser | None:
    """Take the response: the parser its byte stream must be wrapped with, or ``None`` when the span ended.

    A body the transport handed over already read (``MockTransport``, ASGI/WSGI apps) is parsed at once:
    such a response's stream is never iterated nor closed by ``read()``, so there is nothing to wait for, and
    its ``content`` is what the application sees, already decoded.
    """
    status = response.status_code
    error_type = str(status) if status >= 400 else None
    fmt = route.fmt
    sse = error_type is None and fmt.stream is not None and "event-stream" in response.headers.get("content-type", "")
    body: bytes | None = None
    try:
        if response.is_stream_consumed:  # (else still on the wire, the usual case: ``content`` would raise)
            body = response.content
    except Exception:
        body = None
    if body is not None and not sse:  # a whole JSON body: no parser needed
        if error_type is None and body and len(body) <= _MAX_BODY:
            _read_json(fmt, inv, content, body)
        tel.finish(inv, span, error_type=error_type)
        return None
    if sse:
        inv.streaming = True
    parser = _Parser(tel, inv, span, route, content, error_type, sse)
    if body is not None:
        parser.whole(body)
        return None
    parser.on_wire(response)
    return parser


def _stream_classes(module: Any) -> tuple[type, type]:
    """Byte-stream wrappers subclassing ``module``'s stream bases (httpx checks ``isinstance``)."""

    class TracedSyncStream(module.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, parser: _Parser) -> None:
            self._inner = inner
            self._parser = parser

        def __iter__(self) -> Iterator[bytes]:
            parser = self._parser
            feed = parser.reader()
            try:
                for chunk in self._inner:
                    feed(chunk)
                    yield chunk
            except GeneratorExit:
                parser.end()
                raise
            except BaseException as exc:
                parser.end(exc)
                raise
            parser.end()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._parser.end()

        def __del__(self) -> None:
            self._parser.abandon()

    class TracedAsyncStream(module.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, parser: _Parser) -> None:
            self._inner = inner
            self._parser = parser

        async def __aiter__(self) -> AsyncIterator[bytes]:
            parser = self._parser
            feed = parser.reader()
            try:
                async for chunk in self._inner:
                    feed(chunk)
                    yield chunk
            except GeneratorExit:
                parser.end()
                raise
            except BaseException as exc:
                parser.end(exc)
                raise
            parser.end()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._parser.end()

        def __del__(self) -> None:
            self._parser.abandon()

    return TracedSyncStream, TracedAsyncStream


class _Tracer:
    """What the wrappers need: telemetry, the provider overrides, and request -> invocation."""

    def __init__(self, tel: LLMTelemetry, providers: Mapping[str, str]) -> None:
        self.tel = tel
        self.providers = {k.lower(): v for k, v in providers.items()}
        # Worked out once per URL path, Host header, and server and API family (each at most _KEPT).
        self._routes: dict[str, Route | None] = {}
        self._hosts: dict[str, tuple[str | None, int | None]] = {}
        self._provider_of: dict[tuple[str | None, int | None, str], str] = {}

    def _provider(self, host: str | None, port: int | None, fmt: f.Format) -> str:
        key = (host, port, fmt.name)
        provider = self._provider_of.get(key)
        if provider is None:
            default = _FAMILY_PROVIDER.get(fmt.name.split(".", 1)[0], ProviderName.OPENAI.value)
            if self.providers:
                provider = self.providers.get(f"{host}:{port}".lower()) or self.providers.get((host or "").lower())
            provider = _keep(self._provider_of, key, provider or provider_for_host(host, default, port))
        return provider

    def begin(self, request: Any) -> tuple[Route, LLMInvocation, Any, bool] | None:
        if request.method != "POST" or not is_instrumentation_enabled() or llm_span_active():
            return None
        path = request.url.path
        routes = self._routes
        route = routes.get(path, _UNSEEN)
        if route is _UNSEEN:
            route = _keep(routes, path, match_route("POST", path))
        if route is None:
            return None
        try:
            body: Any = loads(request.content) if request.content else {}
        except Exception:  # a streamed (unread) or non-JSON request body: not an LLM call we can describe
            return None
        if not isinstance(body, dict):
            return None
        host, port = _server(request, self._hosts)
        provider = self._provider(host, port, route.fmt)
        model = body.get("model") if isinstance(body.get("model"), str) else route.path_model
        streaming = body.get("stream") is True or route.stream_path
        inv = LLMInvocation(
            route.fmt.operation,
            provider,
            request_model=model,
            server_address=host,
            server_port=port,
            streaming=streaming,
        )
        inv.attributes[ext.HTTP_RAW] = True
        tel = self.tel
        content = tel.content.any
        route.fmt.request(body, inv, content)
        span = tel.start(inv)
        if not tel.wants_content(span):
            inv.input_messages = inv.system_instructions = inv.tool_definitions = None
            content = False
        return route, inv, span, content


def _make_wrappers(tracer: _Tracer, module: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    sync_stream, async_stream = _stream_classes(module)
    tel = tracer.tel

    def sync_send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs.get("request")
        try:
            started = tracer.begin(request)
        except Exception as exc:
            log_once("starting an HTTP-level LLM span", exc)
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        route, inv, span, content = started
        response = tel.run(span, lambda exc: tel.finish(inv, span, exc), wrapped, args, kwargs)
        try:
            parser = _respond(tel, inv, span, route, content, response)
            if parser is not None:
                response.stream = sync_stream(response.stream, parser)
        except Exception as exc:
            log_once("wrapping an LLM HTTP response", exc)
            tel.finish(inv, span)
        return response

    async def async_send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs.get("request")
        try:
            started = tracer.begin(request)
        except Exception as exc:
            log_once("starting an HTTP-level LLM span", exc)
            started = None
        if started is None:
            return await wrapped(*args, **kwargs)
        route, inv, span, content = started
        response = await tel.arun(span, lambda exc: tel.finish(inv, span, exc), wrapped, args, kwargs)
        try:
            parser = _respond(tel, inv, span, route, content, response)
            if parser is not None:
                response.stream = async_stream(response.stream, parser)
        except Exception as exc:
            log_once("wrapping an LLM HTTP response", exc)
            tel.finish(inv, span)
        return response

    return sync_send, async_send


def parse_providers(value: str | None) -> dict[str, str]:
    """``host[:port]=provider,...`` (``OTEL_SPYGLASS_HTTPX_PROVIDERS``) as a dict; bad entries are logged, skipped."""
    out: dict[str, str] = {}
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, provider = item.rpartition("=")
        if not sep or not host.strip() or not provider.strip():
            logger.warning("%s: ignoring %r (expected host[:port]=provider)", OTEL_SPYGLASS_HTTPX_PROVIDERS, item)
            continue
        out[host.strip().lower()] = provider.strip()
    return out


class HttpxInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces LLM API calls made with raw ``httpx``/``httpx2`` (see the module docstring).

    ``instrument(tracer_provider=, meter_provider=, logger_provider=, providers={host[:port]: provider},
    capture=, content_max_length=, completion_hook=)``; the environment is read here, once.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # either library is enough; each is patched only if importable

    def _instrument(self, **kwargs: Any) -> None:
        settings = load_settings(capture=kwargs.get("capture"), content_max_length=kwargs.get("content_max_length"))
        tracer_provider = kwargs.get("tracer_provider")
        tel = LLMTelemetry(
            settings,
            scope="spyglass.instrumentation.httpx",
            tracer_provider=tracer_provider,
            meter_provider=kwargs.get("meter_provider"),
            logger_provider=kwargs.get("logger_provider"),
            completion_hook=kwargs.get("completion_hook"),
        )
        install_context_processor(tracer_provider or trace.get_tracer_provider())
        providers = {
            **parse_providers(os.environ.get(OTEL_SPYGLASS_HTTPX_PROVIDERS)),
            **(kwargs.get("providers") or {}),
        }
        tracer = _Tracer(tel, providers)
        self._patched: list[Any] = []
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            sync_send, async_send = _make_wrappers(tracer, module)
            wrapt.wrap_function_wrapper(module, "Client._send_single_request", sync_send)
            wrapt.wrap_function_wrapper(module, "AsyncClient._send_single_request", async_send)
            self._patched.append(module)

    def _uninstrument(self, **kwargs: Any) -> None:
        for module in getattr(self, "_patched", []):
            unwrap(module.Client, "_send_single_request")
            unwrap(module.AsyncClient, "_send_single_request")
        self._patched = []
