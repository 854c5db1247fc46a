"""Every dialect senders use, built with each peer's real attribute conventions, sent through the real
OTLP/HTTP exporter to a real server, and read back as the normalised request record."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from spyglass.exporter import price
from spyglass.semconv import events, extensions, gen_ai
from spyglass.semconv import events as events_
from spyglass.semconv import messages as m
from spyglass.store import Record, normalise
from spyglass.store import _records as records_
from spyglass.testing.replay import ReplayServer
from tests.conftest import recording
from tests.store.server import StoreServer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    with StoreServer(tmp_path_factory.mktemp("dialects") / "db.sqlite") as server:
        yield server


def send(store: StoreServer, build: Callable[[Tracer], Any], service: str = "dialects") -> dict[str, Any]:
    """Run ``build(tracer)`` (it returns the span of interest) and fetch that span's record."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=store.otlp_http)))
    span = build(provider.get_tracer("dialect-test"))
    provider.shutdown()
    ctx = span.get_span_context()
    resp = store.get(f"/api/v1/spans/{ctx.trace_id:032x}/{ctx.span_id:016x}")
    assert resp.status == 200, resp.text
    record: dict[str, Any] = resp.json()
    return record


def test_current_gen_ai_json_attributes(store: StoreServer) -> None:
    attrs: dict[str, Any] = {
        gen_ai.OPERATION_NAME: "chat",
        gen_ai.PROVIDER_NAME: "openai",
        gen_ai.REQUEST_MODEL: "gpt-4o",
        gen_ai.RESPONSE_MODEL: "gpt-4o-2024-08-06",
        gen_ai.USAGE_INPUT_TOKENS: 1200,
        gen_ai.USAGE_OUTPUT_TOKENS: 80,
        gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: 1000,
        gen_ai.USAGE_REASONING_OUTPUT_TOKENS: 30,
        gen_ai.SYSTEM_INSTRUCTIONS: m.dumps([m.text("Be brief.")]),
        gen_ai.INPUT_MESSAGES: m.dumps(
            [
                m.message("user", [m.text("Weather in Paris?")]),
                m.message("assistant", [m.tool_call("get_weather", {"city": "Paris"}, "call_1")]),
                m.message("tool", [m.tool_call_response({"temp_c": 21}, "call_1")]),
            ]
        ),
        gen_ai.OUTPUT_MESSAGES: m.dumps([m.output_message("assistant", [m.text("21°C and sunny.")], "stop")]),
        extensions.USER_ID: "u-42",
        extensions.SESSION_ID: "s-7",
        extensions.METADATA_PREFIX + "experiment": "B",
    }

    def build(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attrs) as span:
            return span

    rec = send(store, build)
    assert rec["is_llm"] and rec["operation"] == "chat" and rec["provider"] == "openai"
    assert rec["model"] == "gpt-4o-2024-08-06" and rec["request_model"] == "gpt-4o" and rec["alias"] == "gpt-4o"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cache_read_tokens"], rec["reasoning_tokens"]) == (
        1200,
        80,
        1000,
        30,
    )
    assert rec["input_text"] == (
        "system: Be brief.\nuser: Weather in Paris?\n"
        'assistant: [tool_call get_weather] {"city": "Paris"}\ntool: [tool_result] {"temp_c": 21}'
    )
    assert rec["output_text"] == "assistant: 21°C and sunny."
    assert rec["tool_args"] == '{"city": "Paris"}'
    assert rec["user_id"] == "u-42" and rec["session_id"] == "s-7" and rec["metadata"] == {"experiment": "B"}
    assert rec["output_messages"][0]["finish_reason"] == "stop"
    # No cost on the span: the store prices it with the exporter's pricing code.
    expected = price(attrs, None)[extensions.USAGE_COST]
    assert rec["cost"] == pytest.approx(expected) and rec["cost"] > 0
    assert rec["cost_source"] == "genai-prices"


