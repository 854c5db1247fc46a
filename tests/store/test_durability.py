"""SIGKILL the server while spans stream in over HTTP and gRPC, restart it on the same database: every span
that was acknowledged is there, and the database is intact."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.store.server import StoreServer

BATCH = 150
TEXT = "lorem ipsum dolor sit amet " * 80  # about 2 KB of prompt per span


def _batch(counter: itertools.count[int]) -> tuple[ExportTraceServiceRequest, list[str]]:
    spans = []
    ids = []
    for _ in range(BATCH):
        n = next(counter)
        span_id = n.to_bytes(8, "big")
        ids.append(span_id.hex())
        spans.append(
            Span(
                trace_id=(n // 10 + 1).to_bytes(16, "big"),
                span_id=span_id,
                name="durable",
                start_time_unix_nano=time.time_ns(),
                end_time_unix_nano=time.time_ns() + 1000,
                attributes=[
                    KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                    KeyValue(
                        key="gen_ai.input.messages",
                        value=AnyValue(
                            string_value=f'[{{"role":"user","parts":[{{"type":"text","content":"{TEXT}{n}"}}]}}]'
                        ),
                    ),
                ],
            )
        )
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return req, ids


def test_sigkill_during_ingest_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    server = StoreServer(db).start()
    acked: list[str] = []
    lock = threading.Lock()
    counter = itertools.count(1)
    stop = threading.Event()

    def http_sender() -> None:
        while not stop.is_set():
            with lock:
                req, ids = _batch(counter)
            try:
                resp = server.post_otlp(req.SerializeToString(), "application/x-protobuf")
            except OSError:
                return
            if resp.status == 200:
                with lock:
                    acked.extend(ids)

    def grpc_sender() -> None:
        with grpc.insecure_channel(server.otlp_grpc.removeprefix("http://")) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            while not stop.is_set():
                with lock:
                    req, ids = _batch(counter)
                try:
                    stub.Export(req, timeout=10)
                except grpc.RpcError:
                    return
                with lock:
                    acked.extend(ids)

    threads = [
        threading.Thread(target=http_sender),
        threading.Thread(target=http_sender),
        threading.Thread(target=grpc_sender),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= 20 * BATCH:
                break
        time.sleep(0.02)
    server.kill()  # SIGKILL while all three senders are mid-request
    stop.set()
    for t in threads:
        t.join(30)
    server.stop()
    with lock:
        acknowledged = set(acked)
    assert len(acknowledged) >= 20 * BATCH

    restarted = StoreServer(db).start()
    try:
        stored_count = restarted.get("/-/status").json()["spans"]
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            stored = {row[0] for row in conn.execute("SELECT span_id FROM spans")}
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            fts_rows = conn.execute("SELECT count(*) FROM spans_fts WHERE spans_fts MATCH 'lorem'").fetchone()[0]
        finally:
            conn.close()
        missing = acknowledged - stored
        assert not missing, f"{len(missing)} acknowledged spans were lost"
        assert stored_count == len(stored) and fts_rows == len(stored)
        # The restarted server keeps ingesting.
        req, ids = _batch(counter)
        assert restarted.post_otlp(req.SerializeToString(), "application/x-protobuf").status == 200
        assert restarted.get("/api/v1/spans", trace_id=f"{int(ids[0], 16) // 10 + 1:032x}").status == 200
    finally:
        restarted.stop()
