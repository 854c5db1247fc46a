"""HTTP-level LLM instrumentation: every listed provider's recordings through raw httpx and httpx2."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from spyglass.instrumentation import HttpxInstrumentor
from spyglass.instrumentation._httpx import match_route
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.semconv.validation import validate_span_content
from spyglass.testing.replay import Recording
from tests.conftest import recording, recordings

# Recording provider prefix -> the gen_ai.provider.name the host must give.
PROVIDERS = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "cohere": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "openrouter": "openrouter",
}
# Recorded API -> operation (the APIs the issue lists; others, like rerank or Bedrock, are not LM calls here).
OPERATIONS = {
    "chat-completions": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "responses": "chat",
    "messages": "chat",
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "batchEmbedContents": "embeddings",
    "v2-chat": "chat",
    "v2-embed": "embeddings",
}


def api_of(rec: Recording) -> str:
    return rec.name.split("__")[1]  # file names are provider__api__mode__test__iN


def covered() -> list[Recording]:
    return [r for r in recordings() if r.provider in PROVIDERS and api_of(r) in OPERATIONS]


CLIENTS = ["httpx-sync", "httpx-async", "httpx2-sync", "httpx2-async"]


@pytest.fixture
def instrumented(telemetry) -> Iterator[Any]:
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield telemetry
    inst.uninstrument()


async def send(client: str, base_url: str, rec: Recording, **extra: Any) -> bytes:
    """POST the recorded request as an application would, reading the body the usual way; returns it."""
    lib = httpx if client.startswith("httpx-") else httpx2
    headers = {"Host": rec.host, **extra.pop("headers", {})}  # the host the application addressed
    body = json.dumps(rec.request_body).encode()
    headers["content-type"] = "application/json"
    if client.endswith("sync") and not client.endswith("async"):
        with lib.Client(base_url=base_url) as c:
            if rec.streaming:
                with c.stream("POST", rec.path, content=body, headers=headers) as r:
                    return b"".join(r.iter_bytes())
            return c.post(rec.path, content=body, headers=headers).content
    async with lib.AsyncClient(base_url=base_url) as c:
        if rec.streaming:
            async with c.stream("POST", rec.path, content=body, headers=headers) as r:
                return b"".join([chunk async for chunk in r.aiter_bytes()])
        return (await c.post(rec.path, content=body, headers=headers)).content


def check_span(span: Any, rec: Recording) -> None:
    attrs = span.attributes
    assert span.kind is SpanKind.CLIENT
    assert attrs[ext.HTTP_RAW] is True
    assert attrs[gen_ai.PROVIDER_NAME] == PROVIDERS[rec.provider]
    assert attrs[gen_ai.OPERATION_NAME] == OPERATIONS[api_of(rec)]
    assert attrs[gen_ai.SERVER_ADDRESS] == rec.host
    model = (rec.request_body or {}).get("model") or match_route("POST", rec.route).path_model
    assert attrs[gen_ai.REQUEST_MODEL] == model
    assert span.name == f"{OPERATIONS[api_of(rec)]} {model}"
    validate_span_content(attrs)
    if rec.status >= 400:
        assert span.status.status_code is StatusCode.ERROR
        assert attrs[gen_ai.ERROR_TYPE] == str(rec.status)
        return
    if not rec.streaming and isinstance(rec.json, dict) and rec.json.get("error"):  # an error reported with a 200
        assert span.status.status_code is StatusCode.ERROR
        assert attrs[gen_ai.ERROR_TYPE] == rec.json["error"]["code"]
        return
    assert span.status.status_code is StatusCode.UNSET
    if OPERATIONS[api_of(rec)] != "embeddings":
        assert attrs[gen_ai.INPUT_MESSAGES]
        assert attrs[gen_ai.RESPONSE_FINISH_REASONS]
        output = json.loads(attrs[gen_ai.OUTPUT_MESSAGES])
        assert output and all(msg["role"] == "assistant" for msg in output)
    if rec.streaming:
        assert attrs[gen_ai.REQUEST_STREAM] is True
        assert attrs[ext.STREAM_CHUNK_COUNT] >= 1
        assert attrs[gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    else:
        body = rec.json
        rid = body.get("id") or body.get("responseId")
        if rid and OPERATIONS[api_of(rec)] != "embeddings":
            assert attrs[gen_ai.RESPONSE_ID] == rid
        usage = body.get("usage") or body.get("usageMetadata") or (body.get("meta") or {}).get("billed_units")
        if usage:
            assert attrs[gen_ai.USAGE_INPUT_TOKENS] > 0


@pytest.mark.parametrize("rec", covered(), ids=lambda r: r.name)
async def test_every_recording_becomes_one_llm_span(instrumented, replay, rec: Recording) -> None:
    client = CLIENTS[sum(map(ord, rec.name)) % len(CLIENTS)]  # spread the recordings over the four clients
    replay.expect(rec)
    received = await send(client, replay.url, rec)
    assert received.decode() == "".join(rec.events())  # the application got the served bytes, untouched
    (span,) = instrumented.spans()
    check_span(span, rec)


def representative() -> list[Recording]:
    """One JSON and one streamed recording per provider (where recorded)."""
    seen: dict[tuple[str, bool], Recording] = {}
    for rec in covered():
        if rec.status < 400:
            seen.setdefault((rec.provider, rec.streaming), rec)
    return list(seen.values())


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("rec", representative(), ids=lambda r: r.name)
async def test_each_provider_through_each_client(instrumented, replay, rec: Recording, client: str) -> None:
    replay.expect(rec)
    assert (await send(client, replay.url, rec)).decode() == "".join(rec.events())
    (span,) = instrumented.spans()
    check_span(span, rec)


def test_all_listed_providers_are_covered() -> None:
    have = {(r.provider, r.streaming) for r in covered()}
    for provider in PROVIDERS:
        assert (provider, False) in have or (provider, True) in have, provider
    assert {r.provider for r in covered() if r.streaming} >= {
        "openai",
        "anthropic",
        "gemini",
        "cohere",
        "groq",
        "mistral",
    }


def test_usage_and_output_detail_from_a_streamed_anthropic_call(instrumented, replay) -> None:
    rec = recording("anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0")
    replay.expect(rec)
    with (
        httpx2.Client(base_url=replay.url) as c,
        c.stream("POST", rec.path, json=rec.request_body, headers={"Host": rec.host}) as r,
    ):
        lines = list(r.iter_lines())
    assert any(line.startswith("event: message_stop") for line in lines)
    (span,) = instrumented.spans()
    attrs = span.attributes
    assert attrs[gen_ai.USAGE_INPUT_TOKENS] == 21 and attrs[gen_ai.USAGE_OUTPUT_TOKENS] == 13
    assert json.loads(attrs[gen_ai.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Sunlight scatters off air molecules."


def test_gemini_stream_reasoning_tokens_and_parallel_tool_calls(instrumented, replay) -> None:
    rec = recording("gemini__streamGenerateContent__stream__streaming-reasoning-with-multiple-tool-calls__i0")
    replay.expect(rec)
    with (
        httpx.Client(base_url=replay.url) as c,
        c.stream("POST", rec.path, json=rec.request_body, headers={"Host": rec.host}) as r,
    ):
        r.read()
    (span,) = instrumented.spans()
    attrs = span.attributes
    assert attrs[gen_ai.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert attrs[gen_ai.USAGE_REASONING_OUTPUT_TOKENS] > 0
    assert attrs[gen_ai.USAGE_OUTPUT_TOKENS] > attrs[gen_ai.USAGE_REASONING_OUTPUT_TOKENS]
    calls = [p for p in json.loads(attrs[gen_ai.OUTPUT_MESSAGES])[0]["parts"] if p["type"] == "tool_call"]
    assert [c["arguments"]["location"] for c in calls] == ["Boston", "New Delhi"]


def test_partial_stream_consumption_ends_the_span_once_on_close(instrumented, replay) -> None:
    rec = recording("openai__chat-completions__stream__chat-streaming-partial-consumption__i1")
    replay.expect(rec)
    with (
        httpx.Client(base_url=replay.url) as c,
        c.stream("POST", rec.path, json=rec.request_body, headers={"Host": rec.host}) as r,
    ):
        first = next(r.iter_lines())
        assert first.startswith("data:")
    (span,) = instrumented.spans()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[ext.STREAM_CHUNK_COUNT] >= 1


def test_providers_argument_names_unknown_hosts(telemetry, replay) -> None:
    inst = HttpxInstrumentor()
    port = replay.port
    inst.instrument(tracer_provider=telemetry.tracer_provider, providers={f"127.0.0.1:{port}": "vllm"})
    try:
        rec = recording("openai__chat-completions__nostream__chat__i1")
        replay.expect(rec)
        httpx.post(replay.url + rec.path, json=rec.request_body)
    finally:
        inst.uninstrument()
    (span,) = telemetry.spans()
    assert span.attributes[gen_ai.PROVIDER_NAME] == "vllm"
    assert span.attributes[gen_ai.SERVER_ADDRESS] == "127.0.0.1"
    assert span.attributes[gen_ai.SERVER_PORT] == port


def test_ollama_port_and_unknown_host_defaults(instrumented, replay) -> None:
    rec = recording("openai__chat-completions__nostream__chat__i1")
    replay.expect(rec, rec)
    httpx.post(replay.url + rec.path, json=rec.request_body, headers={"Host": "localhost:11434"})
    httpx.post(replay.url + rec.path, json=rec.request_body, headers={"Host": "llm.internal.example"})
    ollama, other = instrumented.spans()
    assert ollama.attributes[gen_ai.PROVIDER_NAME] == "ollama"
    assert other.attributes[gen_ai.PROVIDER_NAME] == "openai"  # an OpenAI-style path on an unknown host


def test_non_llm_requests_are_left_alone(instrumented, replay) -> None:
    r = httpx.get(replay.url + "/v1/models")
    assert r.status_code == 599  # nothing queued: the replay server says so...
    replay.unmatched.clear()  # ...and this test meant it
    assert instrumented.spans() == []
    assert match_route("POST", "/v1/messages/count_tokens") is None
    assert match_route("GET", "/v1/chat/completions") is None


def _stream_once(telemetry: Any, replay: Any, rec: Recording, **instrument: Any) -> None:
    """One recorded stream through raw httpx2 with only the HTTP-level instrumentor on."""
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider, **instrument)
    try:
        replay.expect(rec)
        with httpx2.Client(base_url=replay.url) as c, c.stream("POST", rec.path, json=rec.request_body) as r:
            r.read()
    finally:
        inst.uninstrument()


def test_no_content_mode_records_no_messages(telemetry, replay) -> None:
    rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")
    _stream_once(telemetry, replay, rec, capture="NO_CONTENT")
    (span,) = telemetry.spans()
    assert not set(span.attributes) & set(gen_ai.CONTENT_ATTRIBUTES)
    assert span.attributes[gen_ai.RESPONSE_FINISH_REASONS]


def test_transport_error_is_recorded_and_reraised(instrumented) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "m", "messages": []})
    (span,) = instrumented.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[gen_ai.ERROR_TYPE] == "httpx.ConnectError"


def test_unparseable_response_never_breaks_the_application(instrumented, replay) -> None:
    good = recording("openai__chat-completions__nostream__chat__i1")
    broken = Recording(**{**good.__dict__, "body": '{"choices": [oops', "name": "broken"})
    replay.expect(broken)
    r = httpx.post(replay.url + good.path, json=good.request_body)
    assert r.text == '{"choices": [oops'
    (span,) = instrumented.spans()
    assert span.attributes[gen_ai.REQUEST_MODEL] == good.request_body["model"]


def test_uninstrument_restores_the_clients(telemetry, replay) -> None:
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider)
    inst.uninstrument()
    rec = recording("openai__chat-completions__nostream__chat__i1")
    replay.expect(rec)
    httpx.post(replay.url + rec.path, json=rec.request_body)
    assert telemetry.spans() == []
    assert not hasattr(httpx.Client._send_single_request, "__wrapped__")


@pytest.fixture
def gzip_server() -> Iterator[tuple[str, dict[str, Recording]]]:
    """A real 127.0.0.1 server that gzips recorded bodies, as the providers do (the replay server does not)."""
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served: dict[str, Recording] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            rec = served[self.path]
            payload = gzip.compress(rec.body.encode())
            self.send_response(200)
            self.send_header("content-type", rec.content_type)
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "name",
    [
        "openai__chat-completions__nostream__chat__i1",
        "anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0",
    ],
)
def test_gzip_encoded_responses_are_decoded_for_the_span_only(instrumented, gzip_server, name: str) -> None:
    url, served = gzip_server
    rec = recording(name)
    served[rec.path] = rec
    with httpx.Client(base_url=url) as c, c.stream("POST", rec.path, json=rec.request_body) as r:
        text = r.read().decode()
    assert text == rec.body  # the application still gets the decoded body httpx gives it
    (span,) = instrumented.spans()
    assert json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])[0]["parts"]
    assert span.attributes[gen_ai.USAGE_OUTPUT_TOKENS] > 0


def test_abandoned_response_ends_the_span_as_abandoned(instrumented, replay) -> None:
    import gc

    rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")
    replay.expect(rec)
    client = httpx.Client(base_url=replay.url)
    response = client.send(client.build_request("POST", rec.path, json=rec.request_body), stream=True)
    assert instrumented.spans() == []  # still open: nothing read, nothing closed
    del response
    gc.collect()
    (span,) = instrumented.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[gen_ai.ERROR_TYPE] == "spyglass.stream_abandoned"
    client.close()


def test_providers_from_the_environment(telemetry, replay, monkeypatch, caplog) -> None:
    from spyglass.semconv.environment import OTEL_SPYGLASS_HTTPX_PROVIDERS

    monkeypatch.setenv(OTEL_SPYGLASS_HTTPX_PROVIDERS, f"127.0.0.1:{replay.port}=vllm, nonsense ,other.example=x")
    inst = HttpxInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        rec = recording("openai__chat-completions__nostream__chat__i1")
        replay.expect(rec)
        httpx.post(replay.url + rec.path, json=rec.request_body)
    finally:
        inst.uninstrument()
    (span,) = telemetry.spans()
    assert span.attributes[gen_ai.PROVIDER_NAME] == "vllm"
    assert "nonsense" in caplog.text  # a bad entry is reported, the good ones still apply


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_in_memory_transport_responses_end_at_once(instrumented, lib: Any) -> None:
    """MockTransport/ASGI responses arrive already read: their stream is never iterated or closed."""
    json_rec = recording("openai__chat-completions__nostream__chat__i1")
    sse_rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")

    def handler(request: Any) -> Any:
        rec = sse_rec if json.loads(request.content).get("stream") else json_rec
        return lib.Response(200, content=rec.body.encode(), headers={"content-type": rec.content_type})

    with lib.Client(transport=lib.MockTransport(handler), base_url="https://api.openai.com") as c:
        assert c.post(json_rec.path, json=json_rec.request_body).json() == json_rec.json
        with c.stream("POST", sse_rec.path, json=sse_rec.request_body) as r:
            assert b"".join(r.iter_bytes()).decode() == sse_rec.body
    plain, streamed = instrumented.spans()
    assert plain.status.status_code is StatusCode.UNSET and streamed.status.status_code is StatusCode.UNSET
    assert plain.attributes[gen_ai.RESPONSE_ID] == json_rec.json["id"]
    assert streamed.attributes[ext.STREAM_CHUNK_COUNT] > 1
    assert json.loads(streamed.attributes[gen_ai.OUTPUT_MESSAGES])[0]["parts"][0]["content"]


@pytest.mark.parametrize("bad", ["data: not json\n\n", ""], ids=["bad-json", "two-values-only"])
def test_events_arriving_together_decode_as_one_batch_with_the_same_result(instrumented, bad: str) -> None:
    """Several events in one read are split and decoded in one pass; odd ones (names, multi-line data,
    comments, bad JSON, a data field holding two values) still give exactly what one-by-one decoding gives."""
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    second = chunk({"content": "lo"}).replace(', "choices"', ',\ndata: "choices"')  # data split over two lines
    body = (
        f"data: {chunk({'role': 'assistant', 'content': 'Hel'})}\n\n"
        ": keep-alive comment\n\n"
        f"{bad}"
        "data: 1,2\n\n"
        "data: 5\n\n"
        f"event: message\ndata: {second}\n\n"
        f"data:{chunk({}, 'stop')}\r\n\r\n"
        "data: [DONE]\n\n"
    )

    def handler(request: Any) -> Any:
        return httpx2.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    with httpx2.Client(transport=httpx2.MockTransport(handler), base_url="https://api.openai.com") as c:
        request = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with c.stream("POST", "/v1/chat/completions", json=request) as r:
            assert b"".join(r.iter_bytes()).decode() == body
    (span,) = instrumented.spans()
    assert span.attributes[ext.STREAM_CHUNK_COUNT] == 4  # two chat chunks, the bare 5, the final chunk
    output = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == "Hello"
    assert output[0]["finish_reason"] == "stop"


_TIMING = {gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK}


@pytest.mark.parametrize("rec", representative(), ids=lambda r: r.name)
async def test_bodies_read_the_same_with_and_without_orjson(instrumented, replay, monkeypatch, rec: Recording) -> None:
    """orjson (optional) and json give the same span, bodies and events; without orjson json does it all."""
    from spyglass.instrumentation import _httpx

    assert _httpx._orjson is not None  # installed here (dspy requires it), so the first call takes it
    replay.expect(rec)
    await send("httpx2-sync", replay.url, rec)
    monkeypatch.setattr(_httpx, "_orjson", None)
    replay.expect(rec)
    await send("httpx2-sync", replay.url, rec)
    fast, plain = instrumented.spans()
    assert {k: v for k, v in fast.attributes.items() if k not in _TIMING} == {
        k: v for k, v in plain.attributes.items() if k not in _TIMING
    }


def test_loads_gives_json_results_and_errors_for_what_orjson_refuses() -> None:
    from spyglass.instrumentation._httpx import loads

    assert loads(b'{"a": [1, 2.5, null, true, "\\u00e9"]}') == {"a": [1, 2.5, None, True, "é"]}
    odd = loads(b'{"n": 123456789012345678901234567890, "x": NaN, "s": "\\ud800"}')
    assert odd["n"] == 123456789012345678901234567890 and odd["s"] == "\ud800"
    assert math.isnan(odd["x"])
    with pytest.raises(json.JSONDecodeError):
        loads(b"{not json")


@pytest.mark.parametrize("size", [1, 3, 7, 10_000], ids=lambda n: f"reads-of-{n}-bytes")
def test_event_streams_split_anywhere_read_the_same(instrumented, size: int) -> None:
    """Reads may end inside a UTF-8 character, inside a CRLF pair or inside an event: same span."""
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    pieces = ["h\u00e9", "llo ", "\U0001f600", "!"]
    events = [{**head, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces] + [
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    ]
    body = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in events) + "data: [DONE]\r\n\r\n"
    raw = body.encode()
    reads = [raw[i : i + size] for i in range(0, len(raw), size)]

    def handler(request: Any) -> Any:
        return httpx2.Response(200, content=iter(reads), headers={"content-type": "text/event-stream"})

    with httpx2.Client(transport=httpx2.MockTransport(handler), base_url="https://api.openai.com") as c:
        request = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with c.stream("POST", "/v1/chat/completions", json=request) as r:
            assert b"".join(r.iter_bytes()) == raw
    (span,) = instrumented.spans()
    assert span.attributes[ext.STREAM_CHUNK_COUNT] == len(events)
    output = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == "".join(pieces)
    assert output[0]["finish_reason"] == "stop"


_EVENT_DATA = [
    '{"a": 1}',
    '{"a": 1}\n',
    '{"a": [1, {"b": null}]} \t',
    "5",
    '"s"',
    "NaN",
    " {}",
    "{}x",
    "{",
    "",
    "1,2",
    "[1] 2",
]


@pytest.mark.parametrize("text", _EVENT_DATA)
def test_event_data_decodes_exactly_as_json_does(text: str) -> None:
    from spyglass.instrumentation._httpx import _EVENTS, _decode_one

    try:
        expected: Any = _EVENTS.decode(text)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            _decode_one(_EVENTS, text)
        return
    got = _decode_one(_EVENTS, text)
    assert got == expected or (got != got and expected != expected)  # NaN


@pytest.mark.parametrize(
    "raw",
    [
        *(t.encode() for t in _EVENT_DATA),
        b"1e400",
        b'"\\ud800"',  # a lone surrogate
        b'{"a": "\xff"}',  # not UTF-8: replaced, as before
        b'{"a": 1, "a": 2}',
        b'{"\xc3\xa9": [1.5, -0.0, true, false, null]}',
    ],
)
def test_one_event_decodes_as_json_does_with_or_without_orjson(monkeypatch, raw: bytes) -> None:
    from spyglass.instrumentation import _httpx

    try:
        expected: Any = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        expected = _httpx._UNDECODABLE
    for orjson in (_httpx._orjson, None):
        monkeypatch.setattr(_httpx, "_orjson", orjson)
        got = _httpx._decode(raw)
        if expected is _httpx._UNDECODABLE:
            assert got is expected
        else:
            assert json.dumps(got) == json.dumps(expected)  # equal values of the same types (NaN included)


def test_an_integer_past_64_bits_keeps_its_value() -> None:
    """orjson reads it as the nearest float (json as an int): the one place the two differ, by design."""
    from spyglass.instrumentation import _httpx

    big = 2**64 + 1
    assert _httpx._decode(str(big).encode()) == (float(big) if _httpx._orjson is not None else big)


def test_routes_hosts_and_providers_kept_per_instrumentor_stay_right_past_the_bound(instrumented) -> None:
    """Route, host and port, and provider are worked out once per path, Host header and server: across more
    distinct ones than are kept (the memo starts over), every span still names its own."""
    from spyglass.instrumentation import _httpx

    body = recording("openai__chat-completions__nostream__chat__i1").body.encode()

    def handler(request: Any) -> Any:
        return httpx2.Response(200, content=body, headers={"content-type": "application/json"})

    calls = _httpx._KEPT + 40
    with httpx2.Client(transport=httpx2.MockTransport(handler)) as c:
        for i in range(calls):
            host = "api.groq.com" if i % 2 else f"gpu-{i}.internal:{8000 + i % 7}"
            path = f"/v{i}/embeddings" if i % 3 == 0 else f"/v{i}/chat/completions"
            c.post(f"http://{host}{path}", json={"model": f"m{i}", "messages": [{"role": "user", "content": "hi"}]})
    spans = instrumented.spans()
    assert len(spans) == calls
    for i, span in enumerate(spans):
        attrs = span.attributes
        assert attrs[gen_ai.REQUEST_MODEL] == f"m{i}"
        assert attrs[gen_ai.OPERATION_NAME] == ("embeddings" if i % 3 == 0 else "chat")
        if i % 2:
            assert (attrs[gen_ai.PROVIDER_NAME], attrs[gen_ai.SERVER_ADDRESS], attrs[gen_ai.SERVER_PORT]) == (
                "groq",
                "api.groq.com",
                80,
            )
        else:
            assert (attrs[gen_ai.PROVIDER_NAME], attrs[gen_ai.SERVER_ADDRESS], attrs[gen_ai.SERVER_PORT]) == (
                "openai",
                f"gpu-{i}.internal",
                8000 + i % 7,
            )


def test_completion_hook_argument_sees_the_raw_http_call(telemetry, replay) -> None:
    calls: list[dict[str, Any]] = []

    class Spy:
        spyglass_message_dicts = True

        def on_completion(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")
    _stream_once(telemetry, replay, rec, completion_hook=Spy())
    (span,) = telemetry.spans()
    [call] = calls
    assert call["inputs"] == json.loads(span.attributes[gen_ai.INPUT_MESSAGES])
    assert call["outputs"] == json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])


def _deepseek_reasoning_stream() -> Recording:
    """The recorded DeepSeek stream with ``reasoning_content`` added to its first two content deltas.

    Derived: DeepSeek's reasoner streams its reasoning as a ``reasoning_content`` delta field before the
    answer, and none of the recordings in ``tests/fixtures`` has one; the rest is the recording as sent.
    """
    rec = recording("deepseek__chat-completions__stream__chat-streaming-metrics__i0")
    events, added = [], 0
    for event in rec.events():
        data = event.strip().removeprefix("data: ")
        if data != "[DONE]":
            obj = json.loads(data)
            delta = obj["choices"][0]["delta"] if obj.get("choices") else {}
            if delta.get("content") and added < 2:
                delta["reasoning_content"] = f"Step {added}. "
                added += 1
            data = json.dumps(obj)
        events.append(f"data: {data}\n\n")
    assert added == 2
    return dataclasses.replace(rec, body="".join(events))


def test_deepseek_reasoning_deltas_at_both_levels(telemetry, replay) -> None:
    from spyglass.instrumentation import OpenAIInstrumentor

    from .llm_support import openai_client

    rec = _deepseek_reasoning_stream()
    outputs = {}
    for level, inst in (("http", HttpxInstrumentor()), ("sdk", OpenAIInstrumentor())):
        inst.instrument(tracer_provider=telemetry.tracer_provider)
        try:
            replay.expect(rec)
            if level == "http":
                with httpx2.Client(base_url=replay.url) as c, c.stream("POST", rec.path, json=rec.request_body) as r:
                    r.read()
            else:
                for _ in openai_client(replay, rec).chat.completions.create(**rec.request_body):
                    pass
        finally:
            inst.uninstrument()
        (span,) = [s for s in telemetry.spans() if s.attributes.get(gen_ai.OUTPUT_MESSAGES)]
        outputs[level] = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
        telemetry.exporter.clear()
    assert {"type": "reasoning", "content": "Step 0. Step 1. "} in outputs["http"][0]["parts"]
    assert outputs["http"] == outputs["sdk"]
