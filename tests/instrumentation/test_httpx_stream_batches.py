"""HTTP-level event streams decode in batches: a stream read one event per read gives exactly the span and
metric points of the same stream read whole, and of the eager path (a batch of one event), in every exit path."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import pytest

from spyglass.instrumentation import HttpxInstrumentor, _httpx
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.testing.replay import Recording
from tests.conftest import Telemetry
from tests.instrumentation.test_httpx import CLIENTS, check_span, covered

_TIMING = {gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK}
_TOKENS = "gen_ai.client.token.usage"


def streamed() -> list[Recording]:
    return [r for r in covered() if r.streaming and r.status < 400]


class _Boom(Exception):
    pass


def _reads(rec: Recording, mode: str) -> list[bytes]:
    events = [e.encode() for e in rec.events()]  # what the replay server sends: one event per write
    return [b"".join(events)] if mode == "whole" else events


def _served(reads: list[bytes], fail_after: int | None, is_async: bool) -> Any:
    def sync() -> Iterator[bytes]:
        for i, chunk in enumerate(reads):
            if i == fail_after:
                raise _Boom("connection dropped mid-stream")
            yield chunk

    async def asynchronous() -> AsyncIterator[bytes]:
        for chunk in sync():
            yield chunk

    return asynchronous() if is_async else sync()


def _metrics(tel: Telemetry) -> dict[str, list[Any]]:
    """Each metric's points: attributes and count (and the sum for token counts; timings differ per run)."""
    return {
        name: sorted((sorted(p.attributes.items()), p.count, p.sum if name == _TOKENS else None) for p in points)
        for name, points in tel.metrics().items()
    }


async def run(
    rec: Recording,
    client: str,
    mode: str,
    *,
    batch: int = _httpx._BATCH_READS,
    stop_after: int | None = None,
    fail_after: int | None = None,
    drop: bool = False,
) -> tuple[Any, dict[str, list[Any]], bytes]:
    """One streamed call through a fresh instrumentation; the span, the metric points, the bytes read."""
    tel = Telemetry()
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
    old = _httpx._BATCH_READS
    _httpx._BATCH_READS = batch
    lib = httpx if client.startswith("httpx-") else httpx2
    is_async = client.endswith("async")
    reads = _reads(rec, mode)
    headers = {"content-type": rec.content_type}
    host = {"Host": rec.host}  # the host the application addressed (URLs lower-case it)
    got: list[bytes] = []
    try:

        def handler(request: Any) -> Any:
            return lib.Response(rec.status, content=_served(reads, fail_after, is_async), headers=headers)

        transport = lib.MockTransport(handler)
        url = f"https://{rec.host}"
        if is_async:
            async with lib.AsyncClient(transport=transport, base_url=url) as ac:
                try:
                    async with ac.stream("POST", rec.path, json=rec.request_body, headers=host) as r:
                        async for chunk in r.aiter_raw():
                            got.append(chunk)
                            if len(got) == stop_after:
                                break
                except _Boom:
                    pass
        else:
            with lib.Client(transport=transport, base_url=url) as c:
                if drop:  # read a few events, then drop the response unclosed
                    response = c.send(
                        c.build_request("POST", rec.path, json=rec.request_body, headers=host), stream=True
                    )
                    raw = response.iter_raw()
                    got += [next(raw) for _ in range(stop_after or 0)]
                    del raw, response
                    for _ in range(5):  # a cycle may keep the reader past the first pass
                        gc.collect()
                        if tel.spans():
                            break
                else:
                    try:
                        with c.stream("POST", rec.path, json=rec.request_body, headers=host) as r:
                            for chunk in r.iter_raw():
                                got.append(chunk)
                                if len(got) == stop_after:
                                    break
                    except _Boom:
                        pass
        (span,) = tel.spans()
        return span, _metrics(tel), b"".join(got)
    finally:
        _httpx._BATCH_READS = old
        inst.uninstrument()
        tel.shutdown()


def same(a: Any, b: Any) -> None:
    assert a.name == b.name
    assert (a.status.status_code, a.status.description) == (b.status.status_code, b.status.description)
    assert {k: v for k, v in a.attributes.items() if k not in _TIMING} == {
        k: v for k, v in b.attributes.items() if k not in _TIMING
    }
    assert (_TIMING <= set(a.attributes)) == (_TIMING <= set(b.attributes))
    assert [e.name for e in a.events] == [e.name for e in b.events]


