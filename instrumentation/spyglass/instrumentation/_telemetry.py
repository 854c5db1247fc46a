"""The provider-neutral LM-call core: an invocation record, its CLIENT span and its metrics.

Contract
--------
Adapters (the OpenAI and Anthropic SDK instrumentors, the HTTP-level instrumentor) only translate their
library's arguments and responses into an :class:`LLMInvocation`; everything that touches OpenTelemetry is
here, so every LM call is recorded the same way::

    tel = LLMTelemetry(settings, scope="spyglass.instrumentation.openai", tracer_provider=tp, meter_provider=mp)

    inv = LLMInvocation("chat", "openai", request_model="gpt-4o", server_address="api.openai.com", server_port=443)
    inv.attributes[gen_ai.REQUEST_TEMPERATURE] = 0.2        # request parameters, semconv names
    span = tel.start(inv)                                   # CLIENT span "chat gpt-4o", sampling attributes set
    if tel.wants_content(span):                             # build messages only when they will be recorded
        inv.input_messages = [...]
    token = tel.activate(span)                              # span current + "an LLM span is active" flag
    try:
        result = call()
    except BaseException as exc:
        tel.deactivate(token)
        tel.finish(inv, span, exc)                          # ERROR status, error.type, exception event
        raise                                               # always the caller's exception, unchanged
    tel.deactivate(token)
    inv.response_id = ...; inv.input_tokens = ...           # or hand the stream to spyglass._stream
    tel.finish(inv, span)

- :meth:`LLMTelemetry.start` sets, at span start, the attributes a sampler needs: ``gen_ai.operation.name``,
  ``gen_ai.provider.name``, ``gen_ai.request.model``, ``server.address``, ``server.port`` (plus
  ``gen_ai.request.stream`` and whatever is in ``inv.attributes`` already).
- :meth:`LLMTelemetry.finish` ends the span **once** (a second call is ignored), sets response, usage and
  content attributes (content through :class:`~spyglass.instrumentation._content.ContentPolicy`), records
  ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``, and for streams
  ``gen_ai.client.operation.time_to_first_chunk`` / ``time_per_output_chunk``, and emits
  ``gen_ai.client.inference.operation.details`` when events are on. A failed call (an exception, or an
  ``error_type``) also emits ``gen_ai.client.operation.exception`` (WARN; request attributes, ``error.type``,
  ``exception.*``, no content) in every capture mode. A completion hook (:mod:`._hooks`), when configured,
  gets the messages, the span and the event record first, before the span ends and the content is recorded.
  It never raises: its own errors are logged once per kind and swallowed.
- :data:`LLM_SPAN_KEY` is set in the context while an LLM call runs under :meth:`activate`;
  :func:`llm_span_active` tells a lower layer (HTTP-level instrumentor, the SDK's own tracing) to stay silent,
  and a higher one (DSPy) that the call is already covered.
- Usage is normalised by the adapters: ``input_tokens`` includes cache reads and writes; the detail counts
  are subsets. Zero detail counts are not recorded. ``fetch_response`` never reports usage.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Histogram, MeterProvider, get_meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from spyglass.semconv import SCHEMA_URL, gen_ai
from spyglass.semconv import events as gen_ai_events
from spyglass.semconv import extensions as ext
from spyglass.semconv import metrics as gen_ai_metrics
from spyglass.semconv.values import INFERENCE_OPERATIONS, OperationName, TokenType

from ._config import Settings
from ._content import ContentPolicy
from ._context import install_context_processor
from ._histograms import record_points
from ._hooks import HookCaller, resolve_hook

_log = logging.getLogger("spyglass.instrumentation")

LLM_SPAN_KEY = otel_context.create_key("spyglass-llm-span")
"""Context key holding the active LLM span while an instrumented LM call runs."""

_FETCH_RESPONSE = OperationName.FETCH_RESPONSE.value
_INPUT = TokenType.INPUT.value
_OUTPUT = TokenType.OUTPUT.value
_OTHER = gen_ai.ERROR_TYPE_OTHER
_METRIC_ATTRIBUTE_SETS = 512
"""Metric attribute dicts kept per instrumentor (model x server x error type combinations seen)."""
_MetricAttributes = tuple[dict[str, AttributeValue], dict[str, AttributeValue], dict[str, AttributeValue]]


def llm_span_active(ctx: otel_context.Context | None = None) -> bool:
    """True inside an instrumented LM call (an LLM span already covers whatever runs now)."""
    return otel_context.get_value(LLM_SPAN_KEY, ctx) is not None


_logged: set[str] = set()


def log_once(what: str, exc: BaseException | None = None) -> None:
    """Log an instrumentation failure once per ``what`` (never raised into the application)."""
    if what in _logged:
        return
    _logged.add(what)
    _log.warning("spyglass instrumentation: %s failed; the call itself is unaffected", what, exc_info=exc)


_ERROR_TYPES: dict[type, str] = {}


def error_type_of(exc: BaseException) -> str:
    """Low-cardinality ``error.type``: the public, fully-qualified exception class (``openai.RateLimitError``)."""
    cls = type(exc)
    name = _ERROR_TYPES.get(cls)
    if name is None:
        module = cls.__module__ or ""
        if module == "builtins":
            name = cls.__qualname__
        else:
            # ``openai._exceptions`` -> ``openai``: the name users import the class by.
            trimmed: list[str] = []
            for p in module.split("."):
                if p.startswith("_"):
                    break
                trimmed.append(p)
            name = f"{'.'.join(trimmed) or module}.{cls.__qualname__}"
        _ERROR_TYPES[cls] = name
    return name


@dataclass(slots=True)
class LLMInvocation:
    """One LM call as seen by the caller (retries and the whole stream included). Attribute names are semconv."""

    operation: str
    provider: str
    request_model: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    streaming: bool = False
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    """Request parameters and any extra attributes, by semconv name (set before or after start)."""

    # Content: plain JSON-able structures in the GenAI message shapes (spyglass.semconv.messages).
    input_messages: list[Any] | None = None
    system_instructions: list[Any] | None = None
    tool_definitions: list[Any] | None = None
    output_messages: list[Any] | None = None

    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] | None = None
    conversation_id: str | None = None
    error_type: str | None = None
    """Set by an adapter when a response reports a failure without an exception (a 200 with an error body)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    time_to_first_chunk: float | None = None
    chunk_intervals: list[float] | None = None
    chunk_count: int | None = None

    start_time: float = 0.0
    """``time.perf_counter()`` at start; set by :meth:`LLMTelemetry.start`."""
    started_keys: int = 0
    """How many ``attributes`` the span got at start (later ones are set at finish)."""
    done: bool = False

    @property
    def span_name(self) -> str:
        return f"{self.operation} {self.request_model}" if self.request_model else self.operation


