"""Recording many points of one histogram with one attribute set: a stream's ``time_per_output_chunk``.

Contract
--------
:func:`record_batch(histogram, values, attributes) <record_batch>` has the effect of
``for v in values: histogram.record(v, attributes)``: the same data points (count, sum, min, max, buckets)
for every reader and view, and the same exemplar eligibility.

Why: the conventions ask for one ``gen_ai.client.operation.time_per_output_chunk`` point per chunk, and
the OpenTelemetry SDK's ``Histogram.record`` costs about 12 µs per point (it builds a ``Measurement``,
re-validates and copies the attribute dict, then sorts and hashes it once per reader and view), which is
more than everything else Spyglass does per chunk. A stream records all its points at its end, with one
attribute set, so that work is done once per stream here:

- the first value goes through the public ``record`` (it creates the aggregation, runs every view and the
  exemplar filter as usual);
- the aggregations it fed are then looked up by the SDK's own attribute key (``_hash_attributes``), once
  (holding the view's lock for delta readers, whose aggregations a collection replaces);
- an explicit-bucket aggregation gets the other values merged in under its lock, with the steps of its
  ``aggregate`` (sum in the same order, bucket by ``bisect_left``, min and max);
- exemplars: the exemplar filter is asked once for the batch (the built-in filters do not look at the
  value, and every point shares the time and context). When it says yes, or for any other aggregation,
  each value goes to ``aggregate`` as its own ``Measurement``, as the SDK would pass it.

This reads private SDK structures, so it is used only where they are exactly as expected (checked once per
batch): any other SDK, a view whose attribute key cannot be found (cardinality overflow, a changed key
scheme), a custom exemplar filter or any error falls back to the public ``record`` per value, for the
values not yet recorded. ``tests/instrumentation/test_core.py`` checks the data points equal the public
path's on the installed SDK.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from time import time_ns
from typing import Any

from opentelemetry.context import get_current
from opentelemetry.metrics import Histogram
from opentelemetry.util.types import AttributeValue

_log = logging.getLogger("spyglass.instrumentation")
_failed = False

try:  # the SDK's internals of 1.2x-1.4x; without them every point takes the public path
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


def record_batch(histogram: Histogram, values: Sequence[float], attributes: Mapping[str, AttributeValue]) -> None:
    """``histogram.record(v, attributes)`` for each of ``values``; see the module docstring."""
    if not values:
        return
    global _failed
    histogram.record(values[0], attributes)
    done = 1
    if len(values) > 1 and _FAST and not _failed and _is_sdk_histogram(histogram):
        try:
            if histogram._is_enabled():  # type: ignore[attr-defined]
                done = _aggregate_rest(histogram, values, attributes)
        except Exception:
            # Never again in this process: every later batch takes the public path.
            _failed = True
            _log.warning("spyglass: batched histogram recording failed; using Histogram.record", exc_info=True)
    for value in values[done:]:
        histogram.record(value, attributes)


def _is_sdk_histogram(histogram: Any) -> bool:
    # The SDK's own histogram, its ``record`` not overridden: only then is the public path known.
    return isinstance(histogram, _SDKHistogram) and type(histogram).record is _SDKHistogram.record


def _aggregate_rest(hist: Any, values: Sequence[float], attributes: Mapping[str, AttributeValue]) -> int:
    """Add ``values[1:]`` to the aggregations ``values[0]`` went to; returns how many values are recorded."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values):
        return 1  # the public path logs the SDK's warning for each bad value
    consumer = hist._measurement_consumer
    exemplar_filter = consumer._sdk_config.exemplar_filter
    if type(exemplar_filter) not in _BUILTIN_FILTERS:
        return 1
    now = time_ns()
    context = get_current()
    sample = bool(exemplar_filter.should_sample(values[1], now, attributes, context))
    targets: list[tuple[Any, Any, dict[str, Any]]] = []
    for storage in consumer._reader_storages.values():
        for match in storage._get_or_init_view_instrument_match(hist):
            attrs = dict(attributes)
            keys = match._view._attribute_keys
            if keys is not None:
                attrs = {k: v for k, v in attrs.items() if k in keys}
            key = _hash_attributes(attrs)
            if key not in match._attributes_aggregation:
                return 1  # not where the first point went (overflow, another key scheme): the public path
            targets.append((match, key, attrs))
    with ExitStack() as locks:
        aggregations = []
        for match, key, attrs in targets:
            if match._reset_on_collect:
                # A delta collection swaps the aggregations out under this lock: hold it for the batch.
                locks.enter_context(match._lock)
                aggregations.append(match._get_or_create_aggregation(key, attrs))
            else:
                aggregations.append(match._attributes_aggregation[key])
        rest = values[1:]
        for aggregation in aggregations:
            if not sample and type(aggregation) is _ExplicitBuckets:
                _merge(aggregation, rest)
                continue
            # Any other aggregation, or exemplars wanted: one measurement per value, as the SDK builds them.
            aggregate = aggregation.aggregate
            for v in rest:
                aggregate(Measurement(v, now, hist, context, attributes), sample)
    return len(values)


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
