"""The Spyglass exporter: cost, redaction and capture policies on the way out to any OTLP backend."""

from __future__ import annotations

__all__: list[str] = []