class LLMTelemetry:
    """Tracer, meter instruments and content policy for one instrumentor; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        scope: str,
        version: str = "",
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: Any = None,
        completion_hook: Any = None,
    ) -> None:
        self.settings = settings
        self.content = ContentPolicy.from_settings(settings)
        # Decided once: with a hook, content is gathered whatever the capture mode (util-genai's rule).
        self.hook: HookCaller | None = resolve_hook(completion_hook, settings.completion_hook)
        if self.hook is not None:
            self.content = dataclasses.replace(self.content, hooked=True)
        self.tracer = trace.get_tracer(scope, version, tracer_provider, schema_url=SCHEMA_URL)
        # using_attributes() reaches every LLM span through this processor (added once per provider).
        install_context_processor(tracer_provider or trace.get_tracer_provider())
        meter = get_meter(scope, version, meter_provider, schema_url=SCHEMA_URL)
        buckets = list(gen_ai_metrics.DURATION_BUCKETS)
        self.duration: Histogram = meter.create_histogram(
            gen_ai_metrics.CLIENT_OPERATION_DURATION,
            unit=gen_ai_metrics.UNIT_SECONDS,
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.token_usage: Histogram = meter.create_histogram(
            gen_ai_metrics.CLIENT_TOKEN_USAGE,
            unit=gen_ai_metrics.UNIT_TOKENS,
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(gen_ai_metrics.TOKEN_BUCKETS),
        )
        self.ttfc: Histogram = meter.create_histogram(
            gen_ai_metrics.CLIENT_TIME_TO_FIRST_CHUNK,
            unit=gen_ai_metrics.UNIT_SECONDS,
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.tpoc: Histogram = meter.create_histogram(
            gen_ai_metrics.CLIENT_TIME_PER_OUTPUT_CHUNK,
            unit=gen_ai_metrics.UNIT_SECONDS,
            description="Time between consecutive chunks of a streamed response",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self._metric_attrs: dict[tuple[Any, ...], _MetricAttributes] = {}
        self._event_logger: Any = None
        self._exception_logger: Any = None
        try:
            from opentelemetry._logs import get_logger

            # The exception event carries no content: emitted on every failure, whatever the capture mode.
            self._exception_logger = get_logger(scope, version, logger_provider, schema_url=SCHEMA_URL)
            if settings.emit_event:
                self._event_logger = self._exception_logger
        except Exception as exc:  # logs API missing or broken: no events, spans still work
            log_once("creating the event logger", exc)

    # --- span lifecycle -------------------------------------------------------------------------
    def start(self, inv: LLMInvocation) -> Span:
        """Start the CLIENT span with the sampling-relevant attributes (and request attributes so far)."""
        attrs = inv.attributes
        attrs[gen_ai.OPERATION_NAME] = inv.operation
        attrs[gen_ai.PROVIDER_NAME] = inv.provider
        if inv.request_model:
            attrs[gen_ai.REQUEST_MODEL] = inv.request_model
        if inv.server_address:
            attrs[gen_ai.SERVER_ADDRESS] = inv.server_address
            if inv.server_port:
                attrs[gen_ai.SERVER_PORT] = inv.server_port
        if inv.streaming:
            attrs[gen_ai.REQUEST_STREAM] = True
        if inv.conversation_id:
            attrs[gen_ai.CONVERSATION_ID] = inv.conversation_id
        inv.started_keys = len(attrs)
        inv.start_time = time.perf_counter()
        return self.tracer.start_span(inv.span_name, kind=SpanKind.CLIENT, attributes=attrs)

    def wants_content(self, span: Span) -> bool:
        """Whether message content will be recorded for this span (build messages only then)."""
        c = self.content
        return (
            (c.on_span and span.is_recording())
            or (c.on_event and self._event_logger is not None)
            or self.hook is not None  # hooks run whatever the sampling decision
        )

    @staticmethod
    def activate(span: Span) -> object:
        """Make ``span`` current and mark "an LLM span is active"; returns the token for :meth:`deactivate`."""
        ctx = trace.set_span_in_context(span)
        return otel_context.attach(otel_context.set_value(LLM_SPAN_KEY, span, ctx))

    @staticmethod
    def deactivate(token: object) -> None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception as exc:
            log_once("detaching the context", exc)

    @staticmethod
    def run(
        span: Span, on_error: Callable[[BaseException], None], fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> Any:
        """Call ``fn`` with ``span`` active; on any exception call ``on_error`` (which ends the span) and
        re-raise it unchanged. The context is detached before anything else runs, on both paths."""
        token = LLMTelemetry.activate(span)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            LLMTelemetry.deactivate(token)
            on_error(exc)
            raise
        LLMTelemetry.deactivate(token)
        return result

    @staticmethod
    async def arun(
        span: Span, on_error: Callable[[BaseException], None], fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> Any:
        """:meth:`run` for a coroutine function: awaited inside the attached context."""
        token = LLMTelemetry.activate(span)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            LLMTelemetry.deactivate(token)
            on_error(exc)
            raise
        LLMTelemetry.deactivate(token)
        return result

    def finish(
        self,
        inv: LLMInvocation,
        span: Span,
        error: BaseException | None = None,
        *,
        error_type: str | None = None,
    ) -> None:
        """End the span (once), record metrics and the optional event. Never raises."""
        if inv.done:
            return
        inv.done = True
        duration = time.perf_counter() - inv.start_time
        if error is not None and error_type is None:
            error_type = error_type_of(error)
        if error_type is None:
            error_type = inv.error_type
        try:
            recording = span.is_recording()
            attrs: dict[str, AttributeValue] = {}
            if recording or self._event_logger is not None:
                self._response_attributes(inv, attrs, error_type)
            record = self._event_record(inv, span, attrs) if self._event_logger is not None else None
            if self.hook is not None:
                # Before the content is recorded: a hook may change the messages or add references.
                self.hook(
                    inv.input_messages, inv.output_messages, inv.system_instructions, inv.tool_definitions, span, record
                )
            if recording:
                if self.content.on_span:
                    self._content_attributes(inv, attrs)
                span.set_attributes(attrs)
                if error is not None:
                    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                    span.record_exception(error)
                elif error_type is not None:
                    span.set_status(Status(StatusCode.ERROR, error_type))
            if record is not None:
                self._event_logger.emit(record)
            if error_type is not None and self._exception_logger is not None:
                self._emit_exception(inv, span, error, error_type)
        except Exception as exc:
            log_once("recording the LLM span", exc)
        finally:
            try:
                span.end()
            except Exception as exc:
                log_once("ending the LLM span", exc)
        try:
            self._record_metrics(inv, duration, error_type)
        except Exception as exc:
            log_once("recording GenAI metrics", exc)

    # --- pieces ---------------------------------------------------------------------------------
    @staticmethod
    def _response_attributes(inv: LLMInvocation, attrs: dict[str, AttributeValue], error_type: str | None) -> None:
        # Only what the span did not get at start: re-setting request attributes costs a validation each.
        if len(inv.attributes) > inv.started_keys:
            for key, value in islice(inv.attributes.items(), inv.started_keys, None):
                attrs[key] = value
        if inv.response_id:
            attrs[gen_ai.RESPONSE_ID] = inv.response_id
        if inv.response_model:
            attrs[gen_ai.RESPONSE_MODEL] = inv.response_model
        if inv.finish_reasons:
            attrs[gen_ai.RESPONSE_FINISH_REASONS] = inv.finish_reasons
        if inv.conversation_id:
            attrs[gen_ai.CONVERSATION_ID] = inv.conversation_id
        if inv.operation != _FETCH_RESPONSE:
            if inv.input_tokens is not None:
                attrs[gen_ai.USAGE_INPUT_TOKENS] = inv.input_tokens
            if inv.output_tokens is not None:
                attrs[gen_ai.USAGE_OUTPUT_TOKENS] = inv.output_tokens
            if inv.cache_read_tokens:
                attrs[gen_ai.USAGE_CACHE_READ_INPUT_TOKENS] = inv.cache_read_tokens
            if inv.cache_write_tokens:
                attrs[gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS] = inv.cache_write_tokens
            if inv.reasoning_tokens:
                attrs[gen_ai.USAGE_REASONING_OUTPUT_TOKENS] = inv.reasoning_tokens
        if inv.time_to_first_chunk is not None:
            attrs[gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK] = inv.time_to_first_chunk
        if inv.chunk_count is not None:
            attrs[ext.STREAM_CHUNK_COUNT] = inv.chunk_count
        if error_type is not None:
            attrs[gen_ai.ERROR_TYPE] = error_type

    def _content_attributes(self, inv: LLMInvocation, attrs: dict[str, AttributeValue]) -> None:
        encode = self.content.encode
        truncated: list[str] = []
        for key, value in (
            (gen_ai.INPUT_MESSAGES, inv.input_messages),
            (gen_ai.SYSTEM_INSTRUCTIONS, inv.system_instructions),
            (gen_ai.TOOL_DEFINITIONS, inv.tool_definitions),
            (gen_ai.OUTPUT_MESSAGES, inv.output_messages),
        ):
            if value:
                text, cut = encode(value)
                attrs[key] = text
                if cut:
                    truncated.append(key)
        if truncated:
            attrs[ext.CONTENT_TRUNCATED] = truncated

    def _event_record(self, inv: LLMInvocation, span: Span, attrs: dict[str, AttributeValue]) -> Any:
        """The ``gen_ai.client.inference.operation.details`` record (emitted after the hook saw it)."""
        from opentelemetry._logs import LogRecord

        merged = {**inv.attributes, **attrs}
        event_attrs: dict[str, Any] = {k: v for k, v in merged.items() if k not in gen_ai.CONTENT_ATTRIBUTES}
        if self.content.on_event:
            for key, value in (
                (gen_ai.INPUT_MESSAGES, inv.input_messages),
                (gen_ai.SYSTEM_INSTRUCTIONS, inv.system_instructions),
                (gen_ai.TOOL_DEFINITIONS, inv.tool_definitions),
                (gen_ai.OUTPUT_MESSAGES, inv.output_messages),
            ):
                if value:
                    # Structured on events (AnyValue), size-limited by the same policy.
                    text, _ = self.content.encode(value)
                    event_attrs[key] = _json_loads(text)
        return LogRecord(
            event_name=gen_ai_events.INFERENCE_OPERATION_DETAILS,
            attributes=event_attrs,
            context=trace.set_span_in_context(span),
        )

    def _emit_exception(self, inv: LLMInvocation, span: Span, error: BaseException | None, error_type: str) -> None:
        """``gen_ai.client.operation.exception`` (WARN): the request attributes, ``error.type`` and
        ``exception.*``; for a failure reported without an exception (an error body, an abandoned stream)
        ``exception.type`` is the ``error.type``. Never content."""
        from opentelemetry._logs import SeverityNumber

        attrs: dict[str, Any] = {k: v for k, v in inv.attributes.items() if k not in gen_ai.CONTENT_ATTRIBUTES}
        if inv.response_model:
            attrs[gen_ai.RESPONSE_MODEL] = inv.response_model
        if inv.response_id:
            attrs[gen_ai.RESPONSE_ID] = inv.response_id
        attrs[gen_ai.ERROR_TYPE] = error_type
        if error is None:
            attrs[gen_ai.EXCEPTION_TYPE] = error_type
        else:
            cls = type(error)
            module = cls.__module__
            # The same spelling as the span's own exception event (SDK Span.record_exception).
            attrs[gen_ai.EXCEPTION_TYPE] = (
                f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__
            )
            attrs[gen_ai.EXCEPTION_MESSAGE] = str(error)
            attrs[gen_ai.EXCEPTION_STACKTRACE] = "".join(traceback.format_exception(error))
        self._exception_logger.emit(
            event_name=gen_ai_events.CLIENT_OPERATION_EXCEPTION,
            severity_number=SeverityNumber(gen_ai_events.CLIENT_OPERATION_EXCEPTION_SEVERITY),
            severity_text="WARN",
            attributes=attrs,
            context=trace.set_span_in_context(span),
        )

    def _metric_attributes(self, inv: LLMInvocation, error_type: str | None) -> _MetricAttributes:
        """The metric attribute dicts (all points, input tokens, output tokens), one set per combination.

        Kept and reused, never changed: :mod:`._histograms` recognises a dict by identity.
        """
        key = (
            inv.operation,
            inv.provider,
            inv.request_model,
            inv.response_model,
            inv.server_address,
            inv.server_port,
            error_type,
        )
        kept = self._metric_attrs.get(key)
        if kept is not None:
            return kept
        m: dict[str, AttributeValue] = {
            gen_ai.OPERATION_NAME: inv.operation,
            gen_ai.PROVIDER_NAME: inv.provider,
        }
        if inv.request_model:
            m[gen_ai.REQUEST_MODEL] = inv.request_model
        if inv.response_model:
            m[gen_ai.RESPONSE_MODEL] = inv.response_model
        if inv.server_address:
            m[gen_ai.SERVER_ADDRESS] = inv.server_address
            if inv.server_port:
                m[gen_ai.SERVER_PORT] = inv.server_port
        if error_type is not None:
            m[gen_ai.ERROR_TYPE] = error_type
        kept = (m, {**m, gen_ai.TOKEN_TYPE: _INPUT}, {**m, gen_ai.TOKEN_TYPE: _OUTPUT})
        if len(self._metric_attrs) >= _METRIC_ATTRIBUTE_SETS:
            self._metric_attrs.clear()
        self._metric_attrs[key] = kept
        return kept

    def _record_metrics(self, inv: LLMInvocation, duration: float, error_type: str | None) -> None:
        m, m_input, m_output = self._metric_attributes(inv, error_type)
        # Through _histograms: the same data points as Histogram.record, at a fraction of its cost.
        points: list[tuple[Histogram, Sequence[float], dict[str, AttributeValue]]] = [(self.duration, (duration,), m)]
        if inv.operation != _FETCH_RESPONSE and error_type is None:
            if inv.input_tokens is not None:
                points.append((self.token_usage, (inv.input_tokens,), m_input))
            if inv.output_tokens is not None and inv.operation in INFERENCE_OPERATIONS:
                points.append((self.token_usage, (inv.output_tokens,), m_output))
        if inv.streaming:
            if inv.time_to_first_chunk is not None:
                points.append((self.ttfc, (inv.time_to_first_chunk,), m))
            if inv.chunk_intervals:
                points.append((self.tpoc, inv.chunk_intervals, m))
        record_points(points)


def _json_loads(text: str) -> Any:
    import json

    return json.loads(text)
