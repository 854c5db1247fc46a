"""No span lost, app never blocked: outages, Retry-After, non-retryable errors, the spool and its cap."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from spyglass.exporter import SpyglassSpanExporter
from spyglass.exporter._spool import Spool
from spyglass.semconv import gen_ai
from tests.conftest import Telemetry
from tests.exporter.receivers import GrpcReceiver, HttpReceiver

OUTAGE_S = 6.0
"""How long the receiver is down in the outage test. The issue asks for 30 s; the behaviour under test (every
retry fails, batches spill to the spool, the sender backs off up to ``backoff_max``, then resends in order)
is fully exercised once the outage outlasts several backoff cycles. With ``backoff_max=1 s`` six seconds is
five-plus cycles, and it keeps the two protocol variants at ~15 s instead of ~70 s of the suite's budget.
Set it to 30 to run the issue's exact scenario (done when this was written: both protocols passed, ~32 s
each); nothing else in the test depends on the value."""


def _exporter(endpoint: str, protocol: str, **kwargs: Any) -> SpyglassSpanExporter:
    return SpyglassSpanExporter(
        endpoint=endpoint, protocol=protocol, backoff_initial=0.1, backoff_max=1.0, timeout=2.0, **kwargs
    )


class Producer:
    """The app: a thread ending spans at a steady rate and timing how long each span's end() took."""

    def __init__(self, exporter: SpyglassSpanExporter) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": "outage-app"}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
        self.tracer = self.provider.get_tracer("test")
        self.seq = 0
        self.slowest_end = 0.0

    def emit(self, n: int, interval: float = 0.0) -> None:
        for _ in range(n):
            span = self.tracer.start_span("chat gpt-4o")
            span.set_attribute(gen_ai.OPERATION_NAME, "chat")
            span.set_attribute("test.seq", self.seq)
            self.seq += 1
            t0 = time.perf_counter()
            span.end()
            self.slowest_end = max(self.slowest_end, time.perf_counter() - t0)
            if interval:
                time.sleep(interval)


def _seqs(receiver: Any) -> list[int]:
    return [receiver.attributes(s)["test.seq"] for s in receiver.spans()]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_outage_every_span_once_in_order_and_the_app_never_waits(protocol: str, tmp_path: Path) -> None:
    receiver = GrpcReceiver() if protocol == "grpc" else HttpReceiver()
    receiver.start()
    exporter = _exporter(receiver.endpoint, protocol, spool_dir=tmp_path / "spool")
    app = Producer(exporter)
    try:
        app.emit(50)
        assert app.provider.force_flush(10_000) and exporter.force_flush(10_000)
        assert len(receiver.spans()) == 50

        receiver.stop()
        during = threading.Thread(target=app.emit, args=(300, OUTAGE_S / 300))
        t0 = time.monotonic()
        during.start()
        during.join()
        assert time.monotonic() - t0 < OUTAGE_S * 2  # the app thread ran at its own pace
        app.provider.force_flush(10_000)
        assert exporter.counts.spooled > 0 and exporter.counts.retried > 0
        assert len(receiver.spans()) == 50  # nothing got through while it was down

        receiver.start()  # same port
        assert exporter.force_flush(30_000)
        seqs = _seqs(receiver)
        assert sorted(seqs) == list(range(350))  # every span exactly once
        assert seqs == sorted(seqs)  # and in the order they were exported
        assert exporter.counts.dropped == 0 and exporter.counts.exported == 350
        assert exporter.pending_spans == 0 and not list((tmp_path / "spool").glob("*.otlp"))
        # The app's span.end() is an enqueue: far below one retry backoff, let alone the outage.
        assert app.slowest_end < 1.0, app.slowest_end
    finally:
        app.provider.shutdown()
        receiver.stop()


def test_retry_after_is_honoured() -> None:
    with HttpReceiver() as receiver:
        receiver.fail_next, receiver.fail_status, receiver.retry_after = 2, 429, "1"
        exporter = _exporter(receiver.endpoint, "http/protobuf")
        app = Producer(exporter)
        t0 = time.monotonic()
        app.emit(5)
        assert app.provider.force_flush(10_000) and exporter.force_flush(15_000)
        elapsed = time.monotonic() - t0
        app.provider.shutdown()
    assert receiver.failures_served == 2 and _seqs(receiver) == [0, 1, 2, 3, 4]
    assert elapsed >= 1.9  # two Retry-After: 1 waits, where the backoff alone would be ~0.1 + 0.2 s
    assert exporter.counts.retried == 10 and exporter.counts.exported == 5


