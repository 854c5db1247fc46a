"""Retention by age and by size on a real database, run by the writer thread; dataset spans are kept."""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spyglass.store import Filters, Retention, Store, queries
from tests.store.server import wait_for

HOUR = 3600 * 10**9


def _request(starts: list[int], word: str, size: int = 100) -> ExportTraceServiceRequest:
    spans = [
        Span(
            trace_id=(i + 1).to_bytes(16, "big"),
            span_id=start.to_bytes(8, "big"),
            name="r",
            start_time_unix_nano=start,
            end_time_unix_nano=start + 1000,
            attributes=[
                KeyValue(key="spyglass.step.input", value=AnyValue(string_value=f"{word} " + "x" * size)),
            ],
        )
        for i, start in enumerate(starts)
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


def test_age_retention_by_the_writer_keeps_dataset_spans(tmp_path: Path) -> None:
    now = time.time_ns()
    old = [now - 5 * HOUR + i for i in range(50)]
    new = [now - HOUR // 2 + i for i in range(30)]
    loader = Store(tmp_path / "r.db", pricer=False)
    try:
        for starts, word in ((old, "ancient"), (new, "recent")):
            _, done = loader.ingest(_request(starts, word))
            done.result()
        # One old span belongs to a dataset: retention must keep it.
        keep = loader.read(queries.search_spans, Filters(q="ancient"), limit=1)["items"][0]
        loader.write(queries.create_dataset, "keep")
        loader.write(queries.add_to_dataset, "keep", ids=[keep["id"]])
    finally:
        loader.close()
    store = Store(tmp_path / "r.db", retention=Retention(max_age_s=3600, interval_s=0.2), pricer=False)
    try:
        assert wait_for(lambda: store.read(queries.count, Filters(q="ancient")) == 1, timeout=10)
        assert store.read(queries.count, Filters(q="recent")) == 30
        assert store.read(queries.count, Filters()) == 31
        (left,) = store.read(queries.search_spans, Filters(q="ancient"))["items"]
        assert left["id"] == keep["id"]
    finally:
        store.close()


def test_size_retention_deletes_the_oldest_first(tmp_path: Path) -> None:
    now = time.time_ns()
    store = Store(tmp_path / "s.db", retention=Retention(interval_s=3600), pricer=False)
    try:
        starts = [now - (2000 - i) * 10**9 for i in range(2000)]
        for chunk in range(0, 2000, 500):
            _, done = store.ingest(_request(starts[chunk : chunk + 500], "bulk", size=2000))
            done.result()

        def used(conn) -> int:  # type: ignore[no-untyped-def]
            pages = (
                conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
            )
            return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])

        before = store.write(used)
        limit = before // 2
        deleted = store.writer.retain(Retention(max_bytes=limit)).result()
        assert deleted > 0
        assert store.write(used) <= limit
        remaining = store.read(queries.search_spans, Filters(), sort="start", limit=1)["items"]
        oldest_left = remaining[0]["start_ns"]
        assert oldest_left == starts[deleted]  # exactly the oldest ones went
        assert store.read(queries.count, Filters(q="bulk")) == 2000 - deleted  # FTS index kept in step
    finally:
        store.close()
