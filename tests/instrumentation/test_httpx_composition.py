"""The HTTP-level instrumentor next to the SDK instrumentors and opentelemetry-instrumentation-httpx."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind

from spyglass.instrumentation import AnthropicInstrumentor, HttpxInstrumentor, OpenAIInstrumentor
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from tests.conftest import recording


@pytest.fixture
def both(telemetry) -> Iterator[object]:
    """SDK-level and HTTP-level instrumentation together, as ``opentelemetry-instrument`` would load them."""
    sdks = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    raw = HttpxInstrumentor()
    for inst in (*sdks, raw):
        inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield telemetry
    for inst in (raw, *sdks):
        inst.uninstrument()


def llm_spans(spans):
    return [s for s in spans if gen_ai.OPERATION_NAME in s.attributes]


def test_openai_sdk_call_yields_one_llm_span(both, replay) -> None:
    rec = recording("openai__chat-completions__nostream__chat__i1")
    replay.expect(rec)
    client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
    client.chat.completions.create(**rec.request_body)
    (span,) = llm_spans(both.spans())
    assert ext.HTTP_RAW not in span.attributes  # the SDK span, not a second raw one


def test_openai_sdk_stream_yields_one_llm_span(both, replay) -> None:
    rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")
    replay.expect(rec)
    client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
    for _ in client.chat.completions.create(**rec.request_body):
        pass
    (span,) = llm_spans(both.spans())
    assert ext.HTTP_RAW not in span.attributes


async def test_anthropic_async_sdk_call_yields_one_llm_span(both, replay) -> None:
    rec = recording("anthropic__messages__nostream__anthropic-instrumentation-messages__i0")
    replay.expect(rec)
    client = anthropic.AsyncAnthropic(base_url=replay.url, api_key="test", max_retries=0)
    await client.messages.create(**rec.request_body)
    (span,) = llm_spans(both.spans())
    assert ext.HTTP_RAW not in span.attributes


def test_raw_call_next_to_sdk_instrumentation_is_still_traced(both, replay) -> None:
    rec = recording("openai__chat-completions__nostream__chat__i1")
    replay.expect(rec)
    httpx.post(replay.url + rec.path, json=rec.request_body)
    (span,) = llm_spans(both.spans())
    assert span.attributes[ext.HTTP_RAW] is True


@pytest.mark.parametrize("order", ["official-first", "spyglass-first"])
def test_plain_http_span_nests_under_the_llm_span(telemetry, replay, order: str) -> None:
    official, ours = HTTPXClientInstrumentor(), HttpxInstrumentor()
    first, second = (official, ours) if order == "official-first" else (ours, official)
    first.instrument(tracer_provider=telemetry.tracer_provider)
    second.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        rec = recording("groq__chat-completions__stream__chat-streaming-legacy__i0")
        replay.expect(rec)
        with httpx.Client(base_url=replay.url) as c, c.stream("POST", rec.path, json=rec.request_body) as r:
            r.read()
    finally:
        official.uninstrument()
        ours.uninstrument()
    spans = telemetry.spans()
    (llm,) = llm_spans(spans)
    (http,) = [s for s in spans if s is not llm]
    assert http.kind is SpanKind.CLIENT and http.name == "POST"
    assert http.parent is not None and http.parent.span_id == llm.context.span_id
    assert http.context.trace_id == llm.context.trace_id
    # The traceparent the server received names the plain HTTP span (the innermost client span).
    traceparent = replay.requests[-1].headers["traceparent"]
    assert traceparent.split("-")[2] == format(http.context.span_id, "016x")
