"""Shared fixtures: recorded provider traffic on a real 127.0.0.1 server, and in-memory OpenTelemetry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401 - see below
import pytest

from spyglass.testing.replay import Recording, ReplayServer, load_recording
from tests.phoenix import phoenix  # noqa: F401 - session fixture: one Phoenix server for all `phoenix` tests

# Importing hypothesis here, at collection, keeps CPython 3.11.7's AST recursion-depth bug (gh-106905) from
# crashing the run at the end: its pytest plugin otherwise imports (and assertion-rewrites) hypothesis in
# pytest_terminal_summary, after the SDK tests, and ast.parse fails with "AST constructor recursion depth
# mismatch". Fixed in CPython 3.11.8.
FIXTURES = Path(__file__).parent / "fixtures"
RECORDINGS = FIXTURES / "llm-http"


def recording(name: str) -> Recording:
    """Load ``tests/fixtures/llm-http/<name>.json`` (name with or without ``.json``)."""
    return load_recording(RECORDINGS / (name if name.endswith(".json") else f"{name}.json"))


def recordings(prefix: str = "") -> list[Recording]:
    """Every recording whose file name starts with ``prefix``, sorted by name."""
    return [load_recording(p) for p in sorted(RECORDINGS.glob(f"{prefix}*.json"))]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the developer's OTEL_* settings or provider keys."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "AZURE_OPENAI_")):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def _replay_server() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def replay(_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server, emptied for this test; the test fails if a request matched no recording."""
    _replay_server.reset()
    yield _replay_server
    unmatched = list(_replay_server.unmatched)
    _replay_server.reset()
    if unmatched:
        pytest.fail("requests matched no queued recording: " + "; ".join(u.reason for u in unmatched))


class Telemetry:
    """An SDK tracer provider exporting to memory, and a meter provider read in memory."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])

    def spans(self) -> list:  # list[ReadableSpan]
        return list(self.exporter.get_finished_spans())

    def metrics(self) -> dict[str, list]:
        """Metric name -> its data points, from one collection."""
        data = self.metric_reader.get_metrics_data()
        out: dict[str, list] = {}
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Fresh in-memory tracing and metrics for one test (pass its providers to ``instrument()``)."""
    t = Telemetry()
    yield t
    t.shutdown()
