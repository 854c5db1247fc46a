"""Behaviour of the OpenAI and Anthropic instrumentors beyond the recordings: one span per call with the
Anthropic SDK's own tracing on, helpers and raw responses, the include-usage opt-in, content modes, the size
policy, metrics, never breaking the application, and the instrument/uninstrument lifecycle."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import anthropic
import openai
import pytest
import wrapt
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from spyglass.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor
from spyglass.instrumentation import _openai as openai_adapter
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.semconv import metrics as gen_ai_metrics
from spyglass.semconv.validation import validate_span_content
from spyglass.testing.replay import Recording
from tests.conftest import Telemetry, recording

from .llm_support import anthropic_client, llm_spans, openai_client

CHAT = "openai__chat-completions__nostream__chat__i1"
CHAT_STREAM = "openai__chat-completions__stream__chat-completion-streaming__i0"
ANTHROPIC = "anthropic__messages__nostream__anthropic-instrumentation-messages__i0"
ANTHROPIC_STREAM = "anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0"
RESPONSES_STREAM = "openai__responses__stream__responses-streaming__i1"
IMAGE = "openai__chat-completions__nostream__inputvalueimagehiding-test-input-value-hides-base64-images__i0"


def _only_span(t: Telemetry) -> Any:
    spans = llm_spans(t)
    assert len(spans) == 1, [s.name for s in t.spans()]
    return spans[0]


# --- Anthropic: exactly one LLM span although the SDK traces itself ------------------------------


def test_anthropic_sdk_span_stands_down(replay: Any, telemetry: Telemetry) -> None:
    rec = recording(ANTHROPIC)
    client = anthropic.Anthropic(
        base_url=replay.url,
        api_key="test",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    # Without Spyglass, the SDK's own span is there (so the check below can fail).
    replay.expect(rec)
    client.messages.create(**rec.request_body)
    assert [s.instrumentation_scope.name for s in telemetry.spans()] == ["com.anthropic.sdk.python"]
    telemetry.exporter.clear()

    AnthropicInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    try:
        replay.expect(rec)
        client.messages.create(**rec.request_body)
        rec_stream = recording(ANTHROPIC_STREAM)
        replay.expect(rec_stream)
        body = {k: v for k, v in rec_stream.request_body.items() if k != "stream"}
        with client.messages.stream(**body) as stream:
            text = stream.get_final_text()
        aclient = anthropic.AsyncAnthropic(
            base_url=replay.url,
            api_key="test",
            max_retries=0,
            open_telemetry={"tracer_provider": telemetry.tracer_provider},
        )
        replay.expect(rec)
        asyncio.run(aclient.messages.create(**rec.request_body))
    finally:
        AnthropicInstrumentor().uninstrument()
    spans = telemetry.spans()
    assert [s.instrumentation_scope.name for s in spans] == ["spyglass.instrumentation.anthropic"] * 3
    assert all(gen_ai.INPUT_MESSAGES in s.attributes for s in spans)
    assert json.loads(spans[1].attributes[gen_ai.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text


def test_conversation_id_only_when_known(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(ANTHROPIC)
    replay.expect(rec, rec)
    anthropic_client(replay).messages.create(**rec.request_body)
    client = anthropic.Anthropic(
        base_url=replay.url, api_key="test", max_retries=0, open_telemetry={"conversation_id": "conv_123"}
    )
    client.messages.create(**rec.request_body)
    plain, known = llm_spans(instrumented)
    assert gen_ai.CONVERSATION_ID not in plain.attributes  # never synthesised
    assert known.attributes[gen_ai.CONVERSATION_ID] == "conv_123"


# --- OpenAI helpers and raw responses ------------------------------------------------------------------


def test_chat_stream_helper_ends_span_on_exit(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(CHAT_STREAM)
    replay.expect(rec)
    body = {k: v for k, v in rec.request_body.items() if k != "stream"}
    with openai_client(replay).chat.completions.stream(**body) as stream:
        for event in stream:
            if event.type == "content.delta":
                break  # leave early: the helper closes the response on exit
    span = _only_span(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[gen_ai.REQUEST_STREAM] is True


def test_responses_stream_helper(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(RESPONSES_STREAM)
    replay.expect(rec)
    body = {k: v for k, v in rec.request_body.items() if k != "stream"}
    with openai_client(replay).responses.stream(**body) as stream:
        final = stream.get_final_response()
    span = _only_span(instrumented)
    assert span.attributes[gen_ai.RESPONSE_ID] == final.id
    assert span.attributes[gen_ai.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert span.attributes[gen_ai.OPENAI_API_TYPE] == "responses"
    out = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
    assert out[0]["parts"][0]["content"] == final.output_text


def test_with_raw_response(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(CHAT)
    replay.expect(rec)
    raw = openai_client(replay).chat.completions.with_raw_response.create(**rec.request_body)
    assert raw.headers["x-request-id"].startswith("req_replay_")
    completion = raw.parse()
    span = _only_span(instrumented)  # ended when the response arrived, before the app parsed it
    assert span.attributes[gen_ai.RESPONSE_ID] == completion.id
    assert span.attributes[gen_ai.USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens


def test_with_raw_response_stream(replay: Any, instrumented: Telemetry) -> None:
    rec = recording("openai__chat-completions__stream__chat-completion-with-raw-response-streaming__i0")
    replay.expect(rec)
    raw = openai_client(replay).chat.completions.with_raw_response.create(**rec.request_body)
    chunks = list(raw.parse())
    span = _only_span(instrumented)
    assert span.attributes["spyglass.stream.chunk_count"] == len(chunks)
    assert span.attributes[gen_ai.USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens


def test_with_streaming_response(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(CHAT)
    replay.expect(rec)
    with openai_client(replay).chat.completions.with_streaming_response.create(**rec.request_body) as resp:
        completion = resp.parse()
    span = _only_span(instrumented)
    assert span.attributes[gen_ai.RESPONSE_ID] == completion.id


def test_async_with_streaming_response(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(CHAT)
    replay.expect(rec)

    async def go() -> Any:
        client = openai_client(replay, aio=True)
        async with client.chat.completions.with_streaming_response.create(**rec.request_body) as resp:
            return await resp.parse()

    completion = asyncio.run(go())
    assert _only_span(instrumented).attributes[gen_ai.RESPONSE_ID] == completion.id


def test_responses_retrieve_is_fetch_response(replay: Any, instrumented: Telemetry) -> None:
    created = recording("openai__responses__nostream__responses-tool-calls__i1")
    rid = created.json["id"]
    retrieve = dataclasses.replace(created, method="GET", path=f"/v1/responses/{rid}", request_body=None)
    replay.expect(retrieve)
    resp = openai_client(replay).responses.retrieve(rid)
    span = _only_span(instrumented)
    assert span.name == "fetch_response"
    assert span.attributes[gen_ai.OPERATION_NAME] == "fetch_response"
    assert span.attributes[gen_ai.RESPONSE_ID] == resp.id
    assert gen_ai.USAGE_INPUT_TOKENS not in span.attributes  # the spec: no usage for fetch_response
    assert gen_ai.OUTPUT_MESSAGES in span.attributes


def test_other_endpoints_get_a_basic_span(replay: Any, instrumented: Telemetry) -> None:
    models = Recording(
        name="synthetic-models-list",
        provider="openai",
        api="openai.models",
        streaming=False,
        method="GET",
        host="api.openai.com",
        path="/v1/models",
        request_body=None,
        status=200,
        content_type="application/json",
        body=json.dumps(
            {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "x"}]}
        ),
        raw={},
    )
    replay.expect(models)
    assert [m.id for m in openai_client(replay).models.list()] == ["gpt-4o"]
    span = _only_span(instrumented)
    assert span.name == "openai GET /v1/models"
    assert span.attributes[gen_ai.PROVIDER_NAME] == "openai"
    assert gen_ai.OPERATION_NAME not in span.attributes


# --- include_usage opt-in ----------------------------------------------------------------------------


def test_stream_include_usage_opt_in(replay: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = recording(CHAT_STREAM)
    body = {k: v for k, v in rec.request_body.items() if k != "stream_options"}
    client = openai_client(replay)
    with suppress_instrumentation():
        replay.expect(rec)
        baseline = [c.model_dump() for c in client.chat.completions.create(**body)]
    assert replay.requests[-1].json().get("stream_options") is None
    monkeypatch.setenv("OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE", "true")
    OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    try:
        replay.expect(rec)
        seen = [c.model_dump() for c in client.chat.completions.create(**body)]
        sent = replay.requests[-1].json()
        replay.expect(rec)  # a caller that asked for usage itself still gets the usage chunk
        asked = [c.model_dump() for c in client.chat.completions.create(**rec.request_body)]
    finally:
        OpenAIInstrumentor().uninstrument()
    assert sent["stream_options"] == {"include_usage": True}
    # The recording carries the usage chunk; a caller that did not ask for it never sees it.
    assert seen == [c for c in baseline if c["choices"]]
    assert asked == baseline
    first, second = llm_spans(telemetry)
    assert first.attributes[gen_ai.USAGE_OUTPUT_TOKENS] == baseline[-1]["usage"]["completion_tokens"]
    assert second.attributes[gen_ai.USAGE_INPUT_TOKENS] == baseline[-1]["usage"]["prompt_tokens"]


# --- content capture modes and the size policy -------------------------------------------------------


@pytest.mark.parametrize("mode", ["NO_CONTENT", "false", "SPAN_ONLY", "true", "EVENT_ONLY", "SPAN_AND_EVENT"])
def test_capture_modes(mode: str, replay: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", mode)
    OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, logger_provider=logger_provider)
    try:
        rec = recording(CHAT)
        replay.expect(rec)
        openai_client(replay).chat.completions.create(**rec.request_body)
    finally:
        OpenAIInstrumentor().uninstrument()
    attrs = _only_span(telemetry).attributes
    on_span = mode in ("SPAN_ONLY", "true", "SPAN_AND_EVENT")
    on_event = mode in ("EVENT_ONLY", "SPAN_AND_EVENT")
    assert (gen_ai.INPUT_MESSAGES in attrs) is on_span
    assert (gen_ai.OUTPUT_MESSAGES in attrs) is on_span
    assert attrs[gen_ai.USAGE_INPUT_TOKENS] == rec.json["usage"]["prompt_tokens"]  # metadata in every mode
    records = logs.get_finished_logs()
    assert len(records) == (1 if on_event else 0)
    if on_event:
        record = records[0].log_record
        assert record.event_name == "gen_ai.client.inference.operation.details"
        msgs = record.attributes[gen_ai.INPUT_MESSAGES]
        assert msgs[0]["parts"][0]["content"] == rec.request_body["messages"][0]["content"]
        assert record.attributes[gen_ai.RESPONSE_ID] == rec.json["id"]


def test_size_policy_truncates_structurally(replay: Any, telemetry: Telemetry) -> None:
    rec = recording("openai__chat-completions__nostream__cached-tokens__i1")  # a long prompt
    prompt_len = len(rec.request_body["messages"][0]["content"])
    assert prompt_len > 2000
    OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, content_max_length=600)
    try:
        replay.expect(rec)
        openai_client(replay).chat.completions.create(**rec.request_body)
    finally:
        OpenAIInstrumentor().uninstrument()
    attrs = _only_span(telemetry).attributes
    value = attrs[gen_ai.INPUT_MESSAGES]
    assert len(value) <= 600
    part = json.loads(value)[0]["parts"][0]
    assert part[ext.PART_TRUNCATED] is True
    assert part[ext.PART_ORIGINAL_SIZE] == prompt_len
    assert rec.request_body["messages"][0]["content"].startswith(part["content"])
    assert gen_ai.INPUT_MESSAGES in attrs[ext.CONTENT_TRUNCATED]
    validate_span_content(attrs)


def test_base64_images_become_placeholders(replay: Any, instrumented: Telemetry) -> None:
    rec = recording(IMAGE)
    replay.expect(rec)
    openai_client(replay).chat.completions.create(**rec.request_body)
    attrs = _only_span(instrumented).attributes
    url = rec.request_body["messages"][0]["content"][1]["image_url"]["url"]
    payload = url.split(",", 1)[1]
    assert payload not in attrs[gen_ai.INPUT_MESSAGES]
    blob = json.loads(attrs[gen_ai.INPUT_MESSAGES])[0]["parts"][1]
    assert blob["type"] == "blob" and blob["content"] == "" and blob[ext.PART_OMITTED] is True
    assert blob["mime_type"] == "image/png"
    import base64

    assert blob["byte_size"] == len(base64.b64decode(payload))


# --- metrics -------------------------------------------------------------------------------------------


def test_metrics(replay: Any, instrumented: Telemetry) -> None:
    rec, stream_rec = recording(CHAT), recording(CHAT_STREAM)
    client = openai_client(replay)
    replay.expect(rec, stream_rec)
    client.chat.completions.create(**rec.request_body)
    chunks = list(client.chat.completions.create(**stream_rec.request_body))
    metrics = instrumented.metrics()
    duration = metrics[gen_ai_metrics.CLIENT_OPERATION_DURATION]
    assert sum(p.count for p in duration) == 2
    assert tuple(duration[0].explicit_bounds) == gen_ai_metrics.DURATION_BUCKETS
    tokens = {
        (p.attributes[gen_ai.TOKEN_TYPE], p.attributes[gen_ai.REQUEST_MODEL]): p.sum
        for p in metrics[gen_ai_metrics.CLIENT_TOKEN_USAGE]
    }
    assert tokens[("input", rec.request_body["model"])] == rec.json["usage"]["prompt_tokens"]
    assert tokens[("output", rec.request_body["model"])] == rec.json["usage"]["completion_tokens"]
    usage_tokens = metrics[gen_ai_metrics.CLIENT_TOKEN_USAGE][0]
    assert tuple(usage_tokens.explicit_bounds) == gen_ai_metrics.TOKEN_BUCKETS
    assert sum(p.count for p in metrics[gen_ai_metrics.CLIENT_TIME_TO_FIRST_CHUNK]) == 1
    assert sum(p.count for p in metrics[gen_ai_metrics.CLIENT_TIME_PER_OUTPUT_CHUNK]) == len(chunks) - 1
    assert duration[0].attributes[gen_ai.PROVIDER_NAME] == "openai"


def test_error_metric_and_exception_unchanged(replay: Any, instrumented: Telemetry) -> None:
    rec = recording("openai__chat-completions__nostream__async-chat-completion-404__i0")
    with suppress_instrumentation():
        replay.expect(rec)
        with pytest.raises(openai.NotFoundError) as bare:
            openai_client(replay).chat.completions.create(**rec.request_body)
    replay.expect(rec)
    with pytest.raises(openai.NotFoundError) as seen:
        openai_client(replay).chat.completions.create(**rec.request_body)
    assert type(seen.value) is type(bare.value)
    assert seen.value.body == bare.value.body and str(seen.value) == str(bare.value)
    span = _only_span(instrumented)
    assert span.attributes[gen_ai.ERROR_TYPE] == "openai.NotFoundError"
    [point] = instrumented.metrics()[gen_ai_metrics.CLIENT_OPERATION_DURATION]
    assert point.attributes[gen_ai.ERROR_TYPE] == "openai.NotFoundError"
    assert gen_ai_metrics.CLIENT_TOKEN_USAGE not in instrumented.metrics()


# --- never break the application ------------------------------------------------------------------------


def test_adapter_failure_never_reaches_the_app(
    replay: Any,
    instrumented: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(inv: Any, resp: Any) -> None:
        raise RuntimeError("bug in the response reader")

    monkeypatch.setattr(openai_adapter, "_on_chat", broken)
    rec = recording(CHAT)
    replay.expect(rec)
    completion = openai_client(replay).chat.completions.create(**rec.request_body)
    assert completion.id == rec.json["id"]
    span = _only_span(instrumented)  # still ended, with what was known
    assert span.attributes[gen_ai.REQUEST_MODEL] == rec.request_body["model"]


def test_accumulator_failure_keeps_the_stream(
    replay: Any,
    instrumented: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any, chunk: Any) -> bool:
        raise RuntimeError("bug in the accumulator")

    monkeypatch.setattr(openai_adapter.ChatAccumulator, "accumulate", broken)
    rec = recording(CHAT_STREAM)
    with suppress_instrumentation():
        replay.expect(rec)
        baseline = [c.model_dump() for c in openai_client(replay).chat.completions.create(**rec.request_body)]
    replay.expect(rec)
    seen = [c.model_dump() for c in openai_client(replay).chat.completions.create(**rec.request_body)]
    assert seen == baseline
    assert _only_span(instrumented).status.status_code is StatusCode.UNSET


# --- lifecycle --------------------------------------------------------------------------------------------


def test_uninstrument_restores_and_double_instrument_is_harmless(replay: Any, telemetry: Telemetry) -> None:
    import openai._base_client as base

    original = base.SyncAPIClient.__dict__["request"]
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider)
    inst.instrument(tracer_provider=telemetry.tracer_provider)  # warns, does nothing
    assert isinstance(base.SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)

    class MyClient(openai.OpenAI):  # a subclassed client is covered once
        pass

    rec = recording(CHAT)
    replay.expect(rec)
    MyClient(base_url=replay.url + "/v1", api_key="test", max_retries=0).chat.completions.create(**rec.request_body)
    assert len(llm_spans(telemetry)) == 1
    inst.uninstrument()
    assert base.SyncAPIClient.__dict__["request"] is original
    replay.expect(rec)
    openai_client(replay).chat.completions.create(**rec.request_body)
    assert len(llm_spans(telemetry)) == 1


def test_instrumentation_dependencies() -> None:
    assert OpenAIInstrumentor().instrumentation_dependencies() == ("openai >= 1.26.0, < 4",)
    assert AnthropicInstrumentor().instrumentation_dependencies() == ("anthropic >= 0.40, < 3",)


# --- Anthropic content shapes ----------------------------------------------------------------------


def _anthropic_stream_span(replay: Any, telemetry: Telemetry, name: str, aio: bool = False) -> tuple[Any, Any]:
    rec = recording(name)
    replay.expect(rec)
    body = {k: v for k, v in rec.request_body.items() if k != "stream"}
    if aio:

        async def go() -> Any:
            async with anthropic_client(replay, aio=True).messages.stream(**body) as stream:
                return await stream.get_final_message()

        final = asyncio.run(go())
    else:
        with anthropic_client(replay).messages.stream(**body) as stream:
            final = stream.get_final_message()
    return _only_span(telemetry), final


def test_anthropic_thinking_becomes_reasoning(replay: Any, instrumented: Telemetry) -> None:
    span, final = _anthropic_stream_span(
        replay, instrumented, "anthropic__messages__stream__anthropic-thinking-streaming-legacy__i0", aio=True
    )
    parts = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])[0]["parts"]
    thinking = [b.thinking for b in final.content if b.type == "thinking"]
    assert thinking and [p["content"] for p in parts if p["type"] == "reasoning"] == thinking
    assert [p["content"] for p in parts if p["type"] == "text"] == [b.text for b in final.content if b.type == "text"]
    assert span.attributes[gen_ai.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens


def test_anthropic_server_tools(replay: Any, instrumented: Telemetry) -> None:
    span, final = _anthropic_stream_span(
        replay, instrumented, "anthropic__messages__stream__anthropic-model-web-search-tool-stream__i0"
    )
    parts = json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])[0]["parts"]
    calls = [p for p in parts if p["type"] == "server_tool_call"]
    results = [p for p in parts if p["type"] == "server_tool_call_response"]
    uses = [b for b in final.content if b.type == "server_tool_use"]
    assert [c["id"] for c in calls] == [u.id for u in uses]
    assert calls[0]["server_tool_call"]["input"] == uses[0].input
    assert [r["id"] for r in results] == [b.tool_use_id for b in final.content if b.type == "web_search_tool_result"]
    assert json.loads(span.attributes[gen_ai.TOOL_DEFINITIONS]) == [
        {"type": "web_search_20250305", "name": "web_search"}
    ]
    validate_span_content(span.attributes)


def test_anthropic_cache_tokens_are_part_of_input(replay: Any, instrumented: Telemetry) -> None:
    rec = recording("anthropic__messages__nostream__anthropic-prompt-caching-legacy__i0")
    replay.expect(rec)
    msg = anthropic_client(replay).messages.create(**rec.request_body)
    attrs = _only_span(instrumented).attributes
    u = msg.usage
    assert u.cache_creation_input_tokens > 0
    assert attrs[gen_ai.USAGE_INPUT_TOKENS] == u.input_tokens + u.cache_creation_input_tokens + (
        u.cache_read_input_tokens or 0
    )
    assert attrs[gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS] == u.cache_creation_input_tokens
    system = json.loads(attrs[gen_ai.SYSTEM_INSTRUCTIONS])
    sent = rec.request_body["system"]
    expected = [b["text"] for b in sent] if isinstance(sent, list) else [sent]
    assert [p["content"] for p in system] == expected
