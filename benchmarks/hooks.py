"""Cost of the completion hook path: Spyglass without a hook vs with the ``spyglass_upload`` hook, interleaved.

    python benchmarks/hooks.py [--rounds 5] [--calls 300] [--dir /dev/shm]

Each variant runs in its own subprocess per round (instrumentors patch process-wide), rounds interleave the
variants, and every round measures the bare SDK too, so the added cost is (variant - bare) within one round;
the table shows medians over rounds. The workload is the official ``openai`` SDK against an in-process
``httpx2.MockTransport`` returning a recorded chat completion (the same request as ``benchmarks/overhead.py``:
a system and a user message), with an SDK ``TracerProvider`` whose processor drops spans. Two CPU clocks:
the process (all threads, so the upload pool's JSON encoding and file writes are included; the hook is
flushed inside the measured window and its queue is sized so nothing is dropped) and the calling thread
alone (what the application's request path pays). Files go to a temporary directory under ``--dir``
(default ``/dev/shm`` where it exists: a tmpfs, so the numbers are Spyglass's work, not the disk's; on this
shared machine the ext4 disk's cost per created file varies tenfold with the other tenants' I/O).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHAT_RECORDING = ROOT / "tests/fixtures/llm-http/openai__chat-completions__nostream__chat__i1.json"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. " * 8},
    {"role": "user", "content": "Tell me a joke about opentelemetry and explain it. " * 6},
]
VARIANTS = {
    "bare": "uninstrumented openai SDK (baseline)",
    "spyglass": "Spyglass, SPAN_ONLY, no hook",
    "upload": "Spyglass, SPAN_ONLY + `spyglass_upload` (local dir)",
    "upload-no-content": "Spyglass, NO_CONTENT + `spyglass_upload` (local dir)",
}


def worker(variant: str, calls: int, base: str | None) -> dict[str, float]:
    import httpx2
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    rec = json.loads(CHAT_RECORDING.read_text())
    body = rec["response"]["body"]
    content = (body if isinstance(body, str) else json.dumps(body)).encode()
    client = openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(
            transport=httpx2.MockTransport(
                lambda request: httpx2.Response(200, content=content, headers={"content-type": "application/json"})
            )
        ),
    )
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(Drop()))
    hook = None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        if variant != "bare":
            from spyglass.instrumentation import OpenAIInstrumentor, UploadCompletionHook

            kwargs: dict[str, Any] = {"tracer_provider": tp}
            if variant.startswith("upload"):
                hook = UploadCompletionHook(tmp, max_queue_size=4 * calls + 64)
                kwargs["completion_hook"] = hook
            if variant == "upload-no-content":
                kwargs["capture_content"] = "NO_CONTENT"
            OpenAIInstrumentor().instrument(**kwargs)

        def run(n: int) -> None:
            for _ in range(n):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)
            if hook is not None:
                assert hook.force_flush(60)

        run(max(20, calls // 10))  # warm-up
        p0, t0 = time.process_time(), time.thread_time()
        run(calls)
        p1, t1 = time.process_time(), time.thread_time()
        if hook is not None:
            assert hook.dropped == 0, hook.dropped
            hook.shutdown()
    return {"process_us": (p1 - p0) / calls * 1e6, "thread_us": (t1 - t0) / calls * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.calls, args.dir)))
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for v in VARIANTS:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", v, "--calls", str(args.calls)]
                + (["--dir", args.dir] if args.dir else []),
                capture_output=True,
                text=True,
                check=True,
            )
            results[v].append(json.loads(out.stdout))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    bare = results["bare"]
    print("| variant | µs per call (process CPU) | added per call (process) | added per call (calling thread) |")
    print("| --- | ---: | ---: | ---: |")
    for v, label in VARIANTS.items():
        per = statistics.median(x["process_us"] for x in results[v])
        if v == "bare":
            print(f"| {label} | {per:.0f} | | |")
            continue
        added = statistics.median(x["process_us"] - b["process_us"] for x, b in zip(results[v], bare, strict=True))
        added_t = statistics.median(x["thread_us"] - b["thread_us"] for x, b in zip(results[v], bare, strict=True))
        print(f"| {label} | {per:.0f} | {added:.0f} µs | {added_t:.0f} µs |")


if __name__ == "__main__":
    main()