def test_cost_sent_by_the_app_wins(store: StoreServer) -> None:
    def build(tracer: Tracer) -> Any:
        attrs = {
            gen_ai.OPERATION_NAME: "chat",
            gen_ai.REQUEST_MODEL: "gpt-4o",
            gen_ai.USAGE_INPUT_TOKENS: 5,
            extensions.USAGE_COST: 0.125,
        }
        with tracer.start_as_current_span("chat", attributes=attrs) as span:
            return span

    rec = send(store, build)
    assert rec["cost"] == 0.125 and rec["cost_source"] == "span"


def test_deprecated_per_message_events(store: StoreServer) -> None:
    def build(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute(gen_ai.DEPRECATED_SYSTEM, "openai")
            span.set_attribute(gen_ai.REQUEST_MODEL, "gpt-4o-mini")
            span.set_attribute(gen_ai.OPERATION_NAME, "chat")
            span.add_event(events.DEPRECATED_SYSTEM_MESSAGE, {"content": "You are terse."})
            span.add_event(events.DEPRECATED_USER_MESSAGE, {"content": "Capital of Peru?"})
            span.add_event(
                events.DEPRECATED_ASSISTANT_MESSAGE,
                {
                    "tool_calls": json.dumps(
                        [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "Peru"}'}}]
                    )
                },
            )
            span.add_event(events.DEPRECATED_TOOL_MESSAGE, {"id": "c1", "content": "Lima"})
            span.add_event(
                events.DEPRECATED_CHOICE,
                {"index": 0, "finish_reason": "stop", "message": json.dumps({"role": "assistant", "content": "Lima."})},
            )
            return span

    rec = send(store, build)
    assert rec["provider"] == "openai" and rec["is_llm"]
    assert rec["input_text"] == (
        'system: You are terse.\nuser: Capital of Peru?\nassistant: [tool_call lookup] {"q": "Peru"}\n'
        "tool: [tool_result] Lima"
    )
    assert rec["output_text"] == "assistant: Lima."
    assert rec["output_messages"][0]["finish_reason"] == "stop"
    assert rec["tool_args"] == '{"q": "Peru"}'


def test_operation_details_event(store: StoreServer) -> None:
    def build(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("chat claude") as span:
            span.set_attribute(gen_ai.OPERATION_NAME, "chat")
            span.add_event(
                events.INFERENCE_OPERATION_DETAILS,
                {
                    gen_ai.REQUEST_MODEL: "claude-sonnet-4-5",
                    gen_ai.PROVIDER_NAME: "anthropic",
                    gen_ai.USAGE_INPUT_TOKENS: 33,
                    gen_ai.USAGE_OUTPUT_TOKENS: 4,
                    gen_ai.INPUT_MESSAGES: m.dumps([m.message("user", [m.text("ping from details")])]),
                    gen_ai.OUTPUT_MESSAGES: m.dumps([m.output_message("assistant", [m.text("pong")], "stop")]),
                },
            )
            return span

    rec = send(store, build)
    assert rec["model"] == "claude-sonnet-4-5" and rec["provider"] == "anthropic"
    assert (rec["input_tokens"], rec["output_tokens"]) == (33, 4)
    assert rec["input_text"] == "user: ping from details" and rec["output_text"] == "assistant: pong"
    assert store.get("/api/v1/spans", q="details").json()["items"][0]["span_id"] == rec["span_id"]


def test_semconv_1_27_content_events(store: StoreServer) -> None:
    def build(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("chat") as span:
            span.set_attribute(gen_ai.OPERATION_NAME, "chat")
            span.set_attribute(gen_ai.REQUEST_MODEL, "mistral-large")
            span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Hi?"}])})
            span.add_event(
                "gen_ai.content.completion", {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "Yo"}])}
            )
            return span

    rec = send(store, build)
    assert rec["input_text"] == "user: Hi?" and rec["output_text"] == "assistant: Yo"


