"""Phoenix (``arize-phoenix`` from PyPI) receives our spans and shows them as LLM spans with token counts and
messages, checked through its REST API. The app is the instrumented OpenAI SDK against the replay server."""

from __future__ import annotations

import json

import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from spyglass.exporter import SpyglassSpanExporter
from spyglass.instrumentation import OpenAIInstrumentor
from spyglass.semconv import extensions as ext
from spyglass.testing.replay import ReplayServer
from tests.conftest import recording
from tests.phoenix import Phoenix

CACHED = "openai__chat-completions__nostream__cached-tokens__i1"


@pytest.mark.phoenix
@pytest.mark.timeout(400)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_phoenix_shows_llm_spans_with_tokens_and_messages(
    protocol: str,
    phoenix: Phoenix,
    replay: ReplayServer,
) -> None:
    project = f"spyglass-{protocol.replace('/', '-')}"
    endpoint = phoenix.otlp_http_endpoint if protocol == "http/protobuf" else phoenix.otlp_grpc_endpoint
    exporter = SpyglassSpanExporter(endpoint=endpoint, protocol=protocol)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "phoenix-e2e", "openinference.project.name": project})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        replay.expect(recording(CACHED))
        client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "My email is ann@example.com. Hello!"}]
        )
        assert provider.force_flush(10_000) and exporter.force_flush(20_000)
    finally:
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()
    assert exporter.counts.exported >= 1 and exporter.counts.dropped == 0

    usage = recording(CACHED).json["usage"]
    (span,) = [s for s in phoenix.wait_for_spans(project, count=1) if s["span_kind"] == "LLM"]
    attrs = span["attributes"]
    assert attrs["llm.token_count.prompt"] == usage["prompt_tokens"]
    assert attrs["llm.token_count.completion"] == usage["completion_tokens"]
    assert attrs["llm.input_messages.0.message.role"] == "user"
    assert attrs["llm.input_messages.0.message.content"] == "My email is [REDACTED:EMAIL]. Hello!"
    assert attrs["llm.output_messages.0.message.role"] == "assistant"
    assert attrs["llm.output_messages.0.message.content"] == recording(CACHED).json["choices"][0]["message"]["content"]
    assert attrs[ext.USAGE_COST] > 0  # our cost attribute arrives too
    assert "ann@example.com" not in json.dumps(span)
