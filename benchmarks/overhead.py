"""Per-call overhead of LM-call instrumentation: uninstrumented vs Spyglass vs the peers, interleaved.

    python benchmarks/overhead.py [--rounds 5] [--calls 300] [--only spyglass,official]

Every variant runs the same workload in its own subprocess (so one instrumentation's patches never touch
another's): the official ``openai`` SDK against an in-process ``httpx2.MockTransport`` that returns a recorded
chat completion, or a synthetic stream of 10 / 50 chunks, with an SDK ``TracerProvider`` (spans recorded,
processor that drops them) and ``MeterProvider``, content capture on. Rounds interleave the variants, and each
round measures the bare SDK again at its start and its end, so the reported overhead is (variant - mean of
the two bare runs) within the same round; the table shows the median over rounds. Per-chunk cost is (overhead
of the 50-chunk stream - overhead of the 10-chunk stream) / 40.

To add a row, append a :class:`Variant` to :data:`VARIANTS` (a name, a setup function run once in the worker,
the workload it runs, and the package it needs). Peers that are not installed, or cannot import next to
openai 3.x, are reported as such instead of measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHAT_RECORDING = ROOT / "tests/fixtures/llm-http/openai__chat-completions__nostream__chat__i1.json"


# --- workloads (run inside a worker) --------------------------------------------------------------


def _chat_body() -> bytes:
    rec = json.loads(CHAT_RECORDING.read_text())
    body = rec["response"]["body"]
    return (body if isinstance(body, str) else json.dumps(body)).encode()


def _stream_body(chunks: int) -> bytes:
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        finish = "stop" if i == chunks - 1 else None
        events.append({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. " * 8},
    {"role": "user", "content": "Tell me a joke about opentelemetry and explain it. " * 6},
]


def make_openai_workloads(split: bool = False) -> dict[str, Callable[[], Any]]:
    """The three workloads; with ``split``, also the two streams delivered one event per read (``...s``).

    The in-memory transport hands a body over already read, whole; a split stream arrives as a network
    stream does, a read at a time, so the HTTP-level instrumentor takes its incremental path.
    """
    import httpx2
    import openai

    chat, s10, s50 = _chat_body(), _stream_body(10), _stream_body(50)

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        if body.get("stream"):
            n = body.get("metadata", {}).get("chunks", "50")
            events = s10 if n.startswith("10") else s50
            headers = {"content-type": "text/event-stream"}
            if n.endswith("s"):
                reads = [e + b"\n\n" for e in events.split(b"\n\n") if e]
                return httpx2.Response(200, content=iter(reads), headers=headers)
            return httpx2.Response(200, content=events, headers=headers)
        return httpx2.Response(200, content=chat, headers={"content-type": "application/json"})

    client = openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )

    def call() -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)

    def stream(n: str) -> Callable[[], Any]:
        def run() -> Any:
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, metadata={"chunks": n}
            ):
                pass

        return run

    loads = {"call": call, "stream10": stream("10"), "stream50": stream("50")}
    if split:
        loads.update(stream10s=stream("10s"), stream50s=stream("50s"))
    return loads


# --- variants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    setup: Callable[[Any, Any], None] | None
    requires: str = ""
    """Import that must work for the variant to run (reported as unavailable otherwise)."""
    workloads: Callable[[], dict[str, Callable[[], Any]]] = make_openai_workloads


def _spyglass(tp: Any, mp: Any) -> None:
    from spyglass.instrumentation import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _spyglass_traces_only(tp: Any, mp: Any) -> None:
    from spyglass.instrumentation import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tp)  # no MeterProvider configured: metrics are no-ops


def _spyglass_http(tp: Any, mp: Any) -> None:
    # The HTTP-level instrumentor alone: the same SDK call, traced at the httpx2 client seam instead.
    from spyglass.instrumentation import HttpxInstrumentor

    HttpxInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _floor_span(tp: Any, mp: Any) -> None:
    _floor(tp, None)


def _floor(tp: Any, mp: Any) -> None:
    import wrapt
    from openai import _base_client

    wrapt.wrap_function_wrapper(_base_client.SyncAPIClient, "request", _floor_wrapper(tp, mp))


def _floor_wrapper(tp: Any, mp: Any) -> Callable[..., Any]:
    """The OpenTelemetry SDK's own work for what Spyglass records, with no Spyglass code on the call path.

    One CLIENT span started with exactly the attributes Spyglass's span ends up with for this call (captured
    from a Spyglass span first, content included), ended after the call; the same metric points through
    the public ``Histogram.record`` (duration, input and output tokens per call; for streams time to first
    chunk and one ``time_per_output_chunk`` point per later chunk). Nothing is extracted or serialized.
    Without a meter provider (``floor-span``), the span alone.
    """
    import time

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from spyglass.instrumentation import OpenAIInstrumentor
    from spyglass.semconv import gen_ai
    from spyglass.semconv import metrics as gm

    capture_tp, exporter = TracerProvider(), InMemorySpanExporter()
    capture_tp.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=capture_tp)
    make_openai_workloads()["call"]()
    instrumentor.uninstrument()
    span = exporter.get_finished_spans()[-1]
    attrs, name = dict(span.attributes or {}), span.name
    from opentelemetry.metrics import NoOpMeterProvider

    tracer, meter = tp.get_tracer("floor"), (mp or NoOpMeterProvider()).get_meter("floor")
    buckets = list(gm.DURATION_BUCKETS)
    duration = meter.create_histogram(gm.CLIENT_OPERATION_DURATION, explicit_bucket_boundaries_advisory=buckets)
    tokens = meter.create_histogram(gm.CLIENT_TOKEN_USAGE, explicit_bucket_boundaries_advisory=list(gm.TOKEN_BUCKETS))
    ttfc = meter.create_histogram(gm.CLIENT_TIME_TO_FIRST_CHUNK, explicit_bucket_boundaries_advisory=buckets)
    tpoc = meter.create_histogram(gm.CLIENT_TIME_PER_OUTPUT_CHUNK, explicit_bucket_boundaries_advisory=buckets)
    keys = (gen_ai.OPERATION_NAME, gen_ai.PROVIDER_NAME, gen_ai.REQUEST_MODEL, gen_ai.RESPONSE_MODEL)
    m = {k: attrs[k] for k in (*keys, gen_ai.SERVER_ADDRESS, gen_ai.SERVER_PORT) if k in attrs}

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        t0 = time.perf_counter()
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        result = wrapped(*args, **kwargs)
        if not kwargs.get("stream"):
            span.end()
            duration.record(time.perf_counter() - t0, m)
            tokens.record(12, {**m, gen_ai.TOKEN_TYPE: "input"})
            tokens.record(40, {**m, gen_ai.TOKEN_TYPE: "output"})
            return result

        def chunks() -> Any:
            last = None
            for chunk in result:
                now = time.perf_counter()
                if last is None:
                    ttfc.record(now - t0, m)
                else:
                    tpoc.record(now - last, m)
                last = now
                yield chunk
            span.end()
            duration.record(time.perf_counter() - t0, m)

        return chunks()

    return wrapper


def _official(tp: Any, mp: Any) -> None:
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _openllmetry(tp: Any, mp: Any) -> None:
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)


def _openinference(tp: Any, mp: Any) -> None:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tp)


def _openlit(tp: Any, mp: Any) -> None:
    # openlit.init() installs its own global tracer provider (no exporter endpoint given: console-less, no
    # export); we replace its processors by ours so only instrumentation cost is timed. Its metrics are off.
    import openlit  # type: ignore[import-not-found]
    from opentelemetry import trace

    trace.set_tracer_provider(tp)
    prices = Path(os.environ.get("TMPDIR", "/tmp")) / "openlit-bench-prices.json"
    prices.write_text("{}")  # a local price file, so OpenLIT fetches nothing from the network
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    openlit.init(
        capture_message_content=True,
        disable_metrics=True,
        disable_events=True,
        disable_batch=True,
        collect_gpu_stats=False,
        pricing_json=str(prices),
        disabled_instrumentors=["litellm", "anthropic", "langchain", "llama_index", "crewai"],
    )


VARIANTS: list[Variant] = [
    Variant("bare", "uninstrumented openai SDK (baseline)", None),
    Variant("spyglass", "Spyglass", _spyglass, "spyglass.instrumentation"),
    Variant(
        "spyglass-traces", "Spyglass, traces only (no metrics SDK)", _spyglass_traces_only, "spyglass.instrumentation"
    ),
    Variant(
        "floor",
        "floor: the SDK span with Spyglass's attributes + the metric points, no Spyglass code",
        _floor,
        "spyglass.instrumentation",
    ),
    Variant("floor-span", "floor, the span alone (no metrics)", _floor_span, "spyglass.instrumentation"),
    Variant(
        "spyglass-http",
        "Spyglass HTTP-level (`HttpxInstrumentor`, no SDK patch)",
        _spyglass_http,
        "spyglass.instrumentation",
    ),
    Variant(
        "official",
        "official `opentelemetry-instrumentation-genai-openai`",
        _official,
        "opentelemetry.instrumentation.genai.openai",
    ),
    Variant(
        "openllmetry",
        "OpenLLMetry `opentelemetry-instrumentation-openai`",
        _openllmetry,
        "opentelemetry.instrumentation.openai",
    ),
    Variant(
        "openinference",
        "OpenInference `openinference-instrumentation-openai`",
        _openinference,
        "openinference.instrumentation.openai",
    ),
    Variant("openlit", "OpenLIT `openlit` (its metrics off)", _openlit, "openlit"),
]


# --- worker ---------------------------------------------------------------------------------------


def _providers() -> tuple[Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    tp = TracerProvider()
    tp.add_span_processor(SpanProcessor())  # spans are recorded, then dropped: we time instrumentation only
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return tp, mp


def _time(fn: Callable[[], Any], calls: int) -> float:
    """Median of 5 batches, CPU microseconds per call.

    Process CPU time, not wall time: the workload never waits (the transport is in-process), and CPU time
    is what stays comparable on a machine shared with other jobs.
    """
    per = []
    batch = max(1, calls // 5)
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(batch):
            fn()
        per.append((time.process_time() - t0) / batch * 1e6)
    return statistics.median(per)


def worker(name: str, calls: int) -> dict[str, Any]:
    variant = next(v for v in VARIANTS if v.name == name)
    if variant.requires:
        try:
            __import__(variant.requires)
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    tp, mp = _providers()
    if variant.setup is not None:
        try:
            variant.setup(tp, mp)
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    loads = variant.workloads()
    for fn in loads.values():  # warm up (imports, caches, connection pools)
        for _ in range(30):
            fn()
    return {k: _time(fn, calls if k == "call" else max(calls // 3, 50)) for k, fn in loads.items()}


# --- driver ---------------------------------------------------------------------------------------


def run(rounds: int, calls: int, only: list[str] | None) -> dict[str, Any]:
    names = [v.name for v in VARIANTS if v.name == "bare" or not only or v.name in only]
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    errors: dict[str, str] = {}
    # The bare SDK runs at the start and at the end of every round and each round's baseline is the mean
    # of the two: one bare process off by 20 % (this machine is shared) would shift the whole round.
    for r in range(rounds):
        for name in [*names, "bare"]:
            if name in errors:
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--calls", str(calls)],
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
                env={**os.environ, "OTEL_SDK_DISABLED": "false", "PYTHONWARNINGS": "ignore"},
            )
            try:
                out = json.loads(proc.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                out = {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
            if "error" in out:
                errors[name] = out["error"]
            else:
                results[name].append(out)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    summary: dict[str, Any] = {}
    pairs = results["bare"]
    bare = [{k: (pairs[i][k] + pairs[i + 1][k]) / 2 for k in pairs[i]} for i in range(0, len(pairs) - 1, 2)]
    results["bare"] = bare
    for name in names:
        if name in errors:
            summary[name] = {"error": errors[name]}
            continue
        rows = results[name]
        over = {
            k: statistics.median(row[k] - b[k] for row, b in zip(rows, bare)) for k in ("call", "stream10", "stream50")
        }
        summary[name] = {
            "rounds_call_overhead_us": [round(row["call"] - b["call"]) for row, b in zip(rows, bare)],
            "call_us": statistics.median(row["call"] for row in rows),
            "overhead_us": over["call"],
            "stream50_overhead_us": over["stream50"],
            "per_chunk_us": (over["stream50"] - over["stream10"]) / 40,
        }
    return summary


def table(summary: dict[str, Any]) -> str:
    label = {v.name: v.label for v in VARIANTS}
    bare = summary["bare"]["call_us"]
    peers = [
        s["overhead_us"]
        for n, s in summary.items()
        if not n.startswith(("bare", "spyglass", "floor")) and "error" not in s
    ]
    best = min(peers) if peers else None
    lines = [
        "| variant | µs per call | added per call | vs bare call | added per 50-chunk stream | added per chunk |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        if "error" in s:
            lines.append(f"| {label[name]} | not measured: {s['error']} | | | | |")
            continue
        if name == "bare":
            lines.append(f"| {label[name]} | {s['call_us']:.0f} | | 1.00x | | |")
            continue
        lines.append(
            f"| {label[name]} | {s['call_us']:.0f} | {s['overhead_us']:.0f} µs | {s['call_us'] / bare:.2f}x | "
            f"{s['stream50_overhead_us']:.0f} µs | {s['per_chunk_us']:.2f} µs |"
        )
    if best is not None and "spyglass" in summary and "error" not in summary["spyglass"]:
        ratio = summary["spyglass"]["overhead_us"] / best
        lines.append("")
        lines.append(f"Spyglass adds {ratio:.2f}x the overhead of the best peer measured (target: at most 0.20x).")
    return "\n".join(lines)


def steps(rounds: int, calls: int) -> str:
    """Cost of a decorated no-op step vs the same undecorated function, interleaved in one process.

    Spans are recorded by an SDK ``TracerProvider`` (processor that drops them); content capture is on, so
    the decorated call also serializes its argument and result. The two SDK rows run no Spyglass code, on a
    provider of their own without Spyglass's context-attributes processor: an empty span started and ended,
    and the **floor**, what the SDK charges for what a captured step records (a span started with the same
    attributes, made current around the call, the result attribute set, ended).
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    from spyglass.instrumentation import configure_steps, task, using_attributes

    def noop(x: int) -> int:
        return x

    decorated = task(noop)
    no_capture = task(capture_input=False, capture_output=False)(noop)
    attrs = using_attributes(user_id="u", tenant_id="t")

    def with_context(x: int) -> int:
        with attrs:
            return decorated(x)

    step_attrs = {k: v for k, v in _last_span_attributes(decorated).items() if k != "spyglass.step.output"}
    tp, _ = _providers()
    configure_steps(tracer_provider=tp)
    sdk_tp, _ = _providers()
    tracer = sdk_tp.get_tracer("bench")

    def span_only() -> None:
        tracer.start_span("noop").end()

    def floor(x: int) -> int:
        span = tracer.start_span("noop", kind=SpanKind.INTERNAL, attributes=step_attrs)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = noop(x)
        finally:
            otel_context.detach(token)
        span.set_attribute("spyglass.step.output", str(result))
        span.end()
        return result

    fns = {"bare": lambda: noop(1), "SDK span alone": span_only, "floor": lambda: floor(1)}
    fns["task"] = lambda: decorated(1)
    fns["task-nocapture"] = lambda: no_capture(1)
    fns["task+context"] = lambda: with_context(1)
    per: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            per[k].append(_time(fn, calls))
    med = {k: statistics.median(v) for k, v in per.items()}
    lines = [
        "| step variant | µs per call | added per call | vs SDK span alone | vs floor |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    base = med["bare"]
    span, floor_cost = med["SDK span alone"] - base, med["floor"] - base
    for k, v in med.items():
        if k == "bare":
            lines.append(f"| {k} | {v:.2f} | | | |")
            continue
        # The floor carries the captured step's attributes: the like-for-like comparison is for that row only.
        vs_floor = f"{(v - base) / floor_cost:.2f}x" if k in ("floor", "task") else ""
        lines.append(f"| {k} | {v:.2f} | {v - base:.2f} µs | {(v - base) / span:.2f}x | {vs_floor} |")
    return "\n".join(lines)


def _last_span_attributes(decorated: Callable[[int], int]) -> dict[str, Any]:
    """The attributes a ``@task`` span gets for ``decorated(1)``, read from a recorded span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from spyglass.instrumentation import configure_steps

    capture_tp, exporter = TracerProvider(), InMemorySpanExporter()
    capture_tp.add_span_processor(SimpleSpanProcessor(exporter))
    configure_steps(tracer_provider=capture_tp)
    decorated(1)
    return dict(exporter.get_finished_spans()[-1].attributes or {})


def chunks(rounds: int, streams: int) -> str:
    """Spyglass's own per-chunk work, without the SDK's SSE parsing (whose noise hides 2 µs in a real stream).

    The 50 chunks of the synthetic stream are parsed into ``ChatCompletionChunk`` objects once; each variant
    iterates over them through a plain iterator (the bare row) or through Spyglass's stream proxy with the
    OpenAI chat accumulator, a real span and the stream metrics (ended and recorded as in a real call), for a
    50-chunk and a 1-chunk stream. Per chunk = (50-chunk - 1-chunk - 49 bare chunks) / 49, medians over rounds.
    """
    from openai.types.chat import ChatCompletionChunk

    from spyglass.instrumentation._config import Settings
    from spyglass.instrumentation._openai import ChatAccumulator
    from spyglass.instrumentation._stream import StreamRecorder, SyncStreamProxy
    from spyglass.instrumentation._telemetry import LLMInvocation, LLMTelemetry

    events = _stream_body(50).decode().split("\n\n")
    parsed = [ChatCompletionChunk.model_validate(json.loads(e[6:])) for e in events if e.startswith("data: {")]

    class Plain:  # what the SDK's Stream hands out, minus the parsing
        def __init__(self, items: list[Any]) -> None:
            self.it = iter(items)

        def __iter__(self) -> Plain:
            return self

        def __next__(self) -> Any:
            return next(self.it)

        def close(self) -> None:
            return None

    lines = ["| per-chunk variant | µs per chunk |", "| --- | ---: |"]
    for label, with_metrics in (("Spyglass, traces + metrics", True), ("Spyglass, traces only", False)):
        tp, mp = _providers()
        tel = LLMTelemetry(Settings(), scope="bench", tracer_provider=tp, meter_provider=mp if with_metrics else None)

        def run(items: list[Any], tel: LLMTelemetry = tel) -> None:
            inv = LLMInvocation("chat", "openai", "gpt-4o-mini", "api.openai.com", 443, streaming=True)
            span = tel.start(inv)
            inv.input_messages = []  # content capture on: output messages are assembled
            for _ in SyncStreamProxy(Plain(items), StreamRecorder(tel, inv, span, ChatAccumulator(inv, False, False))):
                pass

        def bare() -> None:
            for _ in Plain(parsed):
                pass

        per = []
        for _ in range(rounds):
            b = _time(bare, streams)
            full = _time(lambda: run(parsed), streams)
            one = _time(lambda: run(parsed[:1]), streams)
            per.append((full - one - b * 49 / 50) / 49)
        lines.append(f"| {label} | {statistics.median(per):.2f} |")
    return "\n".join(lines)


def http_events(rounds: int, streams: int) -> str:
    """The HTTP level's own cost per server-sent event, without an SDK: the raw ``httpx2`` client reads the
    synthetic chat streams (10 and 50 events) over ``MockTransport``, whole (one read) and one event per read,
    bare and with ``HttpxInstrumentor``, both in this process, instrumented and removed round by round (the
    order alternating). Per event = (added per 50-event stream - added per 10-event stream) / 40; medians over
    rounds, and the per-round range."""
    import httpx2

    from spyglass.instrumentation import HttpxInstrumentor

    tp, mp = _providers()
    http = HttpxInstrumentor()
    bodies = {n: _stream_body(n) for n in (10, 50)}

    def workload(n: int, split: bool) -> Callable[[], None]:
        body = bodies[n]
        reads = [e + b"\n\n" for e in body.split(b"\n\n") if e]

        def handler(request: Any) -> Any:
            content = iter(reads) if split else body
            return httpx2.Response(200, content=content, headers={"content-type": "text/event-stream"})

        client = httpx2.Client(transport=httpx2.MockTransport(handler))
        request = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}

        def run() -> None:
            with client.stream("POST", "https://api.openai.com/v1/chat/completions", json=request) as r:
                for _ in r.iter_bytes():
                    pass

        return run

    loads = {f"{n}{'s' if split else ''}": workload(n, split) for split in (False, True) for n in (10, 50)}
    per: dict[str, list[dict[str, float]]] = {"bare": [], "http": []}
    for r in range(rounds):
        for name in ("bare", "http") if r % 2 == 0 else ("http", "bare"):
            if name == "http":
                http.instrument(tracer_provider=tp, meter_provider=mp)
            try:
                for fn in loads.values():
                    for _ in range(10):
                        fn()
                per[name].append({k: _time(fn, streams) for k, fn in loads.items()})
            finally:
                if name == "http":
                    http.uninstrument()
    event = {
        kind: [
            ((h[f"50{kind}"] - b[f"50{kind}"]) - (h[f"10{kind}"] - b[f"10{kind}"])) / 40
            for h, b in zip(per["http"], per["bare"], strict=True)
        ]
        for kind in ("", "s")
    }
    lines = ["| HTTP level, raw `httpx2` stream | µs per event (median) | per-round range |", "| --- | ---: | ---: |"]
    for kind, label in (("", "read whole"), ("s", "one event per read")):
        lines.append(
            f"| {label} | {statistics.median(event[kind]):.2f} | {min(event[kind]):.2f}-{max(event[kind]):.2f} |"
        )
    return "\n".join(lines)


def _fine_round(
    loads: dict[str, Callable[[], Any]],
    variants: dict[str, Any],
    order: list[str],
    calls: int,
    per: dict[str, list[dict[str, float]]],
) -> None:
    """One round of ``--in-process --fine``: workload by workload, each of its 5 batches is timed for every
    variant in turn (applied, one untimed call, the batch, removed), so a change in the machine's load falls
    on all of them alike; a variant's round value is the median of its 5 batches (CPU µs per call)."""
    rows: list[dict[str, float]] = [{} for _ in order]
    for k, fn in loads.items():
        batch = max(1, (calls if k == "call" else max(calls // 3, 50)) // 5)
        samples: list[list[float]] = [[] for _ in order]
        for _ in range(5):
            for slot, name in enumerate(order):
                apply, remove = variants.get(name) or (None, None)
                if apply is not None:
                    apply()
                try:
                    fn()
                    t0 = time.process_time()
                    for _ in range(batch):
                        fn()
                    samples[slot].append((time.process_time() - t0) / batch * 1e6)
                finally:
                    if remove is not None:
                        remove()
        for slot in range(len(order)):
            rows[slot][k] = statistics.median(samples[slot])
    for slot, name in enumerate(order):
        per[name].append(rows[slot])


def _ratio_ranges(per: dict[str, list[dict[str, float]]], bare: list[dict[str, float]]) -> str:
    """The HTTP level's added cost over the SDK level's, round by round: the range for each workload."""
    out = []
    for k in ("call", "stream50", "stream50s"):
        ratios = [
            (h[k] - b[k]) / (sd[k] - b[k])
            for h, sd, b in zip(per["spyglass-http"], per["spyglass"], bare, strict=True)
            if sd[k] - b[k] > 0
        ]
        if ratios:
            out.append(f"{k} {min(ratios):.2f}-{max(ratios):.2f}")
    return ", ".join(out)


def in_process(rounds: int, calls: int, fine: bool = False) -> str:
    """Spyglass's rows (SDK level, traces only, HTTP level) and the two floors, all in this one process.

    Between processes the same variant varies by up to +-100 µs per call on this machine (whatever a
    process's memory layout does to the caches), more than several of the differences asked about. Here
    each round applies one variant (instrument, or wrap for the floors), times the workloads, removes it and
    goes on to the next, with the same providers throughout; the bare SDK is timed at the start and the end
    of every round. Overheads are against the mean of those two, medians over rounds. The streams are timed
    whole (the in-memory transport hands the body over already read) and one event per read, the way a
    network delivers them (the HTTP level then parses incrementally). With ``fine``, variants switch every
    batch instead of every round (see :func:`_fine_round`).
    """
    import wrapt
    from openai import _base_client
    from opentelemetry.instrumentation.utils import unwrap

    from spyglass.instrumentation import HttpxInstrumentor, OpenAIInstrumentor

    tp, mp = _providers()
    loads = make_openai_workloads(split=True)
    sdk, http = OpenAIInstrumentor(), HttpxInstrumentor()
    floors = {"floor": _floor_wrapper(tp, mp), "floor-span": _floor_wrapper(tp, None)}

    def wrap(name: str) -> Callable[[], None]:
        return lambda: wrapt.wrap_function_wrapper(_base_client.SyncAPIClient, "request", floors[name])

    def unwrap_request() -> None:
        unwrap(_base_client.SyncAPIClient, "request")

    variants: dict[str, tuple[Callable[[], Any], Callable[[], Any]] | None] = {
        "spyglass": (lambda: sdk.instrument(tracer_provider=tp, meter_provider=mp), sdk.uninstrument),
        "spyglass-traces": (lambda: sdk.instrument(tracer_provider=tp), sdk.uninstrument),
        "spyglass-http": (lambda: http.instrument(tracer_provider=tp, meter_provider=mp), http.uninstrument),
        "floor": (wrap("floor"), unwrap_request),
        "floor-span": (wrap("floor-span"), unwrap_request),
    }
    per: dict[str, list[dict[str, float]]] = {k: [] for k in ("bare", *variants)}
    for r in range(rounds):
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        if fine:
            _fine_round(loads, variants, ["bare", *names, "bare"], calls, per)
            continue
        for name in ["bare", *names, "bare"]:
            apply, remove = variants.get(name) or (None, None)
            if apply is not None:
                apply()
            try:
                for fn in loads.values():
                    for _ in range(10):
                        fn()
                per[name].append(
                    {k: _time(fn, calls if k == "call" else max(calls // 3, 50)) for k, fn in loads.items()}
                )
            finally:
                if remove is not None:
                    remove()
    pairs = per["bare"]
    bare = [{k: (pairs[i][k] + pairs[i + 1][k]) / 2 for k in pairs[i]} for i in range(0, len(pairs) - 1, 2)]
    over: dict[str, dict[str, float]] = {}
    for name in variants:
        over[name] = {
            k: statistics.median(row[k] - b[k] for row, b in zip(per[name], bare, strict=True)) for k in bare[0]
        }
        over[name]["chunk"] = (over[name]["stream50"] - over[name]["stream10"]) / 40
        over[name]["chunk_s"] = (over[name]["stream50s"] - over[name]["stream10s"]) / 40
    label = {v.name: v.label for v in VARIANTS}
    base_call = statistics.median(b["call"] for b in bare)
    lines = [
        "| variant (one process, interleaved rounds) | added per call | vs bare call | added per 50-chunk stream "
        "| added per chunk | 50-chunk stream, one event per read | per chunk, one event per read |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {label['bare']} | {base_call:.0f} µs per call | 1.00x | | | | |",
    ]
    for name in ("spyglass", "spyglass-traces", "floor", "floor-span", "spyglass-http"):
        o = over[name]
        ratio = (base_call + o["call"]) / base_call
        lines.append(
            f"| {label[name]} | {o['call']:.0f} µs | {ratio:.2f}x | {o['stream50']:.0f} µs "
            f"| {o['chunk']:.1f} µs | {o['stream50s']:.0f} µs | {o['chunk_s']:.1f} µs |"
        )
    h, sd = over["spyglass-http"], over["spyglass"]
    lines.append("")
    lines.append(
        f"HTTP level / SDK level: {h['call'] / sd['call']:.2f}x per call, {h['stream50'] / sd['stream50']:.2f}x per "
        f"50-chunk stream read whole, {h['stream50s'] / sd['stream50s']:.2f}x one event per read "
        f"({rounds} rounds of {calls} calls{', variants switched every batch' if fine else ''}; "
        f"per-round ratios {_ratio_ranges(per, bare)}; per-round call overheads: "
        + "; ".join(
            f"{n} {[round(row['call'] - b['call']) for row, b in zip(per[n], bare, strict=True)]}"
            for n in ("spyglass", "floor-span", "spyglass-http")
        )
        + ")."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--only", help="comma-separated variant names (bare always runs)")
    ap.add_argument("--steps", action="store_true", help="measure a decorated no-op step instead")
    ap.add_argument("--chunks", action="store_true", help="measure Spyglass's per-chunk work in isolation")
    ap.add_argument("--http-events", action="store_true", help="the HTTP level's cost per event, raw httpx2")
    ap.add_argument(
        "--in-process", action="store_true", help="Spyglass's rows and the floors in one process (more precise)"
    )
    ap.add_argument("--fine", action="store_true", help="with --in-process: switch variants every batch, not round")
    args = ap.parse_args()
    if args.in_process:
        print(in_process(args.rounds, args.calls, args.fine))
        return
    if args.http_events:
        print(http_events(args.rounds, max(args.calls // 3, 50)))
        return
    if args.chunks:
        print(chunks(args.rounds, args.calls * 5))
        return
    if args.steps:
        print(steps(args.rounds, args.calls * 10))
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.calls)))
        return
    summary = run(args.rounds, args.calls, args.only.split(",") if args.only else None)
    print(json.dumps(summary, indent=1), file=sys.stderr)
    print(table(summary))


if __name__ == "__main__":
    main()