def test_openllmetry_indexed_attributes(store: StoreServer) -> None:
    attrs: dict[str, Any] = {
        "gen_ai.system": "openai",
        "llm.request.type": "chat",
        gen_ai.REQUEST_MODEL: "gpt-4.1",
        gen_ai.RESPONSE_MODEL: "gpt-4.1-2025-04-14",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You translate.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Bonjour",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Hello",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "t1",
        "gen_ai.completion.0.tool_calls.0.name": "save",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"word": "Hello"}',
        "gen_ai.usage.prompt_tokens": 17,
        "gen_ai.usage.completion_tokens": 9,
        "traceloop.association.properties.user_id": "alice",
        "traceloop.association.properties.plan": "pro",
    }

    def build(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("openai.chat", kind=SpanKind.CLIENT, attributes=attrs) as span:
            return span

    rec = send(store, build)
    assert rec["operation"] == "chat" and rec["provider"] == "openai" and rec["is_llm"]
    assert rec["model"] == "gpt-4.1-2025-04-14" and rec["alias"] == "gpt-4.1"
    assert (rec["input_tokens"], rec["output_tokens"]) == (17, 9)
    assert rec["input_text"] == "system: You translate.\nuser: Bonjour"
    assert rec["output_text"] == 'assistant: Hello\n[tool_call save] {"word": "Hello"}'
    assert rec["tool_args"] == '{"word": "Hello"}'
    assert rec["user_id"] == "alice" and rec["metadata"]["plan"] == "pro"


def test_openinference_llm_and_chain_spans(store: StoreServer) -> None:
    llm_attrs: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Answer with a number.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "2+2?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "4",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "calc",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"expr": "2+2"}',
        "llm.token_count.prompt": 21,
        "llm.token_count.completion": 1,
        "llm.token_count.prompt_details.cache_read": 8,
        "input.value": '{"messages": "..."}',
        "input.mime_type": "application/json",
        "session.id": "oi-session",
        "user.id": "oi-user",
        "metadata": json.dumps({"team": "search"}),
        "tag.tags": ["beta"],
    }
    chain_attrs = {"openinference.span.kind": "CHAIN", "input.value": "pipeline question papaya", "output.value": "42"}

    def build(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("ChatOpenAI", attributes=llm_attrs) as span:
            return span

    def build_chain(tracer: Tracer) -> Any:
        with tracer.start_as_current_span("RunnableSequence", attributes=chain_attrs) as span:
            return span

    rec = send(store, build)
    assert rec["is_llm"] and rec["model"] == "gpt-4o-mini" and rec["provider"] == "openai"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cache_read_tokens"]) == (21, 1, 8)
    assert rec["input_text"] == "system: Answer with a number.\nuser: 2+2?"
    assert rec["output_text"] == 'assistant: 4\n[tool_call calc] {"expr": "2+2"}'
    assert rec["session_id"] == "oi-session" and rec["user_id"] == "oi-user"
    assert rec["metadata"] == {"team": "search", "tags": ["beta"]}
    chain = send(store, build_chain)
    assert not chain["is_llm"] and chain["input_text"] == "pipeline question papaya" and chain["output_text"] == "42"
    assert store.get("/api/v1/spans", q="papaya").json()["items"][0]["span_id"] == chain["span_id"]


def test_anthropic_sdk_own_spans(store: StoreServer, replay: ReplayServer) -> None:
    import anthropic

    rec_file = recording("anthropic__messages__nostream__anthropic-instrumentation-messages__i0")
    replay.expect(rec_file)
    provider = TracerProvider(resource=Resource.create({"service.name": "anthropic-app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=store.otlp_http)))
    client = anthropic.Anthropic(api_key="test", base_url=replay.url, open_telemetry={"tracer_provider": provider})
    message = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "Capital of France?"}]
    )
    provider.shutdown()
    assert message.usage.output_tokens == 11
    items = store.get("/api/v1/spans", service="anthropic-app").json()["items"]
    assert len(items) == 1
    rec = items[0]
    assert rec["name"] == "anthropic.messages.create" and rec["scope_name"] == "com.anthropic.sdk.python"
    assert rec["provider"] == "anthropic" and rec["operation"] == "chat" and rec["is_llm"]
    assert rec["model"] == rec_file.json["model"] and rec["alias"] is None
    assert rec["output_tokens"] == 11 and rec["cache_read_tokens"] == 0
    assert rec["status"] == "success"


def test_error_and_timeout_status(store: StoreServer) -> None:
    def failing(error_type: str, message: str) -> Callable[[Tracer], Any]:
        def build(tracer: Tracer) -> Any:
            with tracer.start_as_current_span("chat", attributes={gen_ai.OPERATION_NAME: "chat"}) as span:
                span.set_attribute(gen_ai.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, message))
                return span

        return build

    assert send(store, failing("APITimeoutError", "Request timed out."))["status"] == "timeout"
    rec = send(store, failing("RateLimitError", "429 Too Many Requests"))
    assert rec["status"] == "error" and rec["status_message"] == "429 Too Many Requests"