@pytest.mark.parametrize("rec", streamed(), ids=lambda r: r.name)
async def test_one_event_per_read_gives_the_span_of_the_whole_body(rec: Recording) -> None:
    client = CLIENTS[sum(map(ord, rec.name)) % len(CLIENTS)]  # spread the recordings over the four clients
    whole, whole_metrics, whole_bytes = await run(rec, client, "whole")
    per_read, per_read_metrics, per_read_bytes = await run(rec, client, "events")
    eager, eager_metrics, _ = await run(rec, client, "events", batch=1)  # decoded as each event arrives
    assert whole_bytes == per_read_bytes == "".join(rec.events()).encode()  # the application reads what was served
    check_span(per_read, rec)
    same(per_read, whole)
    same(per_read, eager)
    assert per_read_metrics == whole_metrics == eager_metrics
    assert gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK in per_read.attributes


def _long(rec_name: str) -> Recording:
    (rec,) = [r for r in streamed() if r.name == rec_name]
    return rec


_OPENAI = "openai__chat-completions__stream__chat-completion-streaming__i0"
_ANTHROPIC = "anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0"
_EXITS = [
    pytest.param({"stop_after": 3}, id="break-early"),
    pytest.param({"fail_after": 4}, id="error-mid-stream"),
]


@pytest.mark.parametrize("name", [_OPENAI, _ANTHROPIC], ids=["openai", "anthropic"])
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("exit", _EXITS)
async def test_every_exit_path_ends_the_span_as_eager_decoding_does(
    name: str, client: str, exit: dict[str, int]
) -> None:
    rec = _long(name)
    batched, batched_metrics, got = await run(rec, client, "events", **exit)
    eager, eager_metrics, _ = await run(rec, client, "events", batch=1, **exit)
    n = exit.get("stop_after") or exit["fail_after"]
    assert got == b"".join(e.encode() for e in rec.events()[:n])
    same(batched, eager)
    assert batched_metrics == eager_metrics
    assert batched.attributes[ext.STREAM_CHUNK_COUNT] >= 1  # events held back were still decoded


@pytest.mark.parametrize("name", [_OPENAI, _ANTHROPIC], ids=["openai", "anthropic"])
async def test_a_partly_read_response_dropped_unclosed_ends_as_eager_decoding_does(name: str) -> None:
    """Collecting the dropped reader closes the byte stream (GeneratorExit): the held events still count."""
    rec = _long(name)
    batched, batched_metrics, _ = await run(rec, "httpx2-sync", "events", stop_after=3, drop=True)
    eager, eager_metrics, _ = await run(rec, "httpx2-sync", "events", batch=1, stop_after=3, drop=True)
    same(batched, eager)
    assert batched.attributes[ext.STREAM_CHUNK_COUNT] >= 1
    assert batched_metrics == eager_metrics


