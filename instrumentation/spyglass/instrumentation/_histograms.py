"""Recording histogram points at a fraction of ``Histogram.record``'s cost, with the same data points.

Contract
--------
:func:`record_batch(histogram, values, attributes) <record_batch>` has the effect of
``for v in values: histogram.record(v, attributes)``, and :func:`record` of one such call: the same data
points (count, sum, min, max, buckets) for every reader and view, and the same exemplar eligibility.
``attributes`` must be a dict the caller keeps and never changes (Spyglass keeps one per attribute set):
it is recognised by identity, which costs nothing, where hashing its contents would cost microseconds.

Why: the OpenTelemetry SDK's ``Histogram.record`` costs about 12 µs per point. It builds a
``Measurement``, re-validates and copies the attribute dict, then sorts and hashes it once per reader and
view, every time. Spyglass records three points per LM call and, as the conventions ask, one
``gen_ai.client.operation.time_per_output_chunk`` point per streamed chunk, all with attribute sets that
repeat from call to call. So the lookup is done once per attribute set:

- the first point of an attribute set goes through the public ``record`` (it creates the aggregations and
  runs every view and the exemplar filter as usual); the aggregations it fed are then found by the SDK's
  own attribute key (``_hash_attributes``) and kept with the dict (up to :data:`CACHE_SIZE` sets). If a
  reader's key cannot be found (cardinality overflow, another key scheme), that set is not kept;
- later points go to the same place the SDK's ``_ViewInstrumentMatch.consume_measurement`` would send them:
  the aggregation under the kept key, created by the SDK's own ``_get_or_create_aggregation`` when a delta
  collection has replaced it (holding the view's lock for delta readers, as the SDK does);
- an explicit-bucket aggregation gets the values merged in under its lock, with the steps of its
  ``aggregate`` (sum in the same order, bucket by ``bisect_left``, min and max); any other aggregation, or
  when exemplars are wanted, gets one ``Measurement`` per value through its ``aggregate``, as the SDK
  passes them;
- exemplars: the exemplar filter is asked once per call (the built-in filters do not look at the value,
  and the points of a batch share the time and context); :func:`record_points` asks it once for all the
  points of an LM call.

This reads private SDK structures, so it is used only where they are exactly as expected: the SDK's own
histogram class (``record`` not overridden), one of the built-in exemplar filters, the SDK internals
importable, the same reader set as when the key was kept. Otherwise, and for good after any error, every
point takes the public ``record``. ``tests/instrumentation/test_core.py`` checks the data points equal the
public path's on the installed SDK (cumulative and delta readers, views, exemplars, two readers).
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry.context import get_current
from opentelemetry.metrics import Histogram
from opentelemetry.util.types import AttributeValue

_log = logging.getLogger("spyglass.instrumentation")
_failed = False

CACHE_SIZE = 1024
"""Attribute sets whose aggregations are kept per process (cleared when full)."""

try:  # the SDK's internals (1.4x); without them every point takes the public path
    from opentelemetry.sdk.metrics._internal._view_instrument_match import (
        _hash_attributes,  # type: ignore[attr-defined]
    )
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _ExplicitBucketHistogramAggregation as _ExplicitBuckets,
    )
    from opentelemetry.sdk.metrics._internal.exemplar.exemplar_filter import (
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        TraceBasedExemplarFilter,
    )
    from opentelemetry.sdk.metrics._internal.instrument import Histogram as _SDKHistogram
    from opentelemetry.sdk.metrics._internal.measurement import Measurement

    _BUILTIN_FILTERS: tuple[type, ...] = (AlwaysOffExemplarFilter, AlwaysOnExemplarFilter, TraceBasedExemplarFilter)
    _FAST = True
except Exception:  # pragma: no cover - another SDK layout
    _FAST = False

_Target = tuple[Any, Any, dict[str, Any]]
"""(view instrument match, the SDK's attribute key, the attributes that view keeps)."""
_kept: dict[tuple[int, int], tuple[Any, Mapping[str, AttributeValue], Any, list[_Target]]] = {}
"""By (histogram, attribute dict) identity: the entry holds both, so neither id is reused while kept."""


def record(histogram: Histogram, value: float, attributes: Mapping[str, AttributeValue]) -> None:
    """``histogram.record(value, attributes)``; see the module docstring."""
    _record(histogram, (value,), attributes, [])


def record_batch(histogram: Histogram, values: Sequence[float], attributes: Mapping[str, AttributeValue]) -> None:
    """``histogram.record(v, attributes)`` for each of ``values``; see the module docstring."""
    _record(histogram, values, attributes, [])


def record_points(points: Iterable[tuple[Histogram, Sequence[float], Mapping[str, AttributeValue]]]) -> None:
    """:func:`record_batch` for each ``(histogram, values, attributes)``, in order, as the points of one call:
    they share the time and the context, so the exemplar filter is asked once for all of them."""
    shared: list[Any] = []
    for histogram, values, attributes in points:
        _record(histogram, values, attributes, shared)


def _record(
    hist: Histogram, values: Sequence[float], attributes: Mapping[str, AttributeValue], shared: list[Any]
) -> None:
    if not values:
        return
    global _failed
    done = 0
    if _FAST and not _failed and _is_sdk_histogram(hist):
        try:
            done = _record_fast(hist, values, attributes, shared)
        except Exception:
            # Never again in this process: every later point takes the public path.
            _failed = True
            _log.warning("spyglass: fast histogram recording failed; using Histogram.record", exc_info=True)
    for value in values[done:]:
        hist.record(value, attributes)


_SDK_TYPES: dict[type, bool] = {}


def _is_sdk_histogram(histogram: Any) -> bool:
    # The SDK's own histogram, its ``record`` not overridden: only then is the public path known.
    cls = type(histogram)
    known = _SDK_TYPES.get(cls)
    if known is None:
        known = _SDK_TYPES[cls] = issubclass(cls, _SDKHistogram) and cls.record is _SDKHistogram.record
    return known


def _record_fast(
    hist: Any, values: Sequence[float], attributes: Mapping[str, AttributeValue], shared: list[Any]
) -> int:
    """Record what it can; returns how many of ``values`` (from the start) are recorded.

    ``shared`` is ``[exemplar filter, time, context, sample]`` of the call's earlier points, or empty."""
    if not hist._is_enabled():
        return 0
    for v in values:
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            return 0  # the public path logs the SDK's warning for each bad value
    consumer = hist._measurement_consumer
    exemplar_filter = consumer._sdk_config.exemplar_filter
    if type(exemplar_filter) not in _BUILTIN_FILTERS:
        return 0
    kept = _kept.get((id(hist), id(attributes)))
    storages = consumer._reader_storages
    done = 0
    if kept is None or kept[0] is not hist or kept[1] is not attributes or kept[2] is not storages:
        hist.record(values[0], attributes)
        done = 1
        targets = _targets(hist, storages, attributes)
        if targets is None:
            return 1
        if len(_kept) >= CACHE_SIZE:
            _kept.clear()
        _kept[(id(hist), id(attributes))] = (hist, attributes, storages, targets)
        if len(values) == 1:
            return 1
    else:
        targets = kept[3]
    rest = values[done:] if done else values
    if shared and shared[0] is exemplar_filter:
        now, context, sample = shared[1], shared[2], shared[3]
    else:
        now = time_ns()
        context = get_current()
        sample = bool(exemplar_filter.should_sample(rest[0], now, attributes, context))
        shared[:] = (exemplar_filter, now, context, sample)
    for match, key, attrs in targets:
        if match._reset_on_collect:
            # A delta collection swaps the aggregations out under this lock: hold it while adding.
            with match._lock:
                _add(match._get_or_create_aggregation(key, attrs), rest, sample, hist, now, context, attributes)
            continue
        aggregation = match._attributes_aggregation.get(key)
        if aggregation is None:
            with match._lock:
                aggregation = match._get_or_create_aggregation(key, attrs)
        _add(aggregation, rest, sample, hist, now, context, attributes)
    return len(values)


def _add(
    aggregation: Any,
    values: Sequence[float],
    sample: bool,
    hist: Any,
    now: int,
    context: Any,
    attributes: Mapping[str, AttributeValue],
) -> None:
    if not sample and type(aggregation) is _ExplicitBuckets:
        _merge(aggregation, values)
        return
    aggregate = aggregation.aggregate
    for v in values:
        aggregate(Measurement(v, now, hist, context, attributes), sample)


def _targets(hist: Any, storages: Any, attributes: Mapping[str, AttributeValue]) -> list[_Target] | None:
    """Where a point with ``attributes`` went, per reader and view; ``None`` if any key is not found."""
    targets: list[_Target] = []
    for storage in storages.values():
        for match in storage._get_or_init_view_instrument_match(hist):
            attrs = dict(attributes)
            keys = match._view._attribute_keys
            if keys is not None:
                attrs = {k: v for k, v in attrs.items() if k in keys}
            key = _hash_attributes(attrs)
            if key not in match._attributes_aggregation:
                return None  # not where the point went (overflow, another key scheme): keep the public path
            targets.append((match, key, attrs))
    return targets


def _merge(aggregation: Any, values: Sequence[float]) -> None:
    """``aggregation.aggregate`` for each value without exemplars: the same steps, in the same order."""
    boundaries = aggregation._boundaries
    with aggregation._lock:
        if aggregation._value is None:
            aggregation._value = aggregation._get_empty_bucket_counts()
        counts = aggregation._value
        total = aggregation._sum
        for v in values:
            total += v
            counts[bisect_left(boundaries, v)] += 1
        aggregation._sum = total
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, *values)
            aggregation._max = max(aggregation._max, *values)
