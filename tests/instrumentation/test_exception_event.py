"""The ``gen_ai.client.operation.exception`` event: one per failed LM call (recorded 4xx through both SDKs, a
server error in the middle of a stream, an abandoned stream), on the LLM span's trace and span, with the
SDK's exception reaching the application unchanged; none for a successful call; emitted in every capture
mode, since it carries no content."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from spyglass.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor
from spyglass.semconv import events as gen_ai_events
from spyglass.semconv import gen_ai
from tests.conftest import Telemetry, recording

from .llm_support import anthropic_client, llm_spans, openai_client
from .test_streams import _recording as stream_recording
from .test_streams import _run as run_stream

OPENAI_404 = "openai__chat-completions__nostream__async-chat-completion-404__i0"
ANTHROPIC_400 = "anthropic__messages__nostream__anthropic-explicit-effort-xhigh-unsupported-model-errors__i0"
CHAT = "openai__chat-completions__nostream__chat__i1"


class Logged:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider()
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))

    def events(self, name: str = gen_ai_events.CLIENT_OPERATION_EXCEPTION) -> list[Any]:
        return [r.log_record for r in self.exporter.get_finished_logs() if r.log_record.event_name == name]


def _instrument(t: Telemetry, logger_provider: LoggerProvider, **kwargs: Any) -> None:
    for inst in (OpenAIInstrumentor(), AnthropicInstrumentor()):
        inst.instrument(
            tracer_provider=t.tracer_provider,
            meter_provider=t.meter_provider,
            logger_provider=logger_provider,
            **kwargs,
        )


@pytest.fixture
def logged(telemetry: Telemetry) -> Iterator[Logged]:
    lg = Logged(telemetry)
    _instrument(telemetry, lg.provider)
    yield lg
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    lg.provider.shutdown()


def _call(rec: Any, replay: Any) -> Any:
    replay.expect(rec)
    if rec.provider == "anthropic":
        return anthropic_client(replay).messages.create(**rec.request_body)
    return openai_client(replay).chat.completions.create(**rec.request_body)


def _check_event(lg: Logged, exc: BaseException | None, error_type: str) -> Any:
    [span] = llm_spans(lg.telemetry)
    [event] = lg.events()
    assert event.severity_number is SeverityNumber.WARN
    assert event.severity_number.value == gen_ai_events.CLIENT_OPERATION_EXCEPTION_SEVERITY
    assert event.trace_id == span.context.trace_id
    assert event.span_id == span.context.span_id
    attrs = dict(event.attributes or {})
    assert attrs[gen_ai.ERROR_TYPE] == span.attributes[gen_ai.ERROR_TYPE] == error_type
    for key in (gen_ai.OPERATION_NAME, gen_ai.PROVIDER_NAME, gen_ai.REQUEST_MODEL, gen_ai.SERVER_ADDRESS):
        assert attrs[key] == span.attributes[key]
    assert not set(attrs) & set(gen_ai.CONTENT_ATTRIBUTES)
    if exc is not None:
        # The same exception the span recorded, described the same way.
        [span_exc] = [e for e in span.events if e.name == "exception"]
        assert attrs[gen_ai.EXCEPTION_TYPE] == span_exc.attributes["exception.type"]
        assert attrs[gen_ai.EXCEPTION_TYPE] == f"{type(exc).__module__}.{type(exc).__qualname__}"
        assert attrs[gen_ai.EXCEPTION_MESSAGE] == str(exc)
        assert type(exc).__name__ in attrs[gen_ai.EXCEPTION_STACKTRACE]
    return attrs


@pytest.mark.parametrize(
    ("name", "sdk_error"), [(OPENAI_404, openai.NotFoundError), (ANTHROPIC_400, anthropic.BadRequestError)]
)
def test_recorded_4xx(name: str, sdk_error: type[Exception], replay: Any, logged: Logged) -> None:
    rec = recording(name)
    with suppress_instrumentation(), pytest.raises(sdk_error) as bare:
        _call(rec, replay)
    assert list(logged.exporter.get_finished_logs()) == []
    with pytest.raises(sdk_error) as seen:
        _call(rec, replay)
    assert type(seen.value) is type(bare.value)
    assert str(seen.value) == str(bare.value) and seen.value.body == bare.value.body  # type: ignore[attr-defined]
    attrs = _check_event(logged, seen.value, f"{rec.provider}.{sdk_error.__name__}")
    assert attrs[gen_ai.REQUEST_MODEL] == rec.request_body["model"]


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_mid_stream_error(provider: str, aio: bool, replay: Any, logged: Logged) -> None:
    rec = stream_recording(provider, "server_error")
    with suppress_instrumentation():
        baseline, baseline_error = run_stream(provider, aio, replay, rec, "server_error")
    seen, error = run_stream(provider, aio, replay, rec, "server_error")
    assert seen == baseline and len(seen) > 0
    assert error is not None and type(error) is type(baseline_error) and str(error) == str(baseline_error)
    _check_event(logged, error, f"{provider}.{type(error).__name__}")


def test_abandoned_stream_has_an_event_without_an_exception(replay: Any, logged: Logged) -> None:
    rec = stream_recording("openai", "abandon")
    run_stream("openai", False, replay, rec, "abandon")
    attrs = _check_event(logged, None, "spyglass.stream_abandoned")
    assert attrs[gen_ai.EXCEPTION_TYPE] == "spyglass.stream_abandoned"
    assert gen_ai.EXCEPTION_STACKTRACE not in attrs


def test_no_event_for_a_successful_call(replay: Any, logged: Logged) -> None:
    _call(recording(CHAT), replay)
    assert len(llm_spans(logged.telemetry)) == 1
    assert logged.events() == []


@pytest.mark.parametrize("mode", ["NO_CONTENT", "EVENT_ONLY"])
def test_emitted_in_every_capture_mode(mode: str, replay: Any, telemetry: Telemetry) -> None:
    lg = Logged(telemetry)
    _instrument(telemetry, lg.provider, capture_content=mode)
    try:
        rec = recording(OPENAI_404)
        replay.expect(rec)
        client = openai_client(replay, aio=True)
        with pytest.raises(openai.NotFoundError) as seen:
            asyncio.run(client.chat.completions.create(**rec.request_body))
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
    _check_event(lg, seen.value, "openai.NotFoundError")
    details = lg.events(gen_ai_events.INFERENCE_OPERATION_DETAILS)
    assert len(details) == (1 if mode == "EVENT_ONLY" else 0)
