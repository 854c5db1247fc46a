"""Spyglass's SDK-level call path in isolation: the ``request`` wrapper around a stub call, against the SDK floor.

The real ``openai`` SDK call is made once (a recorded chat completion through ``httpx2.MockTransport``, as in
``overhead.py``) to capture the wrapper's arguments and the parsed response; then, interleaved in one
process, each variant runs around a stub that returns that response at once, so the SDK's own ~1,250 µs
(and its noise) is out of the measurement:

- ``spyglass``: ``OpenAIInstrumentor``'s wrapper (plan, span, context, response, content JSON, metrics);
- ``floor-span``: one CLIENT span started with the attributes Spyglass's span ends up with, ended;
- ``floor-metrics``: that span plus three points through the public ``Histogram.record``.

Numbers are process CPU µs per call above the bare stub, medians over rounds. To compare with an earlier
version, run it with ``PYTHONPATH`` pointing at an export of that version's ``instrumentation/`` directory.

    python benchmarks/call_path.py --rounds 7 --calls 3000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead  # type: ignore[import-not-found]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=3000)
    args = ap.parse_args()

    import wrapt
    from openai import _base_client
    from opentelemetry.instrumentation.utils import unwrap
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.trace import SpanKind

    from spyglass.instrumentation import OpenAIInstrumentor

    tp, mp = overhead._providers()
    call = overhead.make_openai_workloads()["call"]
    captured: dict[str, Any] = {}

    def grab(wrapped: Any, instance: Any, a: Any, kw: Any) -> Any:
        result = wrapped(*a, **kw)
        captured.update(instance=instance, args=a, kwargs=kw, result=result)
        return result

    wrapt.wrap_function_wrapper(_base_client.SyncAPIClient, "request", grab)
    call()
    unwrap(_base_client.SyncAPIClient, "request")

    class Keep(SpanProcessor):
        last: ReadableSpan | None = None

        def on_end(self, span: ReadableSpan) -> None:
            Keep.last = span

    tp.add_span_processor(Keep())
    OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    wrapper = _base_client.SyncAPIClient.request._self_wrapper  # type: ignore[attr-defined]
    result, instance, cargs, ckwargs = captured["result"], captured["instance"], captured["args"], captured["kwargs"]

    def stub(*a: Any, **kw: Any) -> Any:
        return result

    def bare() -> None:
        stub(*cargs, **dict(ckwargs))

    def spyglass() -> None:
        wrapper(stub, instance, cargs, dict(ckwargs))

    spyglass()
    assert Keep.last is not None
    name, attrs = Keep.last.name, dict(Keep.last.attributes or {})
    tracer = tp.get_tracer("floor")
    meter = mp.get_meter("floor")
    duration, tokens = meter.create_histogram("duration"), meter.create_histogram("tokens")
    m = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    m_in, m_out = {**m, "gen_ai.token.type": "input"}, {**m, "gen_ai.token.type": "output"}

    def floor_span() -> None:
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        stub(*cargs, **dict(ckwargs))
        span.end()

    def floor_metrics() -> None:
        floor_span()
        duration.record(0.5, m)
        tokens.record(100, m_in)
        tokens.record(20, m_out)

    variants = {"spyglass": spyglass, "floor-span": floor_span, "floor-metrics": floor_metrics}
    rows: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        t0 = time.process_time()
        for _ in range(args.calls):
            bare()
        base = time.process_time() - t0
        for name_, fn in variants.items() if r % 2 == 0 else reversed(variants.items()):
            t0 = time.process_time()
            for _ in range(args.calls):
                fn()
            rows[name_].append((time.process_time() - t0 - base) / args.calls * 1e6)
    print(f"{len(attrs)} span attributes; {args.rounds} rounds of {args.calls} calls; µs per call above the stub")
    for k, v in rows.items():
        print(f"| {k} | {statistics.median(v):.1f} | {min(v):.1f}-{max(v):.1f} |")


if __name__ == "__main__":
    main()