def test_one_bad_part_does_not_drop_the_rest(store: StoreServer) -> None:
    messages = [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "first good part"},
                42,
                {"no_type": True},
                {"type": "tool_call"},
                {"type": "text", "content": "second good part"},
            ],
        },
        "a bare string message",
        {"role": "user", "parts": "not a list", "content": "content fallback"},
    ]

    def build(tracer: Tracer) -> Any:
        attrs = {
            gen_ai.OPERATION_NAME: "chat",
            gen_ai.INPUT_MESSAGES: json.dumps(messages),
            gen_ai.OUTPUT_MESSAGES: "{broken json",
        }
        with tracer.start_as_current_span("chat", attributes=attrs) as span:
            return span

    rec = send(store, build)
    text = rec["input_text"]
    assert "first good part" in text and "second good part" in text
    assert "42" in text and "a bare string message" in text and "content fallback" in text
    assert rec["output_text"] == "assistant: {broken json"  # unparseable JSON is kept as text, not dropped


def test_non_llm_step_is_searchable(store: StoreServer, tmp_path: Path) -> None:
    def build(tracer: Tracer) -> Any:
        attrs = {
            extensions.STEP_KIND: "task",
            extensions.STEP_INPUT: '{"question": "guava?"}',
            extensions.STEP_OUTPUT: '"yes"',
        }
        with tracer.start_as_current_span("answer", attributes=attrs) as span:
            return span

    rec = send(store, build)
    assert not rec["is_llm"] and rec["input_text"] == '{"question": "guava?"}'
    assert store.get("/api/v1/spans", q="guava").json()["items"][0]["span_id"] == rec["span_id"]
    assert store.get("/api/v1/requests", q="guava").json()["items"] == []


# Each record field and the names it is read from, first set one wins (current names first, then peers').
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "operation": (gen_ai.OPERATION_NAME, "llm.request.type"),
    "provider": (gen_ai.PROVIDER_NAME, gen_ai.DEPRECATED_SYSTEM, "llm.provider", "llm.system"),
    "request_model": (gen_ai.REQUEST_MODEL, "llm.model_name"),
    "input_tokens": (gen_ai.USAGE_INPUT_TOKENS, gen_ai.DEPRECATED_USAGE_PROMPT_TOKENS, "llm.token_count.prompt"),
    "output_tokens": (
        gen_ai.USAGE_OUTPUT_TOKENS,
        gen_ai.DEPRECATED_USAGE_COMPLETION_TOKENS,
        "llm.token_count.completion",
    ),
    "cache_read_tokens": (gen_ai.USAGE_CACHE_READ_INPUT_TOKENS, "llm.token_count.prompt_details.cache_read"),
    "cache_write_tokens": (
        gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS,
        gen_ai.DEPRECATED_USAGE_CACHE_CREATION_INPUT_TOKENS,
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (gen_ai.USAGE_REASONING_OUTPUT_TOKENS, "llm.token_count.completion_details.reasoning"),
    "cost": (extensions.USAGE_COST, "llm.cost.total"),
}
SPAN_ONLY_NAMES: dict[str, tuple[str, ...]] = {  # read from the span's own attributes only
    "user_id": (extensions.USER_ID, "traceloop.association.properties.user_id"),
    "session_id": (extensions.SESSION_ID, gen_ai.CONVERSATION_ID, "traceloop.association.properties.session_id"),
}
field_values = st.sampled_from([None, "", "gpt-4o", "12", "x1", 12, 0, 3.5, True, ["a"]])


