"""Hourly rollups: per (hour, is_llm, tenant, service, model, provider, status, operation), the count, error
count, latency sum and max, token and cost sums, and a log-scale latency histogram.

The writer adds each transaction's new spans (:func:`add`); retention subtracts what it deletes
(:func:`subtract`). :func:`spyglass.store._queries.stats` reads them instead of every span when a query
only filters and groups on these dimensions and matches more spans than it computes exact percentiles for.
Histogram bins are ``round(log10(ms) * 200)`` (1.2 % wide), the same as the store's approximate percentiles.
A rollup's ``dur_max`` is exact until retention removes spans from it; it is then the top bin's value.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

HOUR: Final = 3600 * 10**9
BINS_PER_DECADE: Final = 200
DIMS: Final = ("is_llm", "tenant", "service", "model", "provider", "status", "operation")
"""Rollup dimensions; NULL text dimensions are stored as ''."""
SUMS: Final = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost")

_SPAN_FIELDS = "start_ns, " + ", ".join(DIMS) + ", duration_ms, " + ", ".join(SUMS)

Key = tuple[Any, ...]


def bin_of(duration_ms: float) -> int:
    return math.floor(math.log10(max(duration_ms, 0.001)) * BINS_PER_DECADE + 0.5)


class Acc:
    """Accumulated sums of one rollup cell."""

    __slots__ = ("dur_max", "dur_sum", "errors", "hist", "n", "sums")

    def __init__(self) -> None:
        self.n = 0
        self.errors = 0
        self.dur_sum = 0.0
        self.dur_max: float | None = None
        self.sums: list[float | int | None] = [None] * len(SUMS)
        self.hist: dict[int, int] = {}

    def add_span(self, status: str, duration: float, sums: Sequence[Any]) -> None:
        self.n += 1
        self.errors += status != "success"
        self.dur_sum += duration
        self.dur_max = duration if self.dur_max is None or duration > self.dur_max else self.dur_max
        for i, v in enumerate(sums):
            if v is not None:
                current = self.sums[i]
                self.sums[i] = v if current is None else current + v
        b = bin_of(duration)
        self.hist[b] = self.hist.get(b, 0) + 1

    def merge(self, other: Acc, sign: int = 1) -> None:
        self.n += sign * other.n
        self.errors += sign * other.errors
        self.dur_sum += sign * other.dur_sum
        if sign > 0 and other.dur_max is not None:
            self.dur_max = other.dur_max if self.dur_max is None else max(self.dur_max, other.dur_max)
        for i, v in enumerate(other.sums):
            if v is not None:
                current = self.sums[i]
                self.sums[i] = sign * v if current is None else current + sign * v
        for b, c in other.hist.items():
            left = self.hist.get(b, 0) + sign * c
            if left > 0:
                self.hist[b] = left
            else:
                self.hist.pop(b, None)
        if sign < 0 and self.hist:
            # The deleted span may have been the slowest: fall back to the top bin (within 0.6 %).
            top = 10 ** (max(self.hist) / BINS_PER_DECADE)
            self.dur_max = top if self.dur_max is None else min(self.dur_max, top)

    def add_stored(self, row: Sequence[Any]) -> None:
        """Add a stored rollup row (``n, errors, dur_sum, dur_max, sums..., hist``): the hot loop of stats."""
        self.n += row[0]
        self.errors += row[1]
        self.dur_sum += row[2]
        m = row[3]
        if m is not None and (self.dur_max is None or m > self.dur_max):
            self.dur_max = m
        sums = self.sums
        for i in range(len(SUMS)):
            v = row[4 + i]
            if v is not None:
                current = sums[i]
                sums[i] = v if current is None else current + v
        hist = self.hist
        flat = _hist_pairs(row[4 + len(SUMS)])
        for i in range(0, len(flat), 2):
            b = flat[i]
            hist[b] = hist.get(b, 0) + flat[i + 1]

    def agg(self) -> list[Any]:
        """The ``_AGG`` row of :mod:`spyglass.store._queries`: count, errors, duration sum, max, sums."""
        return [self.n, self.errors, self.dur_sum, self.dur_max, *self.sums]


def aggregate(rows: Iterable[Sequence[Any]]) -> dict[Key, Acc]:
    """Rows of ``_SPAN_FIELDS`` grouped into rollup cells."""
    cells: dict[Key, Acc] = {}
    n_dims = len(DIMS)
    for row in rows:
        key = (row[0] // HOUR * HOUR, *("" if v is None else v for v in row[1 : 1 + n_dims]))
        acc = cells.get(key)
        if acc is None:
            acc = cells[key] = Acc()
        acc.add_span(row[6], row[1 + n_dims], row[2 + n_dims :])
    return cells


def merge(into: dict[Key, Acc], cells: dict[Key, Acc]) -> None:
    """Add ``cells`` into ``into`` (cells are shared, not copied: ``cells`` must not be used again)."""
    for key, acc in cells.items():
        if key in into:
            into[key].merge(acc)
        else:
            into[key] = _copy(acc)


def _copy(acc: Acc) -> Acc:
    out = Acc()
    out.merge(acc)
    return out


_WHERE_KEY = "hour_ns = ? AND " + " AND ".join(f"{d} = ?" for d in DIMS)
_COLUMNS = "hour_ns, " + ", ".join(DIMS) + ", n, errors, dur_sum, dur_max, " + ", ".join(SUMS) + ", hist"


def _hist_pairs(text: str) -> list[int]:
    """A stored histogram as ``[bin, count, bin, count, ...]`` (also reads the older ``{"bin": count}``)."""
    data = json.loads(text)
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in (int(k), v)]
    return list(data)


def _hist_text(hist: dict[int, int]) -> str:
    return json.dumps([x for b, c in sorted(hist.items()) for x in (b, c)], separators=(",", ":"))


def load(row: Sequence[Any]) -> Acc:
    acc = Acc()
    acc.add_stored(row)
    return acc


def apply(conn: sqlite3.Connection, cells: dict[Key, Acc], sign: int = 1) -> None:
    """Add (``sign=1``) or subtract (``-1``) cells into the rollups table (inside the caller's transaction)."""
    select = f"SELECT n, errors, dur_sum, dur_max, {', '.join(SUMS)}, hist FROM rollups WHERE {_WHERE_KEY}"  # noqa: S608
    for key, delta in cells.items():
        row = conn.execute(select, key).fetchone()
        acc = load(row) if row else Acc()
        acc.merge(delta, sign)
        if acc.n <= 0:
            conn.execute(f"DELETE FROM rollups WHERE {_WHERE_KEY}", key)  # noqa: S608
            continue
        conn.execute(
            f"INSERT OR REPLACE INTO rollups ({_COLUMNS}) VALUES ({', '.join('?' * (len(DIMS) + 6 + len(SUMS)))})",  # noqa: S608
            (*key, acc.n, acc.errors, acc.dur_sum, acc.dur_max, *acc.sums, _hist_text(acc.hist)),
        )


def add(conn: sqlite3.Connection, first_new_id: int) -> None:
    """Roll up the spans with an id above ``first_new_id`` (this transaction's)."""
    rows = conn.execute(f"SELECT {_SPAN_FIELDS} FROM spans WHERE id > ?", (first_new_id,))  # noqa: S608
    apply(conn, aggregate(rows))


def subtract(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Remove these spans (about to be deleted) from the rollups."""
    cells: dict[Key, Acc] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = conn.execute(
            f"SELECT {_SPAN_FIELDS} FROM spans WHERE id IN ({', '.join('?' * len(chunk))})",  # noqa: S608
            chunk,
        )
        for key, acc in aggregate(rows).items():
            if key in cells:
                cells[key].merge(acc)
            else:
                cells[key] = acc
    apply(conn, cells, -1)


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the spans (the migration that adds them to an existing database)."""
    conn.execute("DELETE FROM rollups")
    cells: dict[Key, Acc] = {}
    for key, acc in aggregate(conn.execute(f"SELECT {_SPAN_FIELDS} FROM spans")).items():  # noqa: S608
        cells[key] = acc
    apply(conn, cells)
