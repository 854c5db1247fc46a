"""Web UI benchmark: server time of the Traces list and the other pages on a large store.

Fills a database with N realistic LLM spans through the store's own write path (normalised records into
:meth:`spyglass.store.Store.submit`: the batched writer, indexes and the FTS5 triggers, as ingest does;
the OTLP decoding in front of it is measured by ``benchmarks/store.py``), then starts a real
``spyglass serve`` on it and times GET requests from this process over 127.0.0.1: the pages, and the
statistics the API and the UI ask for (``/api/v1/stats``, the list's summary, the Stats page). The
baseline is ``/-/health``, a request that does no work, timed in the same rounds: each round requests
every page once, in order, so load from other processes falls on all of them alike. Besides wall time,
the server's CPU time (``/proc/<pid>/stat``, 10 ms ticks) is summed per page and averaged.

Usage::

    python benchmarks/ui.py --spans 1000000 --db /tmp/spyglass-ui-bench.db   # load once (minutes)
    python benchmarks/ui.py --spans 1000000 --db /tmp/spyglass-ui-bench.db   # reuses a loaded database
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.store._records import Record
from spyglass.store._store import Store

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
]
SERVICES = ["support-bot", "translator", "rag-service", "search", "agent"]
TENANTS = ["acme", "globex", "initech", "umbrella"]
NEEDLE = "kumquat"
FILTERS_3 = "model=gpt-4o&tenant=acme&status=success"
FILTERS_5 = FILTERS_3 + "&provider=openai&service=agent"
WORDS = [
    "trace",
    "span",
    "latency",
    "token",
    "prompt",
    "response",
    "model",
    "cache",
    "budget",
    "invoice",
    "customer",
    "refund",
    "order",
    "shipping",
    "weather",
    "paris",
    "london",
    "contract",
    "summary",
    "translate",
    "answer",
    "question",
    "context",
    "document",
    "retrieval",
    "agent",
    "tool",
]


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def make_record(i: int, rng: random.Random, now_ns: int, span_s: float, text_words: int) -> Record:
    provider, model = MODELS[i % len(MODELS)]
    start = now_ns - int(rng.random() * span_s * 1e9)
    duration_ms = 150 + rng.expovariate(1 / 900)
    failed = rng.random() < 0.03
    prompt = _text(rng, text_words)
    if i % 1000 == 7:  # a rare word, as a real search term is: one prompt in a thousand
        prompt += " " + NEEDLE
    answer = "" if failed else _text(rng, text_words // 2)
    inputs = [m.message("system", [m.text("You are a helpful assistant.")]), m.message("user", [m.text(prompt)])]
    outputs = [] if failed else [m.output_message("assistant", [m.text(answer)], "stop")]
    tokens_in, tokens_out = 50 + rng.randrange(3000), 0 if failed else 5 + rng.randrange(800)
    attrs: dict[str, Any] = {
        gen_ai.OPERATION_NAME: "chat",
        gen_ai.PROVIDER_NAME: provider,
        gen_ai.REQUEST_MODEL: model,
        gen_ai.RESPONSE_MODEL: model,
        gen_ai.INPUT_MESSAGES: m.dumps(inputs),
        gen_ai.OUTPUT_MESSAGES: m.dumps(outputs),
        gen_ai.USAGE_INPUT_TOKENS: tokens_in,
        gen_ai.USAGE_OUTPUT_TOKENS: tokens_out,
    }
    rec = Record(
        trace_id=f"{rng.getrandbits(128):032x}",
        span_id=f"{rng.getrandbits(64):016x}",
        parent_span_id=None,
        name=f"chat {model}",
        kind=3,
        start_ns=start,
        end_ns=start + int(duration_ms * 1e6),
        tenant=TENANTS[i % len(TENANTS)],
        service=SERVICES[(i // 7) % len(SERVICES)],
        scope_name="spyglass.benchmarks",
        status="error" if failed else "success",
        status_message="Error code: 500" if failed else None,
        is_llm=True,
        operation="chat",
        provider=provider,
        model=model,
        request_model=model,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=(tokens_in * 2.5 + tokens_out * 10) / 1e6,
        cost_source="span",
        user_id=f"user-{i % 1000}",
        input_messages=inputs,
        output_messages=outputs,
        input_text=f"system: You are a helpful assistant.\nuser: {prompt}",
        output_text=f"assistant: {answer}" if answer else None,
        attributes=attrs,
        resource={"service.name": SERVICES[(i // 7) % len(SERVICES)]},
    )
    return rec


def load(db: Path, n: int, text_words: int, span_s: float = 7 * 86400, *, quiet: bool = False) -> float:
    """Write ``n`` spans spread over the last ``span_s`` seconds (7 days); returns spans per second."""
    store = Store(db, pricer=False)
    rng = random.Random(42)
    now = time.time_ns()
    t0 = time.perf_counter()
    batch = 5000
    pending = []
    for start in range(0, n, batch):
        records = [make_record(i, rng, now, span_s, text_words) for i in range(start, min(start + batch, n))]
        pending.append(store.submit(records))
        if len(pending) > 8:
            pending.pop(0).result()
        if start and start % 100_000 == 0 and not quiet:
            rate = start / (time.perf_counter() - t0)
            print(f"  loaded {start:,} spans ({rate:,.0f}/s)", flush=True)
    for fut in pending:
        fut.result()
    store.close()
    return n / (time.perf_counter() - t0)


def count(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
    except sqlite3.Error:
        return 0


def start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "spyglass.store", "serve", "--db", str(db), "--port", "0"]
    cmd += ["--otlp-http-port", "-1", "--otlp-grpc-port", "-1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "API and UI" in line:
            return proc, line.split()[-1].rstrip("/")
    raise RuntimeError("spyglass serve did not start")


def get(url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = resp.read()
    return (time.perf_counter() - t0) * 1000, body


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``), in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed_rounds(base: str, pid: int, pages: list[tuple[str, str]], rounds: int) -> dict[str, dict[str, float]]:
    """Every page once per round, interleaved; p50/p95 wall ms and mean server CPU ms per page."""
    for _, path in pages:
        get(base + path)  # warm the page cache and the reader connection
    walls: dict[str, list[float]] = {label: [] for label, _ in pages}
    cpus: dict[str, float] = dict.fromkeys(walls, 0.0)
    for _ in range(rounds):
        for label, path in pages:
            before = cpu_ms(pid)
            walls[label].append(get(base + path)[0])
            cpus[label] += cpu_ms(pid) - before
    out = {}
    for label, times in walls.items():
        times.sort()
        out[label] = {
            "p50": statistics.median(times),
            "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
            "cpu": cpus[label] / rounds,
        }
    return out


def rollup_cost(n: int, rounds: int, text_words: int) -> None:
    """CPU time of loading ``n`` spans with every rollup table against the hourly rollups alone (what the
    writer kept before migration 0007), in fresh databases, interleaved; spans spread over 7 days (each
    batch touches many hours: the worst case) and over 10 minutes (as live ingest arrives)."""
    import tempfile

    from spyglass.store import _rollups

    every_table = _rollups.apply

    def hourly_only(conn: Any, cells: Any, sign: int = 1) -> None:
        _rollups._write(conn, _rollups.HOURLY, cells, sign)

    variants = [("hourly rollups only (before)", hourly_only), ("hourly + daily + slices", every_table)]
    spreads = [("7 days", 7 * 86400.0), ("10 minutes", 600.0)]
    cpu: dict[tuple[str, str], list[float]] = {(s, v): [] for s, _ in spreads for v, _ in variants}
    try:
        for _ in range(rounds):
            for spread, span_s in spreads:
                for label, fn in variants:
                    _rollups.apply = fn  # type: ignore[assignment]
                    with tempfile.TemporaryDirectory() as tmp:
                        before = time.process_time()
                        load(Path(tmp) / "cost.db", n, text_words, span_s, quiet=True)
                        cpu[(spread, label)].append(time.process_time() - before)
    finally:
        _rollups.apply = every_table
    print(f"\nloading {n:,} spans in-process (build records + writer), CPU s, median of {rounds} interleaved rounds\n")
    print("| spans spread over | rollups written | CPU s | µs per span | vs before |")
    print("| --- | --- | --: | --: | --: |")
    for spread, _ in spreads:
        base = statistics.median(cpu[(spread, variants[0][0])])
        for label, _ in variants:
            median = statistics.median(cpu[(spread, label)])
            print(f"| {spread} | {label} | {median:.2f} | {median / n * 1e6:.0f} | {median / base:.3f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/spyglass-ui-bench.db"))
    parser.add_argument("--text-words", type=int, default=60, help="words per prompt (the answer has half)")
    parser.add_argument("--repeat", type=int, default=20, help="rounds (every page once per round)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--rollup-cost", type=int, metavar="N", help="only compare the writer's CPU with N spans")
    args = parser.parse_args()
    if args.rollup_cost:
        rollup_cost(args.rollup_cost, max(args.repeat, 1), args.text_words)
        return

    have = count(args.db)
    if have < args.spans:
        if have:
            sys.exit(f"{args.db} holds {have:,} spans, fewer than --spans; remove it to reload")
        print(f"loading {args.spans:,} spans into {args.db} ...", flush=True)
        rate = load(args.db, args.spans, args.text_words)
        print(f"loaded at {rate:,.0f} spans/s")
    n = count(args.db)
    size_mb = args.db.stat().st_size / 1e6
    proc, base = start_server(args.db)
    try:
        first = json.loads(get(base + "/traces.json")[1])
        trace_id = first["items"][0]["trace_id"]
        pages = [
            ("baseline: /-/health", "/-/health"),
            ("Traces list (newest 50)", "/traces"),
            ("Traces list, JSON twin", "/traces.json"),
            ("Traces list, page 2 (cursor)", "/traces?cursor=" + first["next_cursor"]),
            ("Traces list, model filter", "/traces?model=gpt-4o"),
            ("Traces list, model + status", "/traces?model=gpt-4o&status=error"),
            ("Traces list, tenant + last 24 h", "/traces?tenant=acme&since=24h"),
            ("Traces list, full-text (rare word)", f"/traces?q={NEEDLE}"),
            ("Traces list, full-text (common)", "/traces?q=refund+invoice"),
            ("Trace detail", f"/traces/{trace_id}"),
            ("Summary + charts, all time (async)", "/-/summary.json"),
            ("Summary + charts, last 24 h", "/-/summary.json?since=24h"),
            ("Summary, one tenant + status", "/-/summary.json?tenant=acme&status=error"),
            ("Stats page (last 24 h)", "/stats"),
            ("Stats page, all time", "/stats?since=0"),
            ("Stats page, one model, 7 d", "/stats?model=gpt-4o&since=7d"),
            ("Stats page, last hour", "/stats?since=1h"),
            ("Filter options (facets)", "/-/facets.json"),
            ("API stats, all time", "/api/v1/stats"),
            ("API stats, last 24 h, bucket=auto", "/api/v1/stats?since=24h&bucket=auto"),
            ("API stats, last 11 h, bucket=auto", "/api/v1/stats?since=11h&bucket=auto"),
            ("API stats, last 11 h, bucket=30m", "/api/v1/stats?since=11h&bucket=30m"),
            ("API stats, week by model, 1h", "/api/v1/stats?group_by=model&bucket=1h"),
            ("API stats, by provider, 1d", "/api/v1/stats?group_by=provider&bucket=1d"),
            ("API stats, by service, 24 h, 1h", "/api/v1/stats?group_by=service&since=24h&bucket=1h"),
            ("API stats, tenant, by model", "/api/v1/stats?tenant=acme&group_by=model"),
            ("API stats, model+status, 1h", "/api/v1/stats?model=gpt-4o&status=error&bucket=1h"),
            (
                "API stats, 3 filters, by service, 1h",
                "/api/v1/stats?" + FILTERS_3 + "&group_by=service&bucket=1h",
            ),
            (
                "API stats, 5 filters, by tenant, 1d",
                "/api/v1/stats?" + FILTERS_5 + "&group_by=tenant&bucket=1d",
            ),
            ("API stats, user filter (spans scan)", "/api/v1/stats?user=user-7&since=24h"),
        ]
        results = timed_rounds(base, proc.pid, pages, args.repeat)
    finally:
        proc.terminate()
        proc.wait(30)
    floor = results["baseline: /-/health"]["p50"]
    print(f"\n{n:,} spans, database {size_mb:,.0f} MB; GET over 127.0.0.1, {args.repeat} interleaved rounds\n")
    print(f"| {'page':40} | {'p50 ms':>8} | {'p95 ms':>8} | {'x baseline':>10} | {'server CPU ms':>13} |")
    print(f"| {'-' * 40} | {'-' * 8}:| {'-' * 8}:| {'-' * 10}:| {'-' * 13}:|")
    for label, r in results.items():
        print(f"| {label:40} | {r['p50']:8.1f} | {r['p95']:8.1f} | {r['p50'] / floor:10.1f} | {r['cpu']:13.1f} |")
    if args.json:
        print(json.dumps({"spans": n, "results": results}))


if __name__ == "__main__":
    main()
