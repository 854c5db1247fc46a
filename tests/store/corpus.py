"""A seeded corpus of LM calls with known fields, sent through the real OTLP/HTTP exporter.

Tests compute what every filter, search, sort and statistic must return from :class:`Call` objects,
independently of the store's SQL.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m

MODELS = {"gpt-4o-mini": "openai", "gpt-4o": "openai", "claude-sonnet-4-5": "anthropic", "mistral-large": "mistral_ai"}
SERVICES = ("checkout", "search", "support")
TENANTS = ("acme", "globex", "initech")
USERS = ("u1", "u2", "u3", "u4")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
FORMULAS = ("=SUM(A1:A9)", "+1+1", "-2+3", "@cmd", "\t=tab")


@dataclass
class Call:
    trace_id: str
    span_id: str
    model: str
    provider: str
    service: str
    tenant: str
    user: str
    session: str
    status: str
    start_ns: int
    end_ns: int
    input_tokens: int
    output_tokens: int
    cost: float
    temperature: float
    prompt: str
    answer: str
    experiment: str

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def words(self) -> set[str]:
        """Searchable words: the prompt, and the answer of a call that succeeded (failures have none)."""
        return set(self.prompt.split()) | (set(self.answer.split()) if self.status == "success" else set())


@dataclass
class Corpus:
    calls: list[Call] = field(default_factory=list)
    base_ns: int = 0

    def by_id(self) -> dict[str, Call]:
        return {c.span_id: c for c in self.calls}


def build_calls(n: int = 240, seed: int = 7) -> Corpus:
    rnd = random.Random(seed)
    base = (time.time_ns() // 3_600_000_000_000 - 6) * 3_600_000_000_000  # 6 whole hours ago
    corpus = Corpus(base_ns=base)
    used_durations: set[int] = set()
    for i in range(n):
        model = rnd.choice(list(MODELS))
        status = rnd.choices(["success", "error", "timeout"], [80, 15, 5])[0]
        duration_us = rnd.randint(10_000, 5_000_000)
        while duration_us in used_durations:  # unique latencies: sort orders have no ties
            duration_us += 1
        used_durations.add(duration_us)
        start = base + i * 90 * 10**9 + rnd.randint(0, 10**9)
        words = rnd.sample(WORDS, 3)
        prompt = " ".join(words[:2]) + f" question {i}"
        if i % 40 == 0:
            prompt = FORMULAS[(i // 40) % len(FORMULAS)] + " " + prompt
        corpus.calls.append(
            Call(
                trace_id="",
                span_id="",
                model=model,
                provider=MODELS[model],
                service=rnd.choice(SERVICES),
                tenant=rnd.choice(TENANTS),
                user=rnd.choice(USERS),
                session=f"s{i % 7}",
                status=status,
                start_ns=start,
                end_ns=start + duration_us * 1000,
                input_tokens=rnd.randint(5, 4000),
                output_tokens=rnd.randint(1, 800),
                cost=round(rnd.uniform(0.0001, 0.05), 6) + i * 1e-9,
                temperature=rnd.choice([0.0, 0.5, 1.0]),
                prompt=prompt,
                answer=f"{words[2]} answer {i}",
                experiment=rnd.choice(["A", "B"]),
            )
        )
    return corpus


def send_corpus(endpoint: str, corpus: Corpus) -> None:
    """One span per call, each its own trace, grouped by (service, tenant) resources."""
    providers: dict[tuple[str, str], TracerProvider] = {}
    for call in corpus.calls:
        key = (call.service, call.tenant)
        if key not in providers:
            provider = TracerProvider(
                resource=Resource.create({"service.name": call.service, ext.TENANT_ID: call.tenant})
            )
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), max_export_batch_size=64)
            )
            providers[key] = provider
        tracer = providers[key].get_tracer("corpus")
        attrs: dict[str, Any] = {
            gen_ai.OPERATION_NAME: "chat",
            gen_ai.PROVIDER_NAME: call.provider,
            gen_ai.REQUEST_MODEL: call.model,
            gen_ai.USAGE_INPUT_TOKENS: call.input_tokens,
            gen_ai.USAGE_OUTPUT_TOKENS: call.output_tokens,
            gen_ai.REQUEST_TEMPERATURE: call.temperature,
            ext.USAGE_COST: call.cost,
            ext.USER_ID: call.user,
            ext.SESSION_ID: call.session,
            ext.METADATA_PREFIX + "experiment": call.experiment,
            gen_ai.INPUT_MESSAGES: m.dumps([m.message("user", [m.text(call.prompt)])]),
        }
        if call.status == "success":
            attrs[gen_ai.OUTPUT_MESSAGES] = m.dumps([m.output_message("assistant", [m.text(call.answer)], "stop")])
        span = tracer.start_span(f"chat {call.model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=call.start_ns)
        if call.status != "success":
            span.set_attribute(gen_ai.ERROR_TYPE, "APITimeoutError" if call.status == "timeout" else "APIError")
            span.set_status(Status(StatusCode.ERROR, call.answer))
        ctx = span.get_span_context()
        call.trace_id, call.span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        span.end(end_time=call.end_ns)
    for provider in providers.values():
        provider.shutdown()
