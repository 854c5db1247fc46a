"""End to end through real sockets: the OpenAI SDK (instrumented) talks to the replay server, spans go through
``SpyglassSpanExporter`` over gRPC / HTTP protobuf / HTTP JSON to a test OTLP receiver on 127.0.0.1, and the
received spans carry the right cost, redacted content and the policy's effect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import genai_prices
import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from spyglass.exporter import SpyglassSpanExporter
from spyglass.instrumentation import OpenAIInstrumentor, using_attributes
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.semconv.validation import validate_span_content
from spyglass.testing.replay import ReplayServer
from tests.conftest import recording
from tests.exporter.receivers import GrpcReceiver, HttpReceiver

CACHED = "openai__chat-completions__nostream__cached-tokens__i1"
PROMPT = "Hi, I'm Jane (jane.doe@example.com, +44 20 7946 0958). Refund card 4111 1111 1111 1111 please."


class App:
    """An instrumented app: tracer provider + batch processor + Spyglass exporter + OpenAI instrumentor."""

    def __init__(self, exporter: SpyglassSpanExporter) -> None:
        self.exporter = exporter
        self.provider = TracerProvider(resource=Resource.create({"service.name": "e2e-app"}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        OpenAIInstrumentor().instrument(tracer_provider=self.provider)

    def chat(self, replay: ReplayServer, content: str = PROMPT) -> Any:
        replay.expect(recording(CACHED))
        client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])

    def flush(self) -> None:
        assert self.provider.force_flush(10_000)
        assert self.exporter.force_flush(20_000)

    def close(self) -> None:
        OpenAIInstrumentor().uninstrument()
        self.provider.shutdown()


@pytest.fixture
def make_app() -> Iterator[Any]:
    apps: list[App] = []

    def make(**kwargs: Any) -> App:
        app = App(SpyglassSpanExporter(backoff_initial=0.05, backoff_max=0.5, **kwargs))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def _chat_span(receiver: Any) -> dict[str, Any]:
    spans = [s for s in receiver.spans() if receiver.attributes(s).get(gen_ai.OPERATION_NAME) == "chat"]
    assert len(spans) == 1, [s.name for s in receiver.spans()]
    return receiver.attributes(spans[0])


def _expected_cost() -> float:
    body = recording(CACHED).json
    usage = body["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0
    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage["prompt_tokens"], cache_read_tokens=cached, output_tokens=usage["completion_tokens"]
        ),
        body["model"],
        provider_id="openai",
    )
    return float(calc.total_price)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf", "http/json"])
def test_cost_and_redaction_reach_the_receiver(protocol: str, replay: ReplayServer, make_app: Any) -> None:
    receiver = GrpcReceiver() if protocol == "grpc" else HttpReceiver()
    with receiver:
        app = make_app(endpoint=receiver.endpoint, protocol=protocol, headers={"x-team": "llm"})
        response = app.chat(replay)
        assert response.choices[0].message.content  # the app got its answer unchanged
        app.flush()
        attrs = _chat_span(receiver)
    assert attrs[ext.USAGE_COST] == pytest.approx(_expected_cost(), rel=1e-9)
    assert attrs[ext.COST_SOURCE] == "genai-prices" and ext.COST_UNPRICED not in attrs
    assert attrs[ext.COST_CACHE_READ] > 0
    content = attrs[gen_ai.INPUT_MESSAGES]
    assert "jane.doe@example.com" not in content and "4111" not in content and "7946" not in content
    assert "[REDACTED:EMAIL]" in content and "[REDACTED:CARD]" in content and "[REDACTED:PHONE]" in content
    assert validate_span_content(attrs) >= 2  # still valid GenAI message JSON
    assert attrs[ext.CONTENT_MODE] == "redacted"
    assert set(attrs[ext.REDACTION_KINDS]) == {"CARD", "EMAIL", "PHONE"}
    assert attrs[ext.REDACTION_COUNT] == 3
    assert receiver.headers[0].get("x-team") == "llm"


def test_policy_rule_for_one_user_and_metadata_only_default(
    tmp_path: Path, replay: ReplayServer, make_app: Any
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: metadata_only\nrules:\n  - id: debug-alice\n    match: {user: alice}\n    mode: full\n")
    with HttpReceiver() as receiver:
        app = make_app(endpoint=receiver.endpoint, protocol="http/protobuf", policy=policy)
        with using_attributes(user_id="alice"):
            app.chat(replay)
        app.chat(replay)  # anyone else: metadata only
        app.flush()
        spans = sorted(receiver.spans(), key=lambda s: s.start_time_unix_nano)
        alice, other = (receiver.attributes(s) for s in spans)
    assert alice[ext.POLICY_RULE] == "debug-alice" and alice[ext.CONTENT_MODE] == "full"
    assert "jane.doe@example.com" in alice[gen_ai.INPUT_MESSAGES]  # full content, as the rule asks
    assert other[ext.CONTENT_MODE] == "metadata_only" and ext.POLICY_RULE not in other
    assert gen_ai.INPUT_MESSAGES not in other and gen_ai.OUTPUT_MESSAGES not in other
    assert other[gen_ai.USAGE_INPUT_TOKENS] > 0 and other[ext.USAGE_COST] > 0  # tokens and cost kept


def test_expired_rule_stops_applying(tmp_path: Path, replay: ReplayServer, make_app: Any) -> None:
    expires = time.time() + 1.5
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires)) + f".{int(expires % 1 * 1e6):06d}Z"
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"rules": [{"id": "temp-full", "match": {"service": "e2e-*"}, "mode": "full", "expires": stamp}]})
    )
    with HttpReceiver() as receiver:
        app = make_app(endpoint=receiver.endpoint, protocol="http/protobuf", policy=policy)
        app.chat(replay)
        time.sleep(max(expires - time.time(), 0) + 0.1)
        app.chat(replay)
        app.flush()
        before, after = (receiver.attributes(s) for s in sorted(receiver.spans(), key=lambda s: s.start_time_unix_nano))
    assert before[ext.POLICY_RULE] == "temp-full" and "jane.doe@example.com" in before[gen_ai.INPUT_MESSAGES]
    assert ext.POLICY_RULE not in after and after[ext.CONTENT_MODE] == "redacted"
    assert "jane.doe@example.com" not in after[gen_ai.INPUT_MESSAGES]


def test_file_target_writes_otlp_json_lines(tmp_path: Path, replay: ReplayServer, make_app: Any) -> None:
    out = tmp_path / "traces" / "spans.jsonl"
    app = make_app(export_file=out)
    app.chat(replay)
    app.chat(replay)
    app.flush()
    lines = out.read_text().splitlines()
    spans = [
        s for line in lines for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
    ]
    assert len(spans) == 2
    for span in spans:
        assert len(span["traceId"]) == 32 and int(span["traceId"], 16)  # OTLP/JSON: hex ids
        attrs = {a["key"]: a["value"] for a in span["attributes"]}
        assert "[REDACTED:EMAIL]" in attrs[gen_ai.INPUT_MESSAGES]["stringValue"]
        assert attrs[ext.USAGE_COST]["doubleValue"] == pytest.approx(_expected_cost())


def test_enrichment_and_sending_run_with_instrumentation_suppressed(tmp_path: Path, replay: ReplayServer) -> None:
    """Whatever a transport does (an HTTP client some instrumentor patches...), it runs with OpenTelemetry's
    suppress-instrumentation keys set, so the exporter never traces its own exports."""
    from opentelemetry import context as otel_context

    from spyglass.exporter._transport import FileTransport

    seen: list[tuple[Any, Any]] = []

    class RecordingTransport(FileTransport):
        def send(self, payload: bytes, timeout: float) -> int:
            seen.append(
                (
                    otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY),
                    otel_context.get_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY),
                )
            )
            return super().send(payload, timeout)

    exporter = SpyglassSpanExporter(transport=RecordingTransport(tmp_path / "out.jsonl"))
    app = App(exporter)
    try:
        app.chat(replay)
        app.flush()
    finally:
        app.close()
    assert seen and all(flags == (True, True) for flags in seen)
    assert otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY) is None  # not leaked to the app


def test_exporter_http_calls_are_not_traced(replay: ReplayServer, make_app: Any) -> None:
    """The exporter's own HTTP export must not produce spans (no feedback loop), even with httpx instrumented."""
    from spyglass.instrumentation import HttpxInstrumentor

    with HttpReceiver() as receiver:
        app = make_app(endpoint=receiver.endpoint, protocol="http/protobuf")
        HttpxInstrumentor().instrument(tracer_provider=app.provider)
        try:
            app.chat(replay)
            app.flush()
            time.sleep(0.2)
            app.flush()
        finally:
            HttpxInstrumentor().uninstrument()
        names = [s.name for s in receiver.spans()]
    assert len(receiver.requests) == 1, names
    assert all("POST" not in n for n in names)
