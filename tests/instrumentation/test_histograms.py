"""``record_points``: the points of one LM call recorded together give Histogram.record's data points."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Histogram as SDKHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from spyglass.instrumentation._histograms import record_points

from .test_core import _histogram_points


@pytest.mark.parametrize("setup", ["cumulative", "delta", "sampled-parent", "exemplars"])
def test_record_points_equals_recording_each_point(setup: str) -> None:
    def provider() -> tuple[Any, Any]:
        temporality: dict[type, AggregationTemporality] | None = None
        if setup == "delta":
            temporality = {SDKHistogram: AggregationTemporality.DELTA}
        reader = InMemoryMetricReader(preferred_temporality=temporality)
        kw: dict[str, Any] = {"exemplar_filter": AlwaysOnExemplarFilter()} if setup == "exemplars" else {}
        meter = MeterProvider(metric_readers=[reader], **kw).get_meter("m")
        hists = (
            meter.create_histogram("duration", explicit_bucket_boundaries_advisory=[0.01, 0.1, 1.0]),
            meter.create_histogram("tokens", explicit_bucket_boundaries_advisory=[1, 10, 100, 1000]),
            meter.create_histogram("chunk", explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1]),
        )
        return reader, hists

    fast_reader, (fd, ft, fc) = provider()
    public_reader, (pd, pt, pc) = provider()
    m: dict[str, Any] = {"gen_ai.operation.name": "chat", "server.port": 443}
    m_in, m_out = {**m, "gen_ai.token.type": "input"}, {**m, "gen_ai.token.type": "output"}
    parent = TracerProvider().get_tracer("t").start_span("p") if setup != "cumulative" else trace.INVALID_SPAN
    for i in range(4):
        chunks = [0.002 * (i + 1), 0.05, 0.5]
        with trace.use_span(parent):
            record_points([(fd, (0.3 * i,), m), (ft, (12 + i,), m_in), (ft, (700,), m_out), (fc, chunks, m)])
            for hist, value, attrs in ((pd, 0.3 * i, m), (pt, 12 + i, m_in), (pt, 700, m_out)):
                hist.record(value, attrs)
            for v in chunks:
                pc.record(v, m)
        if i == 1:  # a collection in between (a delta reader starts new aggregations)
            assert _histogram_points(fast_reader) == _histogram_points(public_reader)
    assert _histogram_points(fast_reader) == _histogram_points(public_reader)
