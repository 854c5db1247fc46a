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

from spyglass.exporter._configure import Configured, configure
from spyglass.exporter._cost import PriceOverride, Pricer, load_price_overrides, price
from spyglass.exporter._exporter import ExportCounts, SpyglassSpanExporter
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

# Reprs and docs show the public path (spyglass.exporter.Pricer), as httpx does.
for _name in __all__:
    globals()[_name].__module__ = __name__
