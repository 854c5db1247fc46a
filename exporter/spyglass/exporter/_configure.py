"""``configure()``: one call that sets up tracing through the Spyglass exporter for people who do it in code.

Usage::

    import spyglass.exporter
    spyglass.exporter.configure(service_name="support-bot")   # reads OTEL_* for everything else

It reuses an SDK tracer provider that is already installed (adding one batch processor to it) or installs a
new one, sets up a meter provider if none is installed, and instruments every installed Spyglass
instrumentor (entry points ``opentelemetry_instrumentor`` named ``spyglass_*``). An instrumentor that fails
to load or instrument is logged and skipped: tracing setup never breaks the application.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from spyglass.exporter._exporter import SpyglassSpanExporter

__all__ = ["Configured", "configure"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured: Configured | None = None
_PREFIX = "spyglass_"


@dataclass
class Configured:
    """What :func:`configure` set up; ``shutdown()`` flushes and stops it."""

    tracer_provider: TracerProvider
    meter_provider: Any
    exporter: SpyglassSpanExporter
    instrumented: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def shutdown(self) -> None:
        global _configured
        for name, instrumentor in list(self._instrumentors.items()):
            try:
                instrumentor.uninstrument()
            except Exception:
                _log.debug("uninstrumenting %s failed", name, exc_info=True)
        self.tracer_provider.force_flush()
        self.exporter.shutdown()
        with _lock:
            if _configured is self:
                _configured = None

    _instrumentors: dict[str, Any] = field(default_factory=dict, repr=False)


def _instrument_all(configured: Configured, disabled: set[str]) -> None:
    for ep in entry_points(group="opentelemetry_instrumentor"):
        if not ep.name.startswith(_PREFIX) or ep.name in disabled:
            continue
        try:
            cls = ep.load()
            instrumentor = cls()
            if getattr(instrumentor, "is_instrumented_by_opentelemetry", False):
                configured.instrumented.append(ep.name)
                continue
            instrumentor.instrument(
                tracer_provider=configured.tracer_provider, meter_provider=configured.meter_provider
            )
        except Exception as exc:  # another engineer's module, a missing library: log and carry on
            configured.failed[ep.name] = f"{type(exc).__name__}: {exc}"
            _log.warning("spyglass: instrumentor %s not enabled: %s", ep.name, exc)
            continue
        configured.instrumented.append(ep.name)
        configured._instrumentors[ep.name] = instrumentor


def configure(
    *,
    service_name: str | None = None,
    exporter: SpyglassSpanExporter | None = None,
    instrument: bool = True,
    disabled_instrumentors: set[str] | frozenset[str] = frozenset(),
    metric_readers: Sequence[MetricReader] = (),
    **exporter_options: Any,
) -> Configured:
    """Set up tracer provider, batch processor, Spyglass exporter, meter provider and instrumentors.

    Calling it again returns the first setup unchanged (with a warning if arguments were given).
    ``exporter_options`` go to :class:`SpyglassSpanExporter` when no ``exporter`` is passed. A new meter
    provider gets ``metric_readers`` (e.g. a ``PeriodicExportingMetricReader``); without any, the
    instrumentors' metrics and the exporter's counters stay in process.
    """
    global _configured
    with _lock:
        if _configured is not None:
            if service_name or exporter or exporter_options:
                _log.warning("spyglass.exporter.configure() called again; keeping the first configuration")
            return _configured
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            attrs = {SERVICE_NAME: service_name} if service_name else {}
            provider = TracerProvider(resource=Resource.create(attrs))
            trace.set_tracer_provider(provider)
        current_meters = metrics.get_meter_provider()
        meter_provider = current_meters if isinstance(current_meters, MeterProvider) else None
        if meter_provider is None:
            meter_provider = MeterProvider(resource=provider.resource, metric_readers=list(metric_readers))
            metrics.set_meter_provider(meter_provider)
        if exporter is None:
            exporter = SpyglassSpanExporter(meter_provider=meter_provider, **exporter_options)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        configured = Configured(provider, meter_provider, exporter)
        if instrument:
            _instrument_all(configured, set(disabled_instrumentors))
        _configured = configured
        return configured
