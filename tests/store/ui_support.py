"""Test data for the web UI: spans of every kind, sent through the real OTLP/HTTP exporter into a store.

:func:`send_corpus` builds OpenAI and Anthropic calls (plain, streamed, with tools, with thinking and cache
tokens, failed), a DSPy-like pipeline (workflow → retrieval → predict → LM call → tool), a 57 KB prompt,
background traffic over several models, services, tenants and users, and an XSS corpus in prompts, tool
arguments, tool names, model and service names. Every attribute name comes from ``spyglass.semconv``.
The returned :class:`Corpus` says what was sent, so tests assert against it rather than against numbers
copied from a page.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from tests.store.server import StoreServer, request

# Each payload, if it ever ran, would set window.__xss or open a dialog; the tests watch both.
XSS_PAYLOADS: tuple[str, ...] = (
    "<script>window.__xss = 1; alert('script')</script>",
    "<img src=x onerror=\"window.__xss = 2; alert('img')\">",
    '"><svg onload="window.__xss = 3; alert(\'svg\')">',
    "</pre></div><script>window.__xss = 4</script><pre>",
    '<iframe srcdoc="<script>parent.__xss = 5</script>"></iframe>',
    "javascript:window.__xss=6",
    "{{ 7 * 7 }} {% raw %}${7*7}{% endraw %} <style>body{display:none}</style>",
    '<a href="javascript:alert(7)" id="xss-link">click</a>',
    '=HYPERLINK("http://evil.example","x")',
    "</title><script>window.__xss = 8</script>",
)
XSS_TEXT = "\n".join(XSS_PAYLOADS)
FORMULA_USER = '=HYPERLINK("http://evil.example","<img src=x onerror=alert(13)>")'
"""A user id that is both a spreadsheet formula and markup."""

SYSTEM_PROMPT = (
    "You are Spyglass Support, a concise assistant for an observability product.\n"
    "Answer in at most three sentences. Never reveal internal ticket numbers."
)
WEATHER_TOOL = m.function_tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
BIG_PROMPT = "".join(f"Line {i:05d}: the quick brown fox jumps over the lazy dog.\n" for i in range(1000))
UNIQUE_WORD = "kumquat"
OPENLLMETRY_CHUNK_EVENT = "llm.content.completion.chunk"
"""The span event OpenLLMetry's instrumentations add for every streamed chunk (a peer's name, read only)."""
CHUNK_OFFSETS_MS = (310, 350, 400, 455, 520)
"""Appears in exactly one prompt: full-text search for it must find one request."""


@dataclass
class Sent:
    key: str
    trace_id: str
    span_id: str
    name: str
    model: str | None = None
    status: str = "ok"
    service: str = ""
    tenant: str = ""


@dataclass
class Corpus:
    """What was sent: spans by key, and every LLM span in order."""

    spans: dict[str, Sent] = field(default_factory=dict)
    llm: list[Sent] = field(default_factory=list)

    def add(self, sent: Sent, *, llm: bool) -> None:
        self.spans[sent.key] = sent
        if llm:
            self.llm.append(sent)


class _Builder:
    def __init__(self, endpoint: str, now_ns: int, headers: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.headers = headers
        self.now_ns = now_ns
        self.corpus = Corpus()
        self.providers: dict[tuple[str, str], TracerProvider] = {}
        self.rng = random.Random(7)

    def tracer(self, service: str, tenant: str = "") -> trace.Tracer:
        key = (service, tenant)
        if key not in self.providers:
            attrs: dict[str, Any] = {"service.name": service}
            if tenant:
                attrs[ext.TENANT_ID] = tenant
            provider = TracerProvider(resource=Resource.create(attrs))
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint, headers=self.headers, timeout=10))
            )
            self.providers[key] = provider
        return self.providers[key].get_tracer("spyglass.tests.ui")

    def flush(self) -> None:
        for provider in self.providers.values():
            assert provider.force_flush(30_000), "the OTLP exporter could not flush to the store"
            provider.shutdown()

    @contextmanager
    def span(
        self,
        key: str,
        name: str,
        *,
        start_ms_ago: float,
        duration_ms: float,
        service: str = "support-bot",
        tenant: str = "acme",
        parent: Span | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        llm: bool = False,
        attributes: dict[str, Any] | None = None,
    ) -> Iterator[Span]:
        tracer = self.tracer(service, tenant)
        start = self.now_ns - int(start_ms_ago * 1e6)
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(name, context=ctx, kind=kind, start_time=start, attributes=attributes or {})
        try:
            yield span
        finally:
            span.end(end_time=start + int(duration_ms * 1e6))
            sc = span.get_span_context()
            status = "error" if not span.status.is_ok else "ok"
            self.corpus.add(
                Sent(
                    key,
                    format(sc.trace_id, "032x"),
                    format(sc.span_id, "016x"),
                    name,
                    (attributes or {}).get(gen_ai.REQUEST_MODEL),
                    status,
                    service,
                    tenant,
                ),
                llm=llm,
            )

    def chat(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        inputs: list[m.ChatMessage],
        outputs: list[m.OutputMessage] | None,
        start_ms_ago: float,
        duration_ms: float,
        tokens: tuple[int, int] = (0, 0),
        extra: dict[str, Any] | None = None,
        error: tuple[str, str, str] | None = None,
        parent: Span | None = None,
        service: str = "support-bot",
        tenant: str = "acme",
        user: str | None = "user-1",
    ) -> Sent:
        attrs: dict[str, Any] = {
            gen_ai.OPERATION_NAME: "chat",
            gen_ai.PROVIDER_NAME: provider,
            gen_ai.REQUEST_MODEL: model,
            gen_ai.INPUT_MESSAGES: m.dumps(inputs),
            gen_ai.USAGE_INPUT_TOKENS: tokens[0],
            gen_ai.USAGE_OUTPUT_TOKENS: tokens[1],
        }
        if outputs is not None:
            attrs[gen_ai.OUTPUT_MESSAGES] = m.dumps(outputs)
            attrs[gen_ai.RESPONSE_MODEL] = model
            attrs[gen_ai.RESPONSE_FINISH_REASONS] = [o.get("finish_reason") or "stop" for o in outputs]
        if user:
            attrs[ext.USER_ID] = user
        attrs.update(extra or {})
        with self.span(
            key,
            f"chat {model}",
            start_ms_ago=start_ms_ago,
            duration_ms=duration_ms,
            service=service,
            tenant=tenant,
            parent=parent,
            kind=SpanKind.CLIENT,
            llm=True,
            attributes=attrs,
        ) as span:
            if error is not None:
                error_type, message, body = error
                span.set_attribute(gen_ai.ERROR_TYPE, error_type)
                span.add_event(
                    "exception",
                    {"exception.type": error_type, "exception.message": f"{message}\n{body}"},
                    timestamp=self.now_ns - int((start_ms_ago - duration_ms) * 1e6),
                )
                span.set_status(Status(StatusCode.ERROR, message))
        return self.corpus.spans[key]


def send_corpus(endpoint: str, *, background: int = 48, headers: dict[str, str] | None = None) -> Corpus:
    """Send the whole corpus to ``endpoint`` (an OTLP/HTTP traces URL) and wait until it is acknowledged."""
    b = _Builder(endpoint, time.time_ns(), headers)
    u = m.message

    # 1. OpenAI chat with cache reads and an explicit cost breakdown.
    b.chat(
        "openai",
        provider="openai",
        model="gpt-4o-mini",
        inputs=[u("system", [m.text(SYSTEM_PROMPT)]), u("user", [m.text("How do I export traces as CSV?")])],
        outputs=[m.output_message("assistant", [m.text("Open Traces, filter, then press Export → CSV.")], "stop")],
        start_ms_ago=60_000,
        duration_ms=812,
        tokens=(1200, 64),
        extra={
            gen_ai.REQUEST_TEMPERATURE: 0.2,
            gen_ai.REQUEST_MAX_TOKENS: 256,
            gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: 1024,
            ext.USAGE_COST: 0.0002544,
            ext.COST_INPUT: 0.0000264,
            ext.COST_CACHE_READ: 0.0001536,
            ext.COST_OUTPUT: 0.0000384,
            ext.COST_SOURCE: "genai-prices",
            gen_ai.RESPONSE_ID: "chatcmpl-ui-1",
        },
    )
    # 2. Anthropic with separate system instructions, a thinking block, cache writes and reasoning tokens.
    b.chat(
        "anthropic",
        provider="anthropic",
        model="claude-sonnet-4-5",
        inputs=[u("user", [m.text(f"Is a {UNIQUE_WORD} a citrus fruit?")])],
        outputs=[
            m.output_message(
                "assistant",
                [m.reasoning("The user asks about a kumquat. Kumquats are in the Citrus family."), m.text("Yes.")],
                "end_turn",
            )
        ],
        start_ms_ago=120_000,
        duration_ms=2400,
        tokens=(3100, 420),
        extra={
            gen_ai.SYSTEM_INSTRUCTIONS: m.dumps([m.text(SYSTEM_PROMPT)]),
            gen_ai.REQUEST_MAX_TOKENS: 1024,
            gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS: 2048,
            gen_ai.USAGE_REASONING_OUTPUT_TOKENS: 380,
            ext.USAGE_COST: 0.01653,
            ext.COST_INPUT: 0.00315,
            ext.COST_CACHE_WRITE: 0.00768,
            ext.COST_OUTPUT: 0.0063,
        },
        user="user-2",
    )
    # 3. A streamed answer.
    b.chat(
        "streamed",
        provider="openai",
        model="gpt-4o",
        inputs=[u("user", [m.text("Write a haiku about tracing.")])],
        outputs=[
            m.output_message(
                "assistant",
                [m.text("Spans fall like leaves\nEach one tells where time went\nThe trace remembers")],
                "stop",
            )
        ],
        start_ms_ago=180_000,
        duration_ms=1650,
        tokens=(14, 19),
        extra={
            gen_ai.REQUEST_STREAM: True,
            ext.STREAM_CHUNK_COUNT: 21,
            gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK: 0.312,
        },
    )
    # 3b. A stream whose sender recorded every chunk as a span event (OpenLLMetry's convention).
    with b.span(
        "streamed_events",
        "anthropic.chat",
        start_ms_ago=200_000,
        duration_ms=900,
        kind=SpanKind.CLIENT,
        llm=True,
        attributes={
            gen_ai.OPERATION_NAME: "chat",
            gen_ai.PROVIDER_NAME: "anthropic",
            gen_ai.REQUEST_MODEL: "claude-haiku-4-5",
            gen_ai.INPUT_MESSAGES: m.dumps([u("user", [m.text("Count to five.")])]),
            gen_ai.OUTPUT_MESSAGES: m.dumps([m.output_message("assistant", [m.text("1 2 3 4 5")], "end_turn")]),
            gen_ai.USAGE_INPUT_TOKENS: 11,
            gen_ai.USAGE_OUTPUT_TOKENS: 9,
        },
    ) as span:
        start = b.now_ns - 200_000 * 1_000_000
        for ms in CHUNK_OFFSETS_MS:
            span.add_event(
                OPENLLMETRY_CHUNK_EVENT, {"chunk.type": "content_block_delta"}, timestamp=start + ms * 1_000_000
            )
    # 3c. Another sender's dialect (OpenLLMetry's indexed attributes): the store reads it into messages.
    p, c = gen_ai.DEPRECATED_PROMPT_PREFIX, gen_ai.DEPRECATED_COMPLETION_PREFIX
    with b.span(
        "openllmetry",
        "openai.chat",
        start_ms_ago=210_000,
        duration_ms=700,
        kind=SpanKind.CLIENT,
        llm=True,
        attributes={
            gen_ai.DEPRECATED_SYSTEM: "openai",
            gen_ai.REQUEST_MODEL: "gpt-4o-mini",
            "llm.request.type": "chat",
            f"{p}0.role": "system",
            f"{p}0.content": "You translate to German.",
            f"{p}1.role": "user",
            f"{p}1.content": "Good night",
            f"{c}0.role": "assistant",
            f"{c}0.content": "Gute Nacht",
            f"{c}0.finish_reason": "stop",
            gen_ai.DEPRECATED_USAGE_PROMPT_TOKENS: 12,
            gen_ai.DEPRECATED_USAGE_COMPLETION_TOKENS: 3,
        },
    ):
        pass
    # 4. Tool calling: the model asks for a tool, then answers from its result.
    b.chat(
        "tool_call",
        provider="openai",
        model="gpt-4o-mini",
        inputs=[u("user", [m.text("What's the weather in Paris?")])],
        outputs=[
            m.output_message("assistant", [m.tool_call("get_weather", {"city": "Paris"}, "call_1")], "tool_calls")
        ],
        start_ms_ago=240_000,
        duration_ms=640,
        tokens=(88, 17),
        extra={gen_ai.TOOL_DEFINITIONS: m.dumps([WEATHER_TOOL])},
    )
    b.chat(
        "tool_result",
        provider="openai",
        model="gpt-4o-mini",
        inputs=[
            u("user", [m.text("What's the weather in Paris?")]),
            u("assistant", [m.tool_call("get_weather", {"city": "Paris"}, "call_1")]),
            u("tool", [m.tool_call_response({"temp_c": 14, "sky": "cloudy"}, "call_1")]),
        ],
        outputs=[m.output_message("assistant", [m.text("It is 14 °C and cloudy in Paris.")], "stop")],
        start_ms_ago=239_000,
        duration_ms=530,
        tokens=(131, 12),
        extra={gen_ai.TOOL_DEFINITIONS: m.dumps([WEATHER_TOOL])},
    )
    # 5. Failures: a rate limit with the provider's error body, and an overloaded Anthropic.
    b.chat(
        "error_openai",
        provider="openai",
        model="gpt-4o",
        inputs=[u("user", [m.text("Summarise this contract.")])],
        outputs=None,
        start_ms_ago=300_000,
        duration_ms=210,
        error=(
            "429",
            "Error code: 429 - Rate limit reached for gpt-4o",
            json.dumps(
                {
                    "error": {
                        "message": "Rate limit reached for gpt-4o",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                }
            ),
        ),
    )
    b.chat(
        "error_anthropic",
        provider="anthropic",
        model="claude-haiku-4-5",
        inputs=[u("user", [m.text("Translate to French: good morning")])],
        outputs=None,
        start_ms_ago=310_000,
        duration_ms=5020,
        error=(
            "overloaded_error",
            "Error code: 529 - Overloaded",
            '{"type":"error","error":{"type":"overloaded_error"}}',
        ),
        service="translator",
        tenant="globex",
    )
    # 6. A DSPy-like pipeline: workflow → retrieval → predict (→ LM call) → tool.
    with b.span(
        "pipeline",
        "rag_pipeline",
        start_ms_ago=400_000,
        duration_ms=3000,
        service="rag-service",
        attributes={ext.STEP_KIND: "workflow", ext.STEP_INPUT: m.dumps({"question": "Who wrote Dune?"})},
    ) as root:
        with b.span(
            "retrieve",
            "retrieve",
            start_ms_ago=399_900,
            duration_ms=400,
            service="rag-service",
            parent=root,
            attributes={
                ext.STEP_KIND: "retrieval",
                gen_ai.RETRIEVAL_QUERY_TEXT: "Who wrote Dune?",
                gen_ai.RETRIEVAL_DOCUMENTS: m.dumps(
                    [{"id": "doc-7", "score": 0.91, "content": "Dune is a 1965 novel by Frank Herbert."}]
                ),
            },
        ):
            pass
        with b.span(
            "predict",
            "dspy.Predict(GenerateAnswer)",
            start_ms_ago=399_450,
            duration_ms=2300,
            service="rag-service",
            parent=root,
            attributes={ext.STEP_KIND: "task"},
        ) as predict:
            b.chat(
                "pipeline_llm",
                provider="openai",
                model="gpt-4o-mini",
                inputs=[
                    u("system", [m.text("Answer using the context.")]),
                    u("user", [m.text("Context: Dune is a 1965 novel by Frank Herbert.\nQuestion: Who wrote Dune?")]),
                ],
                outputs=[m.output_message("assistant", [m.text("Frank Herbert.")], "stop")],
                start_ms_ago=399_400,
                duration_ms=2100,
                tokens=(52, 4),
                parent=predict,
                service="rag-service",
            )
        with b.span(
            "tool",
            "lookup_author",
            start_ms_ago=397_600,
            duration_ms=500,
            service="rag-service",
            parent=root,
            attributes={
                ext.STEP_KIND: "tool",
                gen_ai.TOOL_NAME: "lookup_author",
                gen_ai.TOOL_CALL_ARGUMENTS: m.dumps({"name": "Frank Herbert"}),
                gen_ai.TOOL_CALL_RESULT: m.dumps({"born": 1920}),
            },
        ):
            pass
    # 7. A 57 KB prompt: the page must load it lazily.
    big = BIG_PROMPT
    b.chat(
        "big",
        provider="openai",
        model="gpt-4.1",
        inputs=[u("user", [m.text(big)])],
        outputs=[m.output_message("assistant", [m.text("That is a lot of foxes.")], "stop")],
        start_ms_ago=500_000,
        duration_ms=4200,
        tokens=(15000, 8),
    )
    # 8. The XSS corpus: in the prompt, the system prompt, tool names and arguments, model and service names.
    b.chat(
        "xss",
        provider="openai",
        model="gpt-4o-mini<script>window.__xss=9</script>",
        inputs=[u("system", [m.text(XSS_TEXT)]), u("user", [m.text(XSS_TEXT)])],
        outputs=[
            m.output_message(
                "assistant",
                [m.text(XSS_TEXT), m.tool_call("<img src=x onerror=alert(10)>", {"q": XSS_TEXT}, "<b>id</b>")],
                "<script>x</script>",
            )
        ],
        start_ms_ago=30_000,
        duration_ms=300,
        tokens=(50, 50),
        extra={
            gen_ai.TOOL_DEFINITIONS: m.dumps([m.function_tool("<svg onload=alert(11)>", XSS_TEXT, {"x": XSS_TEXT})])
        },
        service="<script>window.__xss=12</script>",
        user=FORMULA_USER,
    )
    # 9. Background traffic so lists, stats and charts have something to show.
    models = [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
    ]
    services = ["support-bot", "translator", "rag-service"]
    for i in range(background):
        provider, model = models[i % len(models)]
        failed = i % 11 == 5
        b.chat(
            f"bg{i}",
            provider=provider,
            model=model,
            inputs=[u("user", [m.text(f"Background question number {i}")])],
            outputs=None if failed else [m.output_message("assistant", [m.text(f"Background answer {i}")], "stop")],
            start_ms_ago=600_000 + i * 137_000,
            duration_ms=200 + b.rng.random() * 3000,
            tokens=(100 + b.rng.randrange(2000), 10 + b.rng.randrange(500)),
            error=("500", "Error code: 500 - internal error", "{}") if failed else None,
            service=services[i % len(services)],
            tenant=("acme", "globex")[i % 2],
            user=f"user-{i % 5}",
        )
    b.flush()
    return b.corpus


@dataclass
class UIStore:
    """A running ``spyglass serve`` holding the corpus."""

    server: StoreServer
    corpus: Corpus

    @property
    def url(self) -> str:
        return self.server.api

    def get(self, path: str, token: str | None = None) -> Any:
        return request("GET", self.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})

    def json(self, path: str, token: str | None = None) -> Any:
        response = self.get(path, token)
        assert response.status == 200, (path, response.status, response.text[:500])
        return response.json()

    def all_items(self, query: dict[str, str] | None = None, token: str | None = None) -> list[dict[str, Any]]:
        """Every row of the Traces list for ``query``, following the pages' own next links."""
        items: list[dict[str, Any]] = []
        path: str | None = "/traces.json" + ("?" + urlencode(query) if query else "")
        while path:
            data = self.json(path, token)
            items.extend(data["items"])
            path = data["next_url"].replace("/traces?", "/traces.json?", 1) if data["next_url"] else None
        return items


@contextmanager
def running_store(db: Path, *flags: str, token: str | None = None) -> Iterator[UIStore]:
    """``spyglass serve`` on ephemeral ports, filled with :func:`send_corpus` through its OTLP/HTTP port.

    ``flags`` go to ``serve``; ``token`` is the bearer token the corpus is sent with.
    """
    with StoreServer(db, *flags) as server:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        yield UIStore(server, send_corpus(server.otlp_http, headers=headers))