def test_non_retryable_status_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    with HttpReceiver() as receiver:
        receiver.fail_next, receiver.fail_status = 1, 400
        exporter = _exporter(receiver.endpoint, "http/protobuf")
        app = Producer(exporter)
        with caplog.at_level(logging.ERROR, logger="spyglass"):
            app.emit(3)
            assert app.provider.force_flush(10_000) and exporter.force_flush(10_000)
            app.emit(2)
            assert app.provider.force_flush(10_000) and exporter.force_flush(10_000)
        app.provider.shutdown()
    assert exporter.counts.dropped == 3 and exporter.counts.retried == 0 and exporter.counts.exported == 2
    assert _seqs(receiver) == [3, 4]
    assert any("HTTP 400" in r.getMessage() and "not retryable" in r.getMessage() for r in caplog.records)


def test_memory_stays_bounded_without_a_spool(telemetry: Telemetry) -> None:
    # A port nothing listens on: every send fails (connection refused) and is retried.
    with HttpReceiver() as dead:
        endpoint = dead.endpoint
    exporter = _exporter(endpoint, "http/protobuf", max_queue_bytes=4_000, meter_provider=telemetry.meter_provider)
    app = Producer(exporter)
    for _ in range(20):
        app.emit(10)
        app.provider.force_flush(5_000)
    queued = exporter.pending_spans
    assert exporter.counts.dropped > 0 and queued + exporter.counts.dropped == 200
    assert queued < 200
    exporter.shutdown(timeout_millis=200)
    app.provider.shutdown()
    # Read the metric only once the sender thread has stopped: until then a retry may be counted between
    # the two reads (the counts move first, then the counter).
    points = {dict(p.attributes)["spyglass.outcome"]: p.value for p in telemetry.metrics()["spyglass.exporter.spans"]}
    assert points["dropped"] == exporter.counts.dropped
    assert points.get("retried", 0) == exporter.counts.retried


def test_unsent_spans_survive_shutdown_in_the_spool_and_are_resent_by_the_next_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    with HttpReceiver() as receiver:
        endpoint = receiver.endpoint
        port = receiver.port
    first = _exporter(endpoint, "http/protobuf", spool_dir=spool)
    app = Producer(first)
    app.emit(25)
    app.provider.force_flush(5_000)
    with caplog.at_level(logging.INFO, logger="spyglass"):
        first.shutdown(timeout_millis=300)
    assert any("exported=0" in r.getMessage() and "still in spool: 25" in r.getMessage() for r in caplog.records)
    assert list(spool.glob("*.otlp"))

    receiver = HttpReceiver()
    receiver.port = port
    with receiver:
        second = _exporter(receiver.endpoint, "http/protobuf", spool_dir=spool)
        assert second.force_flush(10_000)
        second.shutdown()
    assert _seqs(receiver) == list(range(25))
    app.provider.shutdown()


def test_spool_cap_drops_the_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=250)
    assert spool.put(b"a" * 100, 1) == 0
    assert spool.put(b"b" * 100, 2) == 0
    assert spool.put(b"c" * 100, 3) == 1  # "a" (1 span) dropped to make room
    assert spool.put(b"d" * 1000, 4) == 4  # larger than the cap on its own: refused, counted
    reopened = Spool(tmp_path, max_bytes=250)  # another process picks up where this one stopped
    order = []
    while (head := reopened.peek()) is not None:
        batch, payload = head
        order.append((payload[:1], batch.spans))
        reopened.pop(batch)
    assert order == [(b"b", 2), (b"c", 3)]


def test_bad_environment_never_stops_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url")
    monkeypatch.setenv("OTEL_SPYGLASS_SPOOL_DIR", str(blocker / "spool"))
    monkeypatch.setenv("OTEL_SPYGLASS_POLICY_FILE", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("OTEL_SPYGLASS_REDACTION_DETECTORS", "EMAIL,NOPE")
    exporter = SpyglassSpanExporter()  # what opentelemetry-instrument does
    try:
        assert exporter.endpoint == "http://localhost:4318/v1/traces"
        assert exporter.pending_spans == 0
    finally:
        exporter.shutdown(timeout_millis=100)
    with pytest.raises(ValueError, match="http"):
        SpyglassSpanExporter(endpoint="not a url")  # a bad argument is the caller's bug: raise


def test_spool_front_insertion_keeps_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.put(b"2", 1)
    spool.put(b"3", 1)
    spool.put(b"1", 1, front=True)  # the batch that was in flight when the backend failed
    order = []
    reopened = Spool(tmp_path, max_bytes=10_000)
    while (head := reopened.peek()) is not None:
        order.append(head[1])
        reopened.pop(head[0])
    assert order == [b"1", b"2", b"3"]


def test_partial_success_rejections_are_counted_as_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with HttpReceiver() as receiver:
        receiver.reject_spans = 2
        exporter = _exporter(receiver.endpoint, "http/protobuf")
        app = Producer(exporter)
        with caplog.at_level(logging.WARNING, logger="spyglass"):
            app.emit(5)
            assert app.provider.force_flush(10_000) and exporter.force_flush(10_000)
        app.provider.shutdown()
    assert exporter.counts.exported == 3 and exporter.counts.dropped == 2 and exporter.counts.retried == 0
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "rejected 2 of 5 spans" in messages and "span too large" in messages
