"""The lean encoder produces exactly the message the stock OTLP encoder does; OTLP/JSON uses hex ids."""

from __future__ import annotations

import json

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from spyglass.exporter._encoding import encode_request, to_otlp_json
from spyglass.exporter._enrichment import Enriched, EventData


def _spans() -> list:
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "enc", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    a = provider.get_tracer("scope.a", "1.2", schema_url="https://opentelemetry.io/schemas/1.37.0")
    b = provider.get_tracer("scope.b")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    with a.start_as_current_span("root", kind=SpanKind.SERVER, context=set_span_in_context(NonRecordingSpan(remote))):
        with a.start_as_current_span("child", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {"s": "héllo ✓", "i": -7, "big": 2**62, "f": 0.25, "b": False, "ls": ["a", "b"], "li": [1, 2], "e": ""}
            )
            span.add_event("ev", {"k": "v", "n": 1.5})
            span.set_status(Status(StatusCode.ERROR, "boom"))
        with b.start_as_current_span("linked", links=[Link(remote, {"why": "batch"})]) as span:
            try:
                raise ValueError("bad input")
            except ValueError as exc:
                span.record_exception(exc)
            span.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(mem.get_finished_spans())


def _ours(spans: list) -> ExportTraceServiceRequest:
    items = [
        Enriched(
            s,
            s.attributes,
            [EventData(e.name, e.timestamp, e.attributes, e.dropped_attributes) for e in s.events],
            s.status.description,
        )
        for s in spans
    ]
    out = ExportTraceServiceRequest()
    out.ParseFromString(encode_request(items))
    return out


def test_same_message_as_the_stock_encoder() -> None:
    spans = _spans()
    stock = encode_spans(spans)
    ours = _ours(spans)
    assert ours == stock
    assert len(ours.resource_spans[0].scope_spans) == 2


def test_otlp_json_has_hex_ids_and_integer_enums() -> None:
    spans = _spans()
    doc = json.loads(to_otlp_json(encode_spans(spans).SerializeToString()))
    root = next(s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"] if s["name"] == "root")
    assert root["traceId"] == f"{0xABC:032x}" and root["parentSpanId"] == f"{0xDEF:016x}"
    assert root["kind"] == 2  # SPAN_KIND_SERVER


def _many_spans(providers: list[TracerProvider], n: int) -> list:
    """``n`` spans spread over the providers, with long (multi-byte, up to 3-byte varint) strings and values
    that repeat or never repeat (response ids, costs), so every caching path of the encoder runs."""
    mem = InMemorySpanExporter()
    for p in providers:
        p.add_span_processor(SimpleSpanProcessor(mem))
    for i in range(n):
        provider = providers[i % len(providers)]
        tracer = provider.get_tracer("scope.a" if i % 3 else "scope.b", "1.0")
        with tracer.start_as_current_span(f"chat {i % 4}") as span:
            span.set_attributes(
                {
                    "model": "gpt-4o" if i % 2 else "claude",
                    "id": f"resp-{i}",
                    "tokens": i % 7,
                    "cost": i / 7,
                    "big": i * 10**15,
                    "neg": -i,
                    "reasons": ("stop", "length")[: 1 + i % 2],
                    "msg": "prompt ✓ " * (20 + i * 37 % 3000),
                    "huge": "x" * (20_000 if i % 50 == 0 else 200),
                }
            )
    for p in providers:
        p.shutdown()
    return list(mem.get_finished_spans())


def test_same_message_over_many_spans_and_equal_resources() -> None:
    # Two providers with equal but distinct Resource objects: the stock encoder groups them as one resource.
    providers = [TracerProvider(resource=Resource.create({"service.name": "svc"})) for _ in range(2)]
    spans = _many_spans(providers, 600)
    assert spans[0].resource is not spans[1].resource and spans[0].resource == spans[1].resource
    stock = encode_spans(spans)
    ours = _ours(spans)
    assert ours == stock
    assert len(ours.resource_spans) == 1


def test_distinct_resources_stay_apart() -> None:
    providers = [TracerProvider(resource=Resource.create({"service.name": f"svc{k}"})) for k in range(3)]
    spans = _many_spans(providers, 30)
    ours = _ours(spans)
    assert ours == encode_spans(spans)
    assert len(ours.resource_spans) == 3
