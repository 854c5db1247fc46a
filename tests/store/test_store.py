"""The in-process :class:`~spyglass.store.Store`: the exporter's prices on ingest, and histogram percentiles
for large result sets, checked against values computed independently."""

from __future__ import annotations

import math
import random
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spyglass.exporter import price
from spyglass.semconv import extensions, gen_ai
from spyglass.store import Filters, Record, Store, queries
from spyglass.store._store import exporter_pricer

MODELS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("gemini-2.5-flash", "gcp.gemini"),
    ("o3", "openai"),
    ("no-such-model-xyz", "openai"),
]


def test_store_prices_like_the_exporter() -> None:
    pricer = exporter_pricer()
    assert pricer is not None
    rng = random.Random(11)
    checked = 0
    for model, provider in MODELS:
        for big in (False, True):
            for _ in range(15):
                rec = Record("0" * 32, "1" * 16, None, "chat", 3, time.time_ns(), time.time_ns())
                rec.model = rec.request_model = model
                rec.provider = provider
                rec.input_tokens = rng.randint(150_000, 400_000) if big else rng.randint(0, 90_000)
                rec.cache_read_tokens = rng.randint(0, rec.input_tokens // 2)
                rec.cache_write_tokens = rng.randint(0, rec.input_tokens // 4)
                rec.output_tokens = rng.randint(0, 9_000)
                rec.reasoning_tokens = rng.randint(0, rec.output_tokens)
                attrs = {
                    gen_ai.REQUEST_MODEL: model,
                    gen_ai.RESPONSE_MODEL: model,
                    gen_ai.PROVIDER_NAME: provider,
                    gen_ai.USAGE_INPUT_TOKENS: rec.input_tokens,
                    gen_ai.USAGE_OUTPUT_TOKENS: rec.output_tokens,
                    gen_ai.USAGE_CACHE_READ_INPUT_TOKENS: rec.cache_read_tokens,
                    gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS: rec.cache_write_tokens,
                    gen_ai.USAGE_REASONING_OUTPUT_TOKENS: rec.reasoning_tokens,
                }
                expected = price(attrs, datetime.fromtimestamp(rec.start_ns / 1e9, tz=timezone.utc))
                got = pricer(rec)
                if extensions.USAGE_COST not in expected:
                    assert got is None
                    continue
                assert got is not None
                assert got[0] == pytest.approx(expected[extensions.USAGE_COST], rel=1e-9, abs=1e-12)
                checked += 1
    assert checked >= 60


def _spans(durations_ms: list[float]) -> ExportTraceServiceRequest:
    now = time.time_ns()
    spans = [
        Span(
            trace_id=(i + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name="chat",
            start_time_unix_nano=now + i,
            end_time_unix_nano=now + i + int(d * 1e6),
            attributes=[
                KeyValue(key=gen_ai.OPERATION_NAME, value=AnyValue(string_value="chat")),
                KeyValue(key=gen_ai.REQUEST_MODEL, value=AnyValue(string_value=("a", "b")[i % 2])),
            ],
        )
        for i, d in enumerate(durations_ms)
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


def test_histogram_percentiles_are_within_the_documented_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    durations = [round(rng.lognormvariate(6, 1.2), 3) + 0.5 for _ in range(3000)]
    store = Store(tmp_path / "h.db", pricer=False)
    try:
        _, done = store.ingest(_spans(durations))
        done.result()
        exact = store.read(queries.stats, Filters(), group_by="model")
        assert exact["latency_ms"]["exact"] is True
        monkeypatch.setattr(queries, "EXACT_LIMIT", 10)
        approx = store.read(queries.stats, Filters(), group_by="model")
    finally:
        store.close()
    assert approx["latency_ms"]["exact"] is False
    ordered = sorted(durations)
    for p in (50, 90, 95, 99):
        true = ordered[math.ceil(p / 100 * len(ordered)) - 1]
        assert exact["latency_ms"][f"p{p}"] == pytest.approx(true, rel=1e-9)
        assert approx["latency_ms"][f"p{p}"] == pytest.approx(true, rel=0.006)
    for group in approx["groups"]:
        values = sorted(d for i, d in enumerate(durations) if ("a", "b")[i % 2] == group["key"])
        true = values[math.ceil(0.9 * len(values)) - 1]
        assert group["latency_ms"]["p90"] == pytest.approx(true, rel=0.006)
    assert approx["count"] == exact["count"] == 3000


def test_reads_have_a_time_limit(tmp_path: Path) -> None:
    from spyglass.store._store import QueryTimeout

    store = Store(tmp_path / "t.db", pricer=False, read_timeout_s=0.05)
    try:

        def slow(conn: Any) -> Any:
            return conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
            ).fetchone()

        with pytest.raises(QueryTimeout, match="narrow the filters"):
            store.read(slow)
        # The connection is still usable afterwards.
        assert store.read(queries.count, Filters()) == 0
    finally:
        store.close()


def _varied(n: int, base: int, seed: int, hours: int = 6) -> tuple[ExportTraceServiceRequest, list[dict[str, Any]]]:
    """Spans over some hours with varied model, tenant, status, tokens and cost; returns what was sent."""
    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []
    by_tenant: dict[str, list[Span]] = {}
    for i in range(n):
        start = base + rng.randint(0, hours * 3600 * 10**9 - 1)
        call = {
            "span_id": (seed * 10**6 + i + 1).to_bytes(8, "big"),
            "start": start,
            "duration": rng.lognormvariate(6, 1.0),
            "model": rng.choice(["m1", "m2", "m3"]),
            "tenant": rng.choice(["t1", "t2"]),
            "error": rng.random() < 0.1,
            "input": rng.randint(1, 5000),
            "cost": rng.random() / 100,
        }
        sent.append(call)
        attrs = [
            KeyValue(key=gen_ai.OPERATION_NAME, value=AnyValue(string_value="chat")),
            KeyValue(key=gen_ai.REQUEST_MODEL, value=AnyValue(string_value=call["model"])),
            KeyValue(key=gen_ai.USAGE_INPUT_TOKENS, value=AnyValue(int_value=call["input"])),
            KeyValue(key=extensions.USAGE_COST, value=AnyValue(double_value=call["cost"])),
        ]
        if call["error"]:
            attrs.append(KeyValue(key=gen_ai.ERROR_TYPE, value=AnyValue(string_value="APIError")))
        by_tenant.setdefault(call["tenant"], []).append(
            Span(
                trace_id=call["span_id"] * 2,
                span_id=call["span_id"],
                name="chat",
                start_time_unix_nano=start,
                end_time_unix_nano=start + int(call["duration"] * 1e6),
                attributes=attrs,
            )
        )
    resource_spans = [
        ResourceSpans(
            resource={"attributes": [KeyValue(key=extensions.TENANT_ID, value=AnyValue(string_value=tenant))]},
            scope_spans=[ScopeSpans(spans=spans)],
        )
        for tenant, spans in by_tenant.items()
    ]
    return ExportTraceServiceRequest(resource_spans=resource_spans), sent


def test_hourly_rollups_answer_like_the_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hour = 3600 * 10**9
    base = (time.time_ns() // hour - 10) * hour
    store = Store(tmp_path / "roll.db", pricer=False)
    try:
        req, sent = _varied(1500, base, seed=1)
        for _ in range(2):  # the second send is an exporter's retry: rollups must not count it twice
            _, done = store.ingest(req)
            done.result()
        req2, sent2 = _varied(500, base, seed=2)
        _, done = store.ingest(req2)
        done.result()
        sent += sent2
        # Retention removes the spans of the first hour; the rollups lose them too.
        cutoff = base + hour
        from spyglass.store import Retention

        store.writer.retain(Retention(max_age_s=(time.time_ns() - cutoff) / 1e9)).result()
        kept = [c for c in sent if c["start"] >= cutoff]
        rolled_up = store.read(lambda conn: conn.execute("SELECT sum(n), sum(errors) FROM rollups").fetchone())
        assert rolled_up == (len(kept), sum(c["error"] for c in kept))
        cells = store.read(queries._rollup_part, Filters(llm=True), "model", None, queries._LOW, queries._HIGH)
        assert sum(acc.n for acc in cells.values()) == len(kept)
        monkeypatch.setattr(queries, "EXACT_LIMIT", 10)
        cases = [
            (Filters(), "model", "1h", kept),
            (
                Filters(tenant=("t2",), status=("error",)),
                None,
                None,
                [c for c in kept if c["tenant"] == "t2" and c["error"]],
            ),
            (
                Filters(since_ns=base + 90 * 60 * 10**9, until_ns=base + 4 * hour + 15 * 60 * 10**9),
                "tenant",
                "2h",
                [c for c in kept if base + 90 * 60 * 10**9 <= c["start"] < base + 4 * hour + 15 * 60 * 10**9],
            ),
        ]
        for filters, group_by, bucket, expected in cases:
            data = store.read(queries.stats, filters, group_by=group_by, bucket=bucket)
            assert data["latency_ms"]["exact"] is False
            _check(data, expected)
            if group_by:
                key = {"model": "model", "tenant": "tenant"}[group_by]
                for group in data["groups"]:
                    _check(group, [c for c in expected if c[key] == group["key"]])
            if bucket:
                width = {"1h": hour, "2h": 2 * hour}[bucket]
                for b in data["buckets"]:
                    _check(b, [c for c in expected if c["start"] // width * width == b["start_ns"]])
        auto = store.read(queries.stats, Filters(), bucket="auto")
        assert sum(b["count"] for b in auto["buckets"]) == auto["count"] == len(kept)
        # min_cost is not a rollup dimension: the spans answer (histogram, as the count is over the limit).
        assert store.read(queries.stats, Filters(min_cost=0.001))["latency_ms"]["exact"] is False  # raw histogram
        monkeypatch.setattr(queries, "EXACT_LIMIT", 200_000)
        assert store.read(queries.stats, Filters())["latency_ms"]["exact"] is True
    finally:
        store.close()


def _check(data: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    assert data["count"] == len(calls)
    assert data["errors"] == sum(c["error"] for c in calls)
    assert data["tokens"]["input"] == sum(c["input"] for c in calls)
    assert data["cost"] == pytest.approx(sum(c["cost"] for c in calls))
    durations = sorted(int(c["duration"] * 1e6) / 1e6 for c in calls)
    assert data["latency_ms"]["avg"] == pytest.approx(sum(durations) / len(durations))
    assert data["latency_ms"]["max"] == pytest.approx(durations[-1], rel=0.006)
    for p in (50, 95, 99):
        true = durations[max(math.ceil(p / 100 * len(durations)), 1) - 1]
        assert data["latency_ms"][f"p{p}"] == pytest.approx(true, rel=0.006)


def test_auto_buckets_over_long_ranges_are_whole_hours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hour = 3600 * 10**9
    base = (time.time_ns() // hour - 40) * hour
    store = Store(tmp_path / "auto.db", pricer=False)
    try:
        req, sent = _varied(800, base, seed=5, hours=30)
        _, done = store.ingest(req)
        done.result()
        monkeypatch.setattr(queries, "EXACT_LIMIT", 10)
        data = store.read(queries.stats, Filters(), bucket="auto")
    finally:
        store.close()
    assert data["bucket_ns"] == hour and data["latency_ms"]["exact"] is False
    for b in data["buckets"]:
        _check(b, [c for c in sent if c["start"] // hour * hour == b["start_ns"]])
    assert sum(b["count"] for b in data["buckets"]) == len(sent)


def _text_spans(ids: range, word: str) -> ExportTraceServiceRequest:
    spans = [
        Span(
            trace_id=(10_000 + i).to_bytes(16, "big"),
            span_id=i.to_bytes(8, "big"),
            name="chat",
            start_time_unix_nano=1_700_000_000 * 10**9 + i,
            end_time_unix_nano=1_700_000_000 * 10**9 + i + 5_000_000,
            attributes=[
                KeyValue(key=gen_ai.OPERATION_NAME, value=AnyValue(string_value="chat")),
                KeyValue(
                    key=gen_ai.INPUT_MESSAGES,
                    value=AnyValue(string_value=f'[{{"role":"user","content":"{word} {i}"}}]'),
                ),
            ],
        )
        for i in ids
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


def test_retried_spans_in_a_mixed_transaction_keep_the_index_and_rollups_exact(tmp_path: Path) -> None:
    """The writer indexes the text it holds when every row is new, and reads rows back when some were
    already stored: both paths must leave the full-text index matching the rows (FTS5 integrity-check)."""
    store = Store(tmp_path / "mixed.db", pricer=False)
    try:
        store.ingest(_text_spans(range(1, 101), "alpha"))[1].result()
        # Queued together, these land in one transaction: a retry of 50 stored spans, then 100 new ones.
        started = threading.Event()

        def hold(conn: Any) -> None:  # holds the writer so that the next two requests queue up together
            started.set()
            time.sleep(0.3)

        store.writer.call(hold)
        assert started.wait(10)
        retry = store.ingest(_text_spans(range(51, 101), "alpha"))[1]
        new = store.ingest(_text_spans(range(101, 201), "beta"))[1]
        assert retry.result() == 50 and new.result() == 100

        def check(conn: Any) -> tuple[int, int, int, int]:
            conn.execute("INSERT INTO spans_fts (spans_fts, rank) VALUES ('integrity-check', 1)")
            count = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
            alpha = conn.execute("SELECT count(*) FROM spans_fts WHERE spans_fts MATCH 'alpha'").fetchone()[0]
            beta = conn.execute("SELECT count(*) FROM spans_fts WHERE spans_fts MATCH 'beta'").fetchone()[0]
            rolled = conn.execute("SELECT sum(n) FROM rollups").fetchone()[0]
            return count, alpha, beta, rolled

        assert store.write(check) == (200, 100, 100, 200)
        # The common path (all new) on its own, then checked the same way.
        store.ingest(_text_spans(range(201, 301), "gamma"))[1].result()
        assert store.write(check) == (300, 100, 100, 300)
    finally:
        store.close()
