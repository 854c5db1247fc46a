"""Trace store benchmark: OTLP ingest throughput and query latency of a real ``spyglass serve``.

    python benchmarks/store.py [--spans 100000] [--http-senders 2] [--grpc-senders 1] [--keep-db PATH]
    python benchmarks/store.py --reuse-db PATH      # only the queries, on a database a run kept
    python benchmarks/store.py --spans 40000 --pre-encode --phoenix 5000   # also Arize Phoenix, smaller load

Sender processes (separate from the server) stream realistic LLM spans (about 2 KB of prompt and 2 KB of
response as ``gen_ai`` message JSON, six models, five tenants, four services, 5 % errors, five spans per
trace, start times over the last 7 days) over OTLP/HTTP protobuf and OTLP/gRPC, in batches of 500, to a
server started on a fresh database.
Each sender builds a batch, sends it and waits for the acknowledgement (sent after the durable commit);
with ``--pre-encode`` the senders build all their batches before the timed phase, so that the two cores
are left to the server (the target is about the server; report both).

Then, against the loaded store over HTTP: full-text search (a random vocabulary word, p50/p95 over 60
queries), filtered search (model + tenant + status), statistics (grouped by model, with hourly buckets),
and trace fetch. The baselines measured in the same run: for ingest, plain ``executemany`` of the same rows
into a SQLite table without indexes or FTS (the floor of any SQLite store on this disk); for queries,
``GET /-/health`` (the HTTP floor). Peak server RSS is read from ``/proc/<pid>/status`` (VmHWM).
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BATCH = 500
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash", "mistral-large")
PROVIDERS = {"gpt": "openai", "cla": "anthropic", "gem": "gcp.gemini", "mis": "mistral_ai"}
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
SERVICES = ("checkout", "search", "support", "billing")


def _vocabulary(rng: random.Random, n: int = 6000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def _texts(rng: random.Random, vocab: list[str], count: int, size: int) -> list[str]:
    out = []
    for _ in range(count):
        words: list[str] = []
        n = 0
        while n < size:
            w = rng.choice(vocab)
            words.append(w)
            n += len(w) + 1
        out.append(" ".join(words))
    return out


def _batches(worker: int, spans: int, seed: int) -> Any:
    """Yield serialized ExportTraceServiceRequest batches for this worker (ids unique across workers)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

    rng = random.Random(seed)
    vocab = _vocabulary(random.Random(1))
    prompts = _texts(rng, vocab, 300, 2000)
    answers = _texts(rng, vocab, 300, 2000)

    def kv(key: str, value: Any) -> KeyValue:
        if isinstance(value, bool):
            return KeyValue(key=key, value=AnyValue(bool_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        if isinstance(value, float):
            return KeyValue(key=key, value=AnyValue(double_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    # Start times spread over the last 7 days, as a store holding a week of traffic would see them.
    week = 7 * 86400 * 10**9
    now = time.time_ns() - week
    n = 0
    while n < spans:
        req = ExportTraceServiceRequest()
        by_resource: dict[tuple[str, str], ScopeSpans] = {}
        for _ in range(min(BATCH, spans - n)):
            n += 1
            global_n = worker * 1_000_000_000 + n
            service, tenant = rng.choice(SERVICES), rng.choice(TENANTS)
            key = (service, tenant)
            if key not in by_resource:
                rs = req.resource_spans.add(
                    resource=Resource(attributes=[kv("service.name", service), kv("spyglass.tenant.id", tenant)])
                )
                by_resource[key] = rs.scope_spans.add()
                by_resource[key].scope.name = "spyglass.instrumentation.openai"
            model = rng.choice(MODELS)
            # Each sender moves through the week in step with the others, as live traffic would.
            start = now + (n // 5 * 5) * (week // max(spans, 1)) + worker * 1000 + (n % 5) * 10**8
            trace = global_n // 5 + 1
            failed = rng.random() < 0.05
            prompt = f"{rng.choice(prompts)} q{global_n}"
            answer = rng.choice(answers)
            attrs = [
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", PROVIDERS[model[:3]]),
                kv("gen_ai.request.model", model),
                kv("gen_ai.response.model", model),
                kv("gen_ai.usage.input_tokens", rng.randint(200, 3000)),
                kv("gen_ai.usage.output_tokens", rng.randint(20, 800)),
                kv("gen_ai.request.temperature", 0.2),
                kv("user.id", f"user-{rng.randint(1, 500)}"),
                kv("session.id", f"sess-{trace // 4}"),
                kv(
                    "gen_ai.input.messages",
                    json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
                ),
            ]
            if not failed:
                attrs.append(
                    kv(
                        "gen_ai.output.messages",
                        json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [{"type": "text", "content": answer}],
                                    "finish_reason": "stop",
                                }
                            ]
                        ),
                    )
                )
            else:
                attrs.append(kv("error.type", "RateLimitError"))
            by_resource[key].spans.append(
                Span(
                    trace_id=trace.to_bytes(16, "big"),
                    span_id=global_n.to_bytes(8, "big"),
                    parent_span_id=(global_n // 5 * 5).to_bytes(8, "big") if global_n % 5 else b"",
                    name=f"chat {model}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rng.randint(100, 8000) * 1_000_000,
                    attributes=attrs,
                    status=Status(code=Status.STATUS_CODE_ERROR, message="429") if failed else Status(),
                )
            )
        yield req.SerializeToString()


def _count(payload: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest.FromString(payload)
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def _payloads(worker: int, spans: int, pre_encode: bool) -> Any:
    """The worker's batches: built while sending, or all before the timed phase (``--pre-encode``)."""
    batches = _batches(worker, spans, seed=worker)
    return list(batches) if pre_encode else batches


def _http_sender(url: str, worker: int, spans: int, pre_encode: bool, start: Any, done: Any) -> None:
    import http.client

    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    payloads = _payloads(worker, spans, pre_encode)
    done.put(0)  # ready
    start.wait()
    sent = 0
    for payload in payloads:
        while True:
            conn.request("POST", parsed.path, body=payload, headers={"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 503:  # back-pressure: retry as an exporter would
                time.sleep(float(resp.getheader("Retry-After") or 1) / 10)
                continue
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            break
        sent += _count(payload)
    done.put(sent)


def _grpc_sender(target: str, worker: int, spans: int, pre_encode: bool, start: Any, done: Any) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    payloads = _payloads(worker, spans, pre_encode)
    done.put(0)  # ready
    start.wait()
    sent = 0
    for payload in payloads:
        req = ExportTraceServiceRequest.FromString(payload)
        while True:
            try:
                stub.Export(req, timeout=120)
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                time.sleep(0.2)
        sent += sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    done.put(sent)


def _get(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url}: {resp.status}")
    return (time.perf_counter() - t0) * 1000


def _latency(label: str, urls: list[str]) -> dict[str, Any]:
    _get(urls[0])  # warm
    times = sorted(_get(u) for u in urls)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    return {"query": label, "n": len(times), "p50_ms": statistics.median(times), "p95_ms": p95}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, its threads and its live child processes."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _baseline_sqlite(rows: int, tmp: Path) -> float:
    """Spans/s of plain executemany of same-sized rows into an index-free table (the storage floor)."""
    rng = random.Random(5)
    vocab = _vocabulary(random.Random(1))
    texts = _texts(rng, vocab, 50, 2000)
    conn = sqlite3.connect(tmp / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE t (trace_id TEXT, span_id TEXT, model TEXT, start_ns INT, input_text TEXT, "
        "output_text TEXT, attributes TEXT)"
    )
    t0 = time.perf_counter()
    for base in range(0, rows, BATCH):
        data = [
            (
                f"{i:032x}",
                f"{i:016x}",
                "gpt-4o",
                i,
                texts[i % 50],
                texts[(i + 7) % 50],
                json.dumps({"a": texts[i % 50], "b": texts[(i + 7) % 50]}),
            )
            for i in range(base, base + BATCH)
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?)", data)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--http-senders", type=int, default=2)
    parser.add_argument("--grpc-senders", type=int, default=1)
    parser.add_argument(
        "--pre-encode", action="store_true", help="senders build all their payloads before the timed phase"
    )
    parser.add_argument("--keep-db", type=Path, default=None, help="write the database here (kept)")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--skip-baseline", action="store_true", help="no plain-SQLite baseline (saves time)")
    parser.add_argument("--phoenix", type=int, default=0, help="also send this many spans to Arize Phoenix")
    parser.add_argument("--reuse-db", type=Path, default=None, help="skip ingest: time the queries on this database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="spyglass-store-bench-"))
    atexit.register(shutil.rmtree, tmp, True)  # gigabytes per run; --keep-db writes elsewhere
    db = args.reuse_db or args.keep_db or tmp / "bench.db"
    if not args.reuse_db:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spyglass.store",
            "serve",
            "--db",
            str(db),
            "--port",
            "0",
            "--otlp-http-port",
            "0",
            "--otlp-grpc-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    addresses: dict[str, str] = {}
    assert server.stdout is not None
    while "database" not in addresses:
        line = server.stdout.readline()
        if not line:
            raise SystemExit("server did not start")
        label = line.split(":", 1)[1].strip().rsplit(" ", 1)
        addresses[label[0].strip().split()[0].lower()] = label[-1].strip()
    api = addresses["api"].rstrip("/")
    http_url = addresses["otlp/http"]
    grpc_target = addresses["otlp/grpc"].removeprefix("http://")
    for _ in range(200):
        try:
            _get(api + "/-/health")
            break
        except OSError:
            time.sleep(0.05)

    if args.reuse_db:
        _queries_only(api, server, db, args.queries)
        return
    senders = args.http_senders + args.grpc_senders
    per = args.spans // senders
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_http_sender, args=(http_url, w, per, args.pre_encode, start, done))
        for w in range(args.http_senders)
    ]
    procs += [
        ctx.Process(target=_grpc_sender, args=(grpc_target, args.http_senders + w, per, args.pre_encode, start, done))
        for w in range(args.grpc_senders)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        done.get(timeout=3600)  # every sender is ready (and has built its payloads with --pre-encode)
    time.sleep(1.0)
    cpu0 = _cpu_seconds(server.pid)
    t0 = time.perf_counter()
    start.set()
    total = sum(done.get(timeout=3600) for _ in procs)
    ingest_s = time.perf_counter() - t0
    cpu_ms_per_span = (_cpu_seconds(server.pid) - cpu0) * 1000 / max(total, 1)
    for p in procs:
        p.join()
    ingest_rate = total / ingest_s
    status = json.loads(urllib.request.urlopen(api + "/-/status").read())
    assert status["spans"] == total, (status, total)

    results, rss, db_mb = _query_phase(api, server, db, args.queries)
    baseline = float("nan") if args.skip_baseline else _baseline_sqlite(min(args.spans, 100_000), tmp)
    print(f"\nspans: {total:,} over {args.http_senders} OTLP/HTTP + {args.grpc_senders} OTLP/gRPC senders")
    print(
        f"ingest: {ingest_rate:,.0f} spans/s ({ingest_s:.1f} s); baseline plain SQLite executemany "
        f"{baseline:,.0f} rows/s; ratio {ingest_rate / baseline:.2f}"
    )
    print(f"server CPU per span: {cpu_ms_per_span:.2f} ms (user + system, all threads and child processes)")
    print(f"database bytes per span: {db_mb * 1e6 / max(total, 1):,.0f}")
    _report(results, rss, db_mb)
    if args.phoenix:
        _phoenix(args.phoenix, tmp)


PHOENIX_BIN = Path(__file__).resolve().parents[1] / ".ci" / ".phoenix-venv" / "bin" / "phoenix"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _phoenix(spans: int, tmp: Path) -> None:
    """The same spans sent to ``phoenix serve`` (its own venv, SQLite): when accepted, and when persisted.

    Phoenix answers an export before writing it, so its rate is the count of rows in its database over time.
    """
    import http.client

    work = tmp / "phoenix"
    work.mkdir()
    port, grpc_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    with (work / "phoenix.log").open("wb") as log:
        proc = subprocess.Popen([str(PHOENIX_BIN), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"phoenix did not start; see {work / 'phoenix.log'}") from None
                time.sleep(0.5)
        payloads = list(_batches(9, spans, seed=9))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t0 = time.perf_counter()
        for payload in payloads:
            conn.request("POST", "/v1/traces", body=payload, headers={"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"phoenix: HTTP {resp.status}")
        accepted_s = time.perf_counter() - t0
        db = work / "phoenix.db"
        stored = 0
        while stored < spans and time.perf_counter() - t0 < 3600:
            time.sleep(0.5)
            with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as ro:
                stored = ro.execute("SELECT count(*) FROM spans").fetchone()[0]
        persisted_s = time.perf_counter() - t0
        size = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
        print(
            f"phoenix: {spans:,} spans over one OTLP/HTTP sender accepted in {accepted_s:.1f} s, "
            f"{stored:,} persisted after {persisted_s:.1f} s: {stored / persisted_s:,.0f} spans/s; "
            f"database bytes per span: {size / max(stored, 1):,.0f}"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _queries_only(api: str, server: Any, db: Path, q: int) -> None:
    status = json.loads(urllib.request.urlopen(api + "/-/status").read())
    print(f"\nqueries on an existing store: {status['spans']:,} spans")
    _report(*_query_phase(api, server, db, q))


def _report(results: list[dict[str, Any]], rss: float, db_mb: float) -> None:
    print(f"peak server RSS: {rss:,.0f} MB; database: {db_mb:,.0f} MB\n")
    floor = results[0]["p50_ms"]
    print("| query | p50 ms | p95 ms | p50 / health |")
    print("| --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['query']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p50_ms'] / floor:.1f} |")


def _query_phase(api: str, server: Any, db: Path, q: int) -> tuple[list[dict[str, Any]], float, float]:
    rng = random.Random(9)
    vocab = _vocabulary(random.Random(1))
    sample = json.loads(urllib.request.urlopen(api + "/api/v1/spans?limit=200&sort=duration").read())["items"]
    traces = [it["trace_id"] for it in sample]
    results = [
        _latency("baseline: GET /-/health", [api + "/-/health"] * q),
        _latency(
            "full-text search (q=word, limit 50)", [f"{api}/api/v1/spans?q={rng.choice(vocab)}" for _ in range(q)]
        ),
        _latency(
            "filtered search (model+tenant+status)",
            [
                f"{api}/api/v1/spans?model={rng.choice(MODELS)}&tenant={rng.choice(TENANTS)}&status=success"
                for _ in range(q)
            ],
        ),
        _latency(
            "stats (group_by=model, bucket=1h)", [f"{api}/api/v1/stats?group_by=model&bucket=1h"] * max(q // 6, 5)
        ),
        _latency("stats, last 24 h (bucket=auto)", [f"{api}/api/v1/stats?since=24h&bucket=auto"] * max(q // 6, 5)),
        _latency(
            "stats, one tenant (group_by=model)",
            [f"{api}/api/v1/stats?group_by=model&tenant={rng.choice(TENANTS)}" for _ in range(max(q // 6, 5))],
        ),
        _latency("trace fetch", [f"{api}/api/v1/traces/{rng.choice(traces)}" for _ in range(q)]),
    ]
    rss = _rss_peak_mb(server.pid)
    db_mb = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists()) / 1e6
    server.terminate()
    server.wait(60)
    return results, rss, db_mb


if __name__ == "__main__":
    main()
