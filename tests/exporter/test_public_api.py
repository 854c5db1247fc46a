"""The front door: a sorted ``__all__`` whose names all resolve and present themselves as ``spyglass.exporter``."""

from __future__ import annotations

import spyglass.exporter as exporter


def test_all_is_sorted_and_resolves() -> None:
    assert exporter.__all__ == sorted(exporter.__all__)
    for name in exporter.__all__:
        obj = getattr(exporter, name)
        assert obj.__module__ == "spyglass.exporter", name


def test_entry_point_loads_the_exporter() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "spyglass"]
    assert ep.load() is exporter.SpyglassSpanExporter
