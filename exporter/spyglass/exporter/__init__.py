"""The Spyglass exporter: cost, redaction and capture policies on the way out to any OTLP backend.

Public API:

- :class:`SpyglassSpanExporter`: the ``SpanExporter`` (entry point ``opentelemetry_traces_exporter: spyglass``):
  OTLP gRPC / HTTP protobuf / HTTP JSON or a file, retries with backoff, disk spool, metrics.
- :func:`configure`: one-call setup in code (provider, batch processor, exporter, meters, instrumentors).
- :func:`price` / :class:`Pricer`: cost attributes for a span's attributes (``genai-prices``, offline, with
  user overrides from ``OTEL_SPYGLASS_PRICES_FILE``). The trace store imports this rather than copying it.
- :class:`Redactor`: PII and secret detectors with mask / HMAC-hash / drop modes, for text and message JSON.
- :class:`CapturePolicy` / :class:`PolicyFile`: rules choosing full, redacted or metadata-only content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spyglass.exporter._cost import PriceOverride, Pricer, load_price_overrides, price
from spyglass.exporter._modes import ContentMode, RedactionMode
from spyglass.exporter._policy import CapturePolicy, PolicyError, PolicyFile, PolicyRule
from spyglass.exporter._redaction import Redactor

__all__ = [
    "CapturePolicy",
    "Configured",
    "ContentMode",
    "ExportCounts",
    "PolicyError",
    "PolicyFile",
    "PolicyRule",
    "PriceOverride",
    "Pricer",
    "RedactionMode",
    "Redactor",
    "SpyglassSpanExporter",
    "configure",
    "load_price_overrides",
    "price",
]

if TYPE_CHECKING:
    from spyglass.exporter._configure import Configured, configure
    from spyglass.exporter._exporter import ExportCounts, SpyglassSpanExporter

# The exporter and configure() need the OpenTelemetry SDK; they load on first use, so the pricing and
# redaction API (used by the store) imports without it.
_LAZY = {
    "Configured": "spyglass.exporter._configure",
    "configure": "spyglass.exporter._configure",
    "ExportCounts": "spyglass.exporter._exporter",
    "SpyglassSpanExporter": "spyglass.exporter._exporter",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    value.__module__ = __name__
    globals()[name] = value
    return value


# Reprs and docs show the public path (spyglass.exporter.Pricer), as httpx does.
for _name in __all__:
    if _name not in _LAZY:
        globals()[_name].__module__ = __name__
