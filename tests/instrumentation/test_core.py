"""The provider-neutral core: settings, provider detection, the content size policy."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.util.types import AttributeValue

from spyglass.instrumentation._config import DEFAULT_CONTENT_MAX_LENGTH, load_settings, parse_capture
from spyglass.instrumentation._content import blob_part, data_url_part, truncate_json
from spyglass.instrumentation._providers import provider_for_host, server_of
from spyglass.instrumentation._telemetry import error_type_of
from spyglass.semconv import extensions as ext
from spyglass.semconv.validation import validate
from spyglass.semconv.values import ContentCapture


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, ContentCapture.SPAN_ONLY),
        ("", ContentCapture.SPAN_ONLY),
        ("NO_CONTENT", ContentCapture.NO_CONTENT),
        ("span_and_event", ContentCapture.SPAN_AND_EVENT),
        ("EVENT_ONLY", ContentCapture.EVENT_ONLY),
        ("true", ContentCapture.SPAN_ONLY),
        ("False", ContentCapture.NO_CONTENT),
    ],
)
def test_capture_mode_values(value: str | None, mode: ContentCapture) -> None:
    assert parse_capture(value) is mode


def test_bad_values_warn_and_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        s = load_settings(
            {
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "everything",
                "OTEL_SPYGLASS_CONTENT_MAX_LENGTH": "-3",
                "OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE": "maybe",
            }
        )
    assert s.capture is ContentCapture.SPAN_ONLY
    assert s.content_max_length == DEFAULT_CONTENT_MAX_LENGTH
    assert s.openai_stream_include_usage is False
    assert len(caplog.records) == 3


def test_precedence() -> None:
    env = {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "1000", "OTEL_SPYGLASS_CONTENT_MAX_LENGTH": "50"}
    assert load_settings(env).content_max_length == 1000  # the official limit wins over ours
    assert load_settings({"OTEL_SPYGLASS_CONTENT_MAX_LENGTH": "50"}).content_max_length == 50
    assert load_settings(env, content_max_length=77).content_max_length == 77  # arguments win
    s = load_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"})
    assert s.emit_event is True
    s = load_settings(
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
            "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT": "false",
        }
    )
    assert s.emit_event is False
    with pytest.raises(ValueError, match="content_max_length"):
        load_settings({}, content_max_length=0)
    assert load_settings({}, capture=False).capture is ContentCapture.NO_CONTENT
    assert load_settings({}, capture="span_and_event").emit_event is True
    with pytest.raises(ValueError, match="SOMETIMES"):
        load_settings({}, capture="sometimes")


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("api.openai.com", "openai"),
        ("my-resource.openai.azure.com", "azure.ai.openai"),
        ("api.groq.com", "groq"),
        ("api.deepseek.com", "deepseek"),
        ("api.mistral.ai", "mistral_ai"),
        ("api.x.ai", "x_ai"),
        ("openrouter.ai", "openrouter"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("us-east5-aiplatform.googleapis.com", "gcp.vertex_ai"),  # AnthropicVertex
        ("bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock"),  # AnthropicBedrock
        ("api.anthropic.com", "anthropic"),
        ("llm.internal.example", "openai"),
        (None, "openai"),
    ],
)
def test_provider_from_host(host: str | None, provider: str) -> None:
    assert provider_for_host(host) == provider


def test_server_of() -> None:
    assert server_of("https://api.openai.com/v1") == ("api.openai.com", 443)
    assert server_of("http://127.0.0.1:8080/v1") == ("127.0.0.1", 8080)
    assert provider_for_host("localhost", "openai", 11434) == "ollama"
    assert server_of(None) == (None, None)


def test_error_type_names() -> None:
    import openai

    assert error_type_of(ValueError("x")) == "ValueError"
    err = openai.APIConnectionError(request=None)  # type: ignore[arg-type]
    assert error_type_of(err) == "openai.APIConnectionError"


def test_blob_placeholders() -> None:
    payload = base64.b64encode(b"\x89PNG" + b"\0" * 100).decode()
    part = data_url_part(f"data:image/png;base64,{payload}")
    assert part == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/png",
        "content": "",
        "byte_size": 104,
        ext.PART_OMITTED: True,
    }
    assert data_url_part("https://example.com/cat.png")["type"] == "uri"
    assert blob_part(b"abc", "audio", "audio/wav")["byte_size"] == 3
    validate([{"role": "user", "parts": [part]}], "InputMessages")


def test_truncation_keeps_valid_json_and_marks_the_part() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "parts": [{"type": "text", "content": "short"}]},
        {"role": "user", "parts": [{"type": "text", "content": "é" * 5000}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "f", "arguments": {"q": "x" * 3000}}]},
    ]
    text, cut = truncate_json(msgs, 1000)
    assert cut and len(text) <= 1000
    out = json.loads(text)
    validate(out, "InputMessages")
    assert out[0]["parts"][0]["content"] == "short"  # short strings are left alone
    assert out[1]["parts"][0][ext.PART_TRUNCATED] is True
    assert out[1]["parts"][0][ext.PART_ORIGINAL_SIZE] == 5000
    assert msgs[1]["parts"][0]["content"] == "é" * 5000  # the caller's objects are never touched
    assert truncate_json(msgs[:1], 1000) == (json.dumps(msgs[:1], separators=(",", ":")), False)


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
_part = st.one_of(
    st.builds(lambda c: {"type": "text", "content": c}, _text),
    st.builds(lambda c: {"type": "reasoning", "content": c}, _text),
    st.builds(lambda a: {"type": "tool_call", "id": None, "name": "f", "arguments": {"a": a}}, _text),
)
_messages = st.lists(
    st.builds(
        lambda role, parts: {"role": role, "parts": parts},
        st.sampled_from(["user", "assistant"]),
        st.lists(_part, max_size=6),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(msgs=_messages, limit=st.integers(min_value=120, max_value=3000))
def test_truncation_property(msgs: list[Any], limit: int) -> None:
    text, cut = truncate_json(msgs, limit)
    assert len(text) <= limit
    out = json.loads(text)
    validate(out, "InputMessages")
    if not cut:
        assert out == msgs


# --- batched histogram points (a stream's time_per_output_chunk) ----------------------------------


def _histogram_points(reader: Any) -> list[tuple[Any, ...]]:
    data = reader.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    buckets = getattr(p, "bucket_counts", None)
                    if buckets is None:  # exponential: positive buckets
                        buckets = (p.scale, p.zero_count, tuple(p.positive.bucket_counts))
                    point = (p.count, p.sum, p.min, p.max, tuple(buckets), len(p.exemplars))
                    out.append((metric.name, dict(p.attributes), *point))
    return sorted(out, key=repr)


@pytest.mark.parametrize(
    "setup", ["cumulative", "delta", "view-keys", "exponential", "two-readers", "sampled-parent", "exemplars"]
)
def test_record_batch_equals_recording_each_point(setup: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import Histogram as SDKHistogram
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.trace import TracerProvider

    from spyglass.instrumentation import _histograms
    from spyglass.instrumentation._histograms import record, record_batch

    assert _histograms._FAST  # the installed SDK has the structures the fast path reads

    def provider() -> tuple[Any, list[Any]]:
        temporality: dict[type, AggregationTemporality] | None = None
        if setup == "delta":
            temporality = {SDKHistogram: AggregationTemporality.DELTA}
        readers = [InMemoryMetricReader(preferred_temporality=temporality)]
        if setup == "two-readers":
            readers.append(InMemoryMetricReader(preferred_temporality={SDKHistogram: AggregationTemporality.DELTA}))
        views = []
        if setup == "view-keys":
            views = [View(instrument_name="h", attribute_keys={"gen_ai.operation.name"})]
        elif setup == "exponential":
            views = [View(instrument_name="h", aggregation=ExponentialBucketHistogramAggregation())]
        kw: dict[str, Any] = {"exemplar_filter": AlwaysOnExemplarFilter()} if setup == "exemplars" else {}
        return MeterProvider(metric_readers=readers, views=views, **kw), readers

    batched, batched_readers = provider()
    single, single_readers = provider()
    bh = batched.get_meter("m").create_histogram("h", explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1, 1.0])
    sh = single.get_meter("m").create_histogram("h", explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1, 1.0])
    attrs: dict[str, AttributeValue] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    attrs["server.port"] = 443
    error_attrs = {**attrs, "error.type": "x"}  # the callers keep one dict per attribute set
    calls = 0
    public_record = bh.record

    def counting_record(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        public_record(*args, **kwargs)

    bh.record = counting_record  # type: ignore[method-assign]
    tracer = TracerProvider().get_tracer("t")
    batches = [[0.0005, 0.02, 0.3, 0.02, 7.0, 0.0], [0.04] * 30, [0.2]]
    # Under a sampled parent span the (default, trace-based) exemplar filter wants exemplars: that is the
    # per-measurement path; without one, explicit buckets are merged.
    parent = tracer.start_span("parent") if setup in ("sampled-parent", "exemplars") else trace.INVALID_SPAN
    for i, values in enumerate(batches):
        with trace.use_span(parent):
            record_batch(bh, values, attrs)
            record(bh, values[0] * 3, attrs)  # single points (the per-call metrics) take the same path
            record(bh, 1.5, error_attrs)
            for v in [*values, values[0] * 3]:
                sh.record(v, attrs)
            sh.record(1.5, {**attrs, "error.type": "x"})
        if i == 1:  # a collection between batches (a delta reader starts new aggregations)
            assert [_histogram_points(r) for r in batched_readers] == [_histogram_points(r) for r in single_readers]
    assert calls == 2  # the first point of each attribute set: later ones went the fast way
    record(bh, 0.5, dict(attrs))  # an equal dict that is not the kept one: the public path, same result
    sh.record(0.5, attrs)
    assert calls == 3
    assert [_histogram_points(r) for r in batched_readers] == [_histogram_points(r) for r in single_readers]
    assert trace.get_current_span() is trace.INVALID_SPAN