def _chat_span(attrs: dict[str, Any], events: list[dict[str, Any]]) -> Record:
    """A CLIENT ``chat`` span with these attributes and events, normalised."""
    return normalise(
        trace_id="01" * 16,
        span_id="02" * 8,
        parent_span_id=None,
        name="chat",
        kind=3,
        start_ns=1,
        end_ns=2,
        attributes=attrs,
        events=events,
        links=[],
        resource={},
        scope_name=None,
        status_code=0,
        status_message=None,
    )


@settings(max_examples=400, deadline=None)
@given(
    attrs=st.dictionaries(
        st.sampled_from([n for names in (*FIELD_NAMES.values(), *SPAN_ONLY_NAMES.values()) for n in names]),
        field_values,
    ),
    details=st.dictionaries(st.sampled_from([n for names in FIELD_NAMES.values() for n in names]), field_values),
)
def test_record_fields_read_the_first_name_set(attrs: dict[str, Any], details: dict[str, Any]) -> None:
    """The record reads spans with only current names through one lookup per field: the same fields as reading
    every name in order, with and without peers' names and an operation-details event."""
    events = [{"name": events_.INFERENCE_OPERATION_DETAILS, "time_ns": 0, "attributes": details}] if details else []
    rec = _chat_span(attrs, events)
    merged = {**details, **attrs}

    def first(source: dict[str, Any], names: tuple[str, ...]) -> Any:
        return next((source[n] for n in names if source.get(n) is not None and source.get(n) != ""), None)

    def as_str(value: Any) -> str | None:
        return None if value is None or value == "" else str(value)

    def as_int(value: Any) -> int | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    for field, names in FIELD_NAMES.items():
        value = first(merged, names)
        if field == "cost":
            cost = None if isinstance(value, (bool, list)) or value is None else value
            try:
                expected: Any = None if cost is None else float(cost)
            except ValueError:
                expected = None
        elif field.endswith("_tokens"):
            expected = as_int(value)
        else:
            expected = as_str(value)
        assert getattr(rec, field) == expected, (field, value)
    for field, names in SPAN_ONLY_NAMES.items():
        assert getattr(rec, field) == as_str(first(attrs, names)), field


message_names = st.sampled_from(
    [
        gen_ai.INPUT_MESSAGES,
        gen_ai.OUTPUT_MESSAGES,
        "llm.input_messages.0.message.role",
        "llm.input_messages.0.message.content",
        "llm.output_messages.1.message.content",
        "input.value",
        "output.value",
        "gen_ai.prompt.0.content",
        "gen_ai.prompt.0.role",
        "gen_ai.completion.0.content",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.promptx",
        "llm.input_messages",
        "other.key",
    ]
)
message_values = st.sampled_from(
    [None, "", "hello", '[{"role": "user", "content": "hi"}]', '{"role": "assistant", "parts": []}', "[", 7]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=st.dictionaries(message_names, message_values, max_size=6))
def test_peer_message_readers_skipped_only_when_they_would_find_nothing(
    attrs: dict[str, Any], monkeypatch_peer: list[bool]
) -> None:
    def read() -> tuple[Any, Any]:
        rec = _chat_span(attrs, [])
        return rec.input_messages, rec.output_messages

    fast = read()
    monkeypatch_peer[0] = True  # every reader runs, as before the check
    try:
        assert read() == fast
    finally:
        monkeypatch_peer[0] = False


@pytest.fixture
def monkeypatch_peer(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """``[force]``: while true, the record reads every dialect whatever names the span has."""
    force = [False]
    check = records_.has_peer_messages
    monkeypatch.setattr(records_, "has_peer_messages", lambda attrs: force[0] or check(attrs))
    return force