@pytest.mark.parametrize("size", [1, 10_000], ids=["small-events", "10-kb-events"])
def test_a_long_stream_holds_back_a_bounded_batch(size: int) -> None:
    """20,000 events one per read: at most one batch is ever held undecoded; everything reaches the span."""
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    piece = "x" * size
    count = 20_000 if size == 1 else 500

    def events() -> Iterator[bytes]:
        for i in range(count):
            finish = "stop" if i == count - 1 else None
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": finish}
            yield f"data: {json.dumps({**head, 'choices': [choice]})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    def handler(request: Any) -> Any:
        return httpx2.Response(200, content=events(), headers={"content-type": "text/event-stream"})

    tel = Telemetry()
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=tel.tracer_provider)
    held_events = held_bytes = 0
    try:
        with httpx2.Client(transport=httpx2.MockTransport(handler), base_url="https://api.openai.com") as c:
            request = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            with c.stream("POST", "/v1/chat/completions", json=request) as r:
                parser = r.stream._parser
                for i, _ in enumerate(r.iter_raw(), 1):
                    held_events = max(held_events, len(parser._reads))
                    held_bytes = max(held_bytes, parser._held)
                    if i <= count:  # every event read so far is either decoded or held back
                        assert len(parser.recorder.times) + len(parser._reads) == i
        (span,) = tel.spans()
    finally:
        inst.uninstrument()
        tel.shutdown()
    assert held_events < _httpx._BATCH_READS and held_bytes < _httpx._BATCH_BYTES
    if size > 1:
        assert held_events < _httpx._BATCH_BYTES // size + 1  # the byte bound flushed first
    assert span.attributes[ext.STREAM_CHUNK_COUNT] == count
    (output,) = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
    text = output["parts"][0]["content"]
    assert text == "x" * count if size == 1 else set(text) == {"x"}  # (5 MB of text is cut to the content limit)
    assert output["finish_reason"] == "stop"


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_each_event_keeps_the_time_of_the_read_that_completed_it(monkeypatch, newline: str) -> None:
    """Events are split and decoded later, but each keeps its read's time (time to first chunk, intervals)."""
    clock = iter(range(1, 100))
    monkeypatch.setattr(_httpx, "_perf", lambda: float(next(clock)))
    nl = newline.encode()
    reads = [
        b'data: {"a": 1}' + nl + nl + b'data: {"b"',  # completes the first event; the second starts
        b": 2}" + nl,  # half of the second one's blank line
        nl + b'data: {"c": 3}' + nl + nl + b"event: x" + nl + b'data: {"d": 4}' + nl + nl,  # three complete here
        b"data: not json" + nl + nl + b"data: [DONE]" + nl + nl,
    ]

    def handler(request: Any) -> Any:
        return httpx2.Response(200, content=iter(reads), headers={"content-type": "text/event-stream"})

    tel = Telemetry()
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=tel.tracer_provider)
    try:
        with httpx2.Client(transport=httpx2.MockTransport(handler), base_url="https://api.openai.com") as c:
            request = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            with c.stream("POST", "/v1/chat/completions", json=request) as r:
                parser = r.stream._parser
                assert b"".join(r.iter_raw()) == b"".join(reads)
    finally:
        inst.uninstrument()
        tel.shutdown()
    assert parser.recorder.times == [1.0, 3.0, 3.0, 3.0]  # reads 1..4 were timed 1..4; bad JSON is no chunk


def _adversarial_stream() -> list[bytes]:
    """Two real chunks around three events that are not JSON one by one, but are when joined with commas:
    the first two make one chunk ("A"), the third holds two ("B", "C")."""
    head = '"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini"'

    def chunk(text: str, finish: str | None = None) -> str:
        choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
        return "{" + head + ',"choices":[' + json.dumps(choice) + "]}"

    datas = [
        chunk("Hi"),
        chunk("A")[:-1] + ',"k":[1',  # unfinished...
        "2]}",  # ...finished by the next event's data
        chunk("B") + "," + chunk("C"),  # two values in one event
        chunk(" there", "stop"),
    ]
    return [f"data: {d}\n\n".encode() for d in [*datas, "[DONE]"]]


@pytest.mark.parametrize("mode", ["whole", "events", "eager"])
def test_event_data_never_moves_between_events(mode: str) -> None:
    """Each event's data must be one JSON value on its own: the odd events are skipped, wherever they fall."""
    events = _adversarial_stream()

    def handler(request: Any) -> Any:
        content = b"".join(events) if mode == "whole" else iter(events)
        return httpx2.Response(200, content=content, headers={"content-type": "text/event-stream"})

    tel = Telemetry()
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=tel.tracer_provider)
    old = _httpx._BATCH_READS
    _httpx._BATCH_READS = 1 if mode == "eager" else old
    try:
        with httpx2.Client(transport=httpx2.MockTransport(handler), base_url="https://api.openai.com") as c:
            request = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            with c.stream("POST", "/v1/chat/completions", json=request) as r:
                body = r.read() if mode == "whole" else b"".join(r.iter_raw())  # a whole body is already read
        assert body == b"".join(events)
        (span,) = tel.spans()
    finally:
        _httpx._BATCH_READS = old
        inst.uninstrument()
        tel.shutdown()
    assert span.attributes[ext.STREAM_CHUNK_COUNT] == 2
    (output,) = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
    assert output["parts"] == [{"type": "text", "content": "Hi there"}]
