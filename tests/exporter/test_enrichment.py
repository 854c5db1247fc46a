"""What the exporter does to each span: content modes, events, exceptions, configured keys, never raising;
and how settings are read from the environment."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from spyglass.exporter import ContentMode, Pricer, RedactionMode, Redactor
from spyglass.exporter._enrichment import Enricher
from spyglass.exporter._settings import Settings
from spyglass.semconv import dumps, events, gen_ai
from spyglass.semconv import extensions as ext
from spyglass.semconv import messages as m

PII = "mail bob@example.com"


def _span(**extra: Any) -> Any:
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(
            {
                gen_ai.OPERATION_NAME: "chat",
                gen_ai.PROVIDER_NAME: "openai",
                gen_ai.RESPONSE_MODEL: "gpt-4o",
                gen_ai.USAGE_INPUT_TOKENS: 100,
                gen_ai.USAGE_OUTPUT_TOKENS: 10,
                gen_ai.INPUT_MESSAGES: dumps([m.message("user", [m.text(PII)])]),
                gen_ai.TOOL_CALL_ARGUMENTS: json.dumps({"to": "bob@example.com"}),
                gen_ai.RETRIEVAL_QUERY_TEXT: PII,
                f"{gen_ai.PROMPT_VARIABLE_PREFIX}customer": PII,
                "gen_ai.prompt.0.content": PII,
                gen_ai.PROMPT_NAME: "support-v2",
                "app.note": PII,
                **extra,
            }
        )
        span.add_event(
            events.INFERENCE_OPERATION_DETAILS, {gen_ai.INPUT_MESSAGES: dumps([m.message("user", [m.text(PII)])])}
        )
        span.add_event("log", {"line": PII})
        try:
            raise ValueError(f"could not reach {PII}")
        except ValueError as exc:
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"failed for {PII}"))
    provider.shutdown()
    return mem.get_finished_spans()[0]


def _enricher(mode: ContentMode, **kwargs: Any) -> Enricher:
    return Enricher(pricer=Pricer(), redactor=kwargs.pop("redactor", Redactor()), default_mode=mode, **kwargs)


def _no_pii(value: Any) -> bool:
    return "bob@example.com" not in json.dumps(value, default=str)


def test_redacted_mode_covers_content_tool_events_exceptions_and_status() -> None:
    out = _enricher(ContentMode.REDACTED, extra_keys=["app.note"]).enrich(_span())
    attrs = dict(out.attributes)
    assert _no_pii(attrs) and _no_pii([dict(e.attributes) for e in out.events]) and _no_pii(out.status_message)
    assert json.loads(attrs[gen_ai.TOOL_CALL_ARGUMENTS]) == {"to": "[REDACTED:EMAIL]"}
    assert attrs[gen_ai.PROMPT_NAME] == "support-v2"  # gen_ai.prompt.name is not content
    assert attrs[ext.CONTENT_MODE] == "redacted" and attrs[ext.REDACTION_KINDS] == ("EMAIL",)
    assert attrs[ext.REDACTION_COUNT] == 11  # 6 attributes, 2 events, exception message + trace, status
    assert attrs[ext.USAGE_COST] > 0
    exc_event = next(e for e in out.events if e.name == "exception")
    assert exc_event.attributes["exception.type"] == "ValueError"
    assert "[REDACTED:EMAIL]" in exc_event.attributes["exception.message"]


def test_metadata_only_drops_content_keeps_tokens_cost_and_timings() -> None:
    span = _span()
    out = _enricher(ContentMode.METADATA_ONLY, extra_keys=["app.note"]).enrich(span)
    attrs = dict(out.attributes)
    for key in (gen_ai.INPUT_MESSAGES, gen_ai.TOOL_CALL_ARGUMENTS, gen_ai.RETRIEVAL_QUERY_TEXT, "app.note"):
        assert key not in attrs
    assert not any(k.startswith(gen_ai.PROMPT_VARIABLE_PREFIX) or k == "gen_ai.prompt.0.content" for k in attrs)
    details = next(e for e in out.events if e.name == events.INFERENCE_OPERATION_DETAILS)
    assert gen_ai.INPUT_MESSAGES not in details.attributes
    assert attrs[gen_ai.USAGE_INPUT_TOKENS] == 100 and attrs[ext.USAGE_COST] > 0
    assert attrs[ext.CONTENT_MODE] == "metadata_only" and _no_pii(out.status_message)
    assert span.attributes[gen_ai.INPUT_MESSAGES]  # the SDK's span object is never changed


def test_full_mode_changes_nothing_but_adds_cost() -> None:
    span = _span()
    out = _enricher(ContentMode.FULL).enrich(span)
    assert {k: v for k, v in out.attributes.items() if not k.startswith(("spyglass.", "gen_ai.usage.cost"))} == dict(
        span.attributes
    )
    assert out.status_message == span.status.description


def test_existing_cost_is_respected() -> None:
    out = _enricher(ContentMode.FULL).enrich(_span(**{ext.USAGE_COST: 1.5}))
    assert out.attributes[ext.USAGE_COST] == 1.5 and ext.COST_SOURCE not in out.attributes


def test_drop_mode_removes_values_and_hash_mode_is_stable() -> None:
    dropped = _enricher(ContentMode.REDACTED, redactor=Redactor(mode=RedactionMode.DROP)).enrich(_span())
    assert gen_ai.RETRIEVAL_QUERY_TEXT not in dropped.attributes
    assert json.loads(dropped.attributes[gen_ai.TOOL_CALL_ARGUMENTS]) == {"to": ""}
    hashed = _enricher(ContentMode.REDACTED, redactor=Redactor(mode=RedactionMode.HASH, hmac_key=b"k")).enrich(_span())
    q = hashed.attributes[gen_ai.RETRIEVAL_QUERY_TEXT]
    assert q.startswith("mail [EMAIL:") and q == hashed.attributes[f"{gen_ai.PROMPT_VARIABLE_PREFIX}customer"]


class _BrokenRedactor(Redactor):
    """Fault injection: a redactor bug must not raise into the export path, nor leak content."""

    def redact_value(self, value: Any, hits: list[str], *, as_json: bool = False) -> Any:
        raise RuntimeError("detector bug")


def test_repeated_instructions_and_tool_definitions_are_redacted_once() -> None:
    tools = json.dumps(
        [
            {
                "type": "function",
                "name": "lookup_order",
                "description": "Look up an order by its number. Escalate refunds to ops@example.com. " * 6,
                "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
            }
        ]
    )
    instructions = dumps([m.text("You are the support agent for ACME. Never reveal card 4111 1111 1111 1111. " * 6)])
    redactor = Redactor()
    enricher = Enricher(pricer=None, redactor=redactor, default_mode=ContentMode.REDACTED)
    outs = [
        enricher.enrich(_span(**{gen_ai.TOOL_DEFINITIONS: tools, gen_ai.SYSTEM_INSTRUCTIONS: instructions}))
        for _ in range(3)
    ]
    for out in outs:
        tool_doc = json.loads(out.attributes[gen_ai.TOOL_DEFINITIONS])
        assert "ops@example.com" not in json.dumps(tool_doc) and "[REDACTED:EMAIL]" in tool_doc[0]["description"]
        assert tool_doc[0]["name"] == "lookup_order"
        assert "4111" not in out.attributes[gen_ai.SYSTEM_INSTRUCTIONS]
        assert out.attributes[ext.REDACTION_COUNT] == outs[0].attributes[ext.REDACTION_COUNT]
        assert {"EMAIL", "CARD"} <= set(out.attributes[ext.REDACTION_KINDS])
    # Scanned on the first span, then answered from memory: the very same result objects.
    assert outs[2].attributes[gen_ai.TOOL_DEFINITIONS] is outs[1].attributes[gen_ai.TOOL_DEFINITIONS]
    assert outs[2].attributes[gen_ai.SYSTEM_INSTRUCTIONS] is outs[1].attributes[gen_ai.SYSTEM_INSTRUCTIONS]
    assert len(redactor._results[True]) == 2


def test_an_enrichment_failure_exports_the_span_without_content(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="spyglass"):
        out = _enricher(ContentMode.REDACTED, redactor=_BrokenRedactor(), extra_keys=["app.note"]).enrich(_span())
    assert out.attributes[ext.CONTENT_MODE] == "metadata_only" and _no_pii(dict(out.attributes))
    assert not out.events and out.status_message is None
    assert any("enriching span" in r.getMessage() for r in caplog.records)


def test_settings_precedence_and_bad_values(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=x%20y,broken",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "c=3",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "abc",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_SPYGLASS_CONTENT_MODE": "metadata-only",
        "OTEL_SPYGLASS_REDACTION_MODE": "hash",
        "OTEL_SPYGLASS_REDACTION_PATTERNS": '{"EMP": "EMP-\\\\d+"}',
        "OTEL_SPYGLASS_REDACTION_KEYS": "app.note, app.other",
        "OTEL_SPYGLASS_SPOOL_MAX_BYTES": "-5",
    }
    with caplog.at_level(logging.WARNING, logger="spyglass"):
        s = Settings.from_env(env)
    assert s.protocol == "http/json" and s.endpoint == "http://collector:4318/v1/traces"
    assert dict(s.headers) == {"c": "3"}
    assert s.timeout_s == 10.0 and s.compression == "gzip"
    assert s.content_mode is ContentMode.METADATA_ONLY and s.redaction_mode is RedactionMode.HASH
    assert dict(s.redaction_patterns) == {"EMP": "EMP-\\d+"} and s.redaction_keys == ("app.note", "app.other")
    assert s.spool_max_bytes == 256 * 1024 * 1024
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=x%20y,broken"}).headers == {"a": "1", "b": "x y"}
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "bad OTLP timeout" in messages and "OTEL_SPYGLASS_SPOOL_MAX_BYTES" in messages
