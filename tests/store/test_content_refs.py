"""Content a completion hook stored elsewhere: the store keeps the references and says where the content is.

Spans come from the real ``spyglass_upload`` hook on a recorded SDK call (``NO_CONTENT``: only references on
the span) and from a span carrying util-genai's attribute names by hand (a reference holding markup). They
reach a real ``spyglass serve`` over OTLP/HTTP; the API items, the span detail, the trace page and its JSON
twin, and the list say where the content is, as inert text, and the store never opens the referenced files.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spyglass.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor, UploadCompletionHook
from spyglass.semconv import gen_ai
from tests.conftest import Telemetry, recording
from tests.instrumentation.llm_support import anthropic_client, llm_spans, openai_client, sdk_call
from tests.store.server import StoreServer, wait_for

ANTHROPIC_SYSTEM_TOOLS = "anthropic__messages__nostream__multiple-parallel-tool-calls__i1"
FIELDS = {
    gen_ai.INPUT_MESSAGES_REF: "input_messages_ref",
    gen_ai.OUTPUT_MESSAGES_REF: "output_messages_ref",
    gen_ai.SYSTEM_INSTRUCTIONS_REF: "system_instructions_ref",
    gen_ai.TOOL_DEFINITIONS_REF: "tool_definitions_ref",
}
HOSTILE = "https://bucket.example/<script>window.__xss=1</script>\"'&x=1"


@pytest.fixture
def uninstrument() -> Iterator[None]:
    yield
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()


def _export(server: StoreServer, spans: list[Any]) -> None:
    exporter = OTLPSpanExporter(endpoint=server.otlp_http, timeout=10)
    try:
        assert exporter.export(spans).name == "SUCCESS"
    finally:
        exporter.shutdown()


def _stored(server: StoreServer, trace_id: str, span_id: str) -> dict[str, Any]:
    def found() -> Any:
        r = server.get(f"/api/v1/spans/{trace_id}/{span_id}")
        return r.json() if r.status == 200 else None

    item = wait_for(found, timeout=15)
    assert item, "the span never reached the store"
    return dict(item)


def _uploaded_span(
    tmp_path: Path, replay: Any, telemetry: Telemetry
) -> tuple[Any, dict[str, str], UploadCompletionHook]:
    hook = UploadCompletionHook(str(tmp_path / "content"))
    for inst in (OpenAIInstrumentor(), AnthropicInstrumentor()):
        inst.instrument(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            completion_hook=hook,
            capture_content="NO_CONTENT",
        )
    rec = recording(ANTHROPIC_SYSTEM_TOOLS)
    replay.expect(rec)
    sdk_call(rec, openai_client(replay, rec), anthropic_client(replay))()
    assert hook.force_flush(10)
    (span,) = llm_spans(telemetry)
    attrs = span.attributes or {}
    refs = {FIELDS[name]: str(attrs[name]) for name in FIELDS if name in attrs}
    assert set(refs) == set(FIELDS.values()), refs  # this recording has every kind of content
    assert gen_ai.INPUT_MESSAGES not in attrs and gen_ai.OUTPUT_MESSAGES not in attrs
    return span, refs, hook


def test_upload_hook_references_reach_the_api_and_pages(
    tmp_path: Path, server: StoreServer, replay: Any, telemetry: Telemetry, uninstrument: None
) -> None:
    span, refs, hook = _uploaded_span(tmp_path, replay, telemetry)
    try:
        _export(server, [span])
        trace_id, span_id = format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")
        detail = _stored(server, trace_id, span_id)
        # The files exist and hold the messages, but the store shows none of them: it never opens a reference.
        assert all(Path(unquote(urlparse(url).path)).stat().st_size > 2 for url in refs.values())
        assert detail["is_llm"] and detail["input_messages"] == [] and detail["output_messages"] == []
        assert {key: detail[key] for key in FIELDS.values()} == refs

        # The list (API and web JSON twin) says the content is elsewhere.
        (item,) = server.get("/api/v1/spans", trace_id=trace_id).json()["items"]
        assert {key: item[key] for key in FIELDS.values()} == refs
        (row,) = server.get("/traces.json", trace_id=trace_id).json()["items"]
        assert row["content_refs"] == refs
        listing = server.get("/traces", trace_id=trace_id).text
        assert "stored externally" in listing

        # The trace page's JSON twin and HTML show each reference where the messages would be.
        (panel,) = [s for s in server.get(f"/traces/{trace_id}.json").json()["spans"] if s["span_id"] == span_id]
        assert panel["content_refs"] == refs
        page = server.get(f"/traces/{trace_id}").text
        for key, url in refs.items():
            assert f'data-ref="{key}"' in page
            assert html.escape(url, quote=False) in page
        assert "Input messages stored externally" in page and "Output messages stored externally" in page
        assert "No input messages were captured" not in page and "No output messages were captured" not in page

        # The OpenAPI document describes the fields.
        item_schema = server.get("/openapi.json").json()["components"]["schemas"]["Item"]["properties"]
        assert all("never fetched" in item_schema[key]["description"] for key in FIELDS.values())
    finally:
        hook.shutdown()


def test_hostile_reference_is_inert_text(server: StoreServer) -> None:
    """util-genai's names by hand: content kept for the prompt, a reference holding markup for the response."""
    provider = TracerProvider(resource=Resource.create({"service.name": "refs"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_http, timeout=10)))
    tracer = provider.get_tracer("spyglass.tests.refs")
    with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes(
            {
                gen_ai.OPERATION_NAME: "chat",
                gen_ai.PROVIDER_NAME: "openai",
                gen_ai.REQUEST_MODEL: "gpt-4o",
                gen_ai.INPUT_MESSAGES: '[{"role": "user", "parts": [{"type": "text", "content": "hello refs"}]}]',
                gen_ai.OUTPUT_MESSAGES_REF: HOSTILE,
            }
        )
    provider.shutdown()
    ctx = span.get_span_context()
    trace_id, span_id = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    detail = _stored(server, trace_id, span_id)
    assert detail["output_messages_ref"] == HOSTILE and detail["input_messages_ref"] is None
    assert detail["input_messages"][0]["parts"][0]["content"] == "hello refs"

    # The list still marks it: the response is missing, and its reference is read for the row.
    (row,) = server.get("/traces.json", trace_id=trace_id).json()["items"]
    assert row["content_refs"] == {"output_messages_ref": HOSTILE}
    (panel,) = server.get(f"/traces/{trace_id}.json").json()["spans"]
    assert panel["content_refs"] == {"output_messages_ref": HOSTILE}

    for path in (f"/traces/{trace_id}", f"/traces?trace_id={trace_id}"):
        page = server.get(path).text
        assert "<script>window.__xss" not in page, path
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page, path
    page = server.get(f"/traces/{trace_id}").text
    assert "Output messages stored externally" in page and "hello refs" in page
    assert "Input messages stored externally" not in page


def test_spans_without_references_have_null_fields(server: StoreServer) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "refs"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_http, timeout=10)))
    with provider.get_tracer("t").start_as_current_span("chat m") as span:
        span.set_attributes({gen_ai.OPERATION_NAME: "chat", gen_ai.REQUEST_MODEL: "m"})
    provider.shutdown()
    ctx = span.get_span_context()
    detail = _stored(server, format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
    assert all(detail[key] is None for key in FIELDS.values())
    (row,) = server.get("/traces.json", trace_id=format(ctx.trace_id, "032x")).json()["items"]
    assert row["content_refs"] == {}
