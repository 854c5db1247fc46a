"""Rollups: pre-aggregated statistics, so that stats over many spans read a few rows instead of every span.

Three tables, each row holding the count, error count, latency sum and max, token and cost sums and a
log-scale latency histogram of the spans it covers:

=================  ================================================================  =====================
table              key                                                               rows at 1M spans ¹
=================  ================================================================  =====================
``rollups``        hour, is_llm, tenant, service, model, provider, status, operation  30,437 (the cube)
``rollups_daily``  the same per UTC day                                               1,600
``rollup_slices``  (grain: hour or day, dim, is_llm, time, value): every span of the  3,380 hourly,
                   hour/day (``dim = ''``) or one dimension of the cube (``dim =      160 daily
                   'model'``, ...) with its value
=================  ================================================================  =====================

¹ ``benchmarks/ui.py``'s store: 5 models, 4 tenants, 5 services, 2 statuses over 7 days.

A query reads the smallest table that keeps the dimensions it filters and groups on: none or one of them
is a slice, more is a cube, and whole days come from the daily tables (see
:func:`spyglass.store._queries.stats`).

The writer adds each transaction's new spans (:func:`apply` on cells aggregated on the request threads,
or :func:`add`); retention subtracts what it deletes (:func:`subtract`). Every table is updated from the
same hourly cells in the same transaction, so they always agree. Histogram bins are
``round(log10(ms) * 200)`` (1.2 % wide), the same as the store's approximate percentiles. A row's
``dur_max`` is exact until retention removes spans from it; it is then the top bin's value (within 0.6 %).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from spyglass.store._schema import transaction

HOUR: Final = 3600 * 10**9
DAY: Final = 24 * HOUR
BINS_PER_DECADE: Final = 200
DIMS: Final = ("is_llm", "tenant", "service", "model", "provider", "status", "operation")
"""Rollup dimensions; NULL text dimensions are stored as ''."""
SUMS: Final = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost")
SLICE_DIMS: Final = DIMS[1:]
"""The dimensions ``rollup_slices`` keeps one at a time (``dim = ''``: none, every span)."""

_SPAN_FIELDS = "start_ns, " + ", ".join(DIMS) + ", duration_ms, " + ", ".join(SUMS)
VALUES: Final = "n, errors, dur_sum, dur_max, " + ", ".join(SUMS) + ", hist"
"""The value columns of every rollup table, in the order :meth:`Acc.add_stored` reads them."""

Key = tuple[Any, ...]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    """A rollup table: its name, key columns and the grain of its time column."""

    name: str
    key: tuple[str, ...]
    time: str
    grain: int


HOURLY: Final = Table("rollups", ("hour_ns", *DIMS), "hour_ns", HOUR)
DAILY: Final = Table("rollups_daily", ("day_ns", *DIMS), "day_ns", DAY)
SLICES: Final = Table("rollup_slices", ("grain", "dim", "is_llm", "t_ns", "value"), "t_ns", 0)
"""``grain`` is a column here (HOUR or DAY)."""


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
        sums = self.sums
        hist = self.hist
        if sign > 0:  # the writer's path, several times per cell of every transaction: kept lean
            self.n += other.n
            self.errors += other.errors
            self.dur_sum += other.dur_sum
            m = other.dur_max
            if m is not None and (self.dur_max is None or m > self.dur_max):
                self.dur_max = m
            for i, v in enumerate(other.sums):
                if v is not None:
                    current = sums[i]
                    sums[i] = v if current is None else current + v
            get = hist.get
            for b, c in other.hist.items():
                hist[b] = get(b, 0) + c
            return
        self.n -= other.n
        self.errors -= other.errors
        self.dur_sum -= other.dur_sum
        for i, v in enumerate(other.sums):
            if v is not None:
                current = sums[i]
                sums[i] = -v if current is None else current - v
        for b, c in other.hist.items():
            left = hist.get(b, 0) - c
            if left > 0:
                hist[b] = left
            else:
                hist.pop(b, None)
        if hist:
            # The deleted span may have been the slowest: fall back to the top bin (within 0.6 %).
            top = 10 ** (max(hist) / BINS_PER_DECADE)
            self.dur_max = top if self.dur_max is None else min(self.dur_max, top)

    def add_bin(self, binned: int, agg: Sequence[Any]) -> None:
        """Add spans of one histogram bin summed in SQL (``count, errors, duration sum, max, sums...``)."""
        self._add_counts(agg)
        self.hist[binned] = self.hist.get(binned, 0) + agg[0]

    def add_stored(self, row: Sequence[Any]) -> None:
        """Add a stored rollup row (:data:`VALUES`: ``n, errors, dur_sum, dur_max, sums..., hist``)."""
        self._add_counts(row)
        hist = self.hist
        flat = _hist_pairs(row[4 + len(SUMS)])
        get = hist.get
        for b, c in zip(flat[::2], flat[1::2], strict=False):  # pairs: even length (strict costs 20 %)
            hist[b] = get(b, 0) + c

    def _add_counts(self, row: Sequence[Any]) -> None:
        """Add ``n, errors, dur_sum, dur_max, sums...`` (the leading fields of both row shapes above)."""
        self.n += row[0]
        self.errors += row[1] or 0
        self.dur_sum += row[2] or 0.0
        m = row[3]
        if m is not None and (self.dur_max is None or m > self.dur_max):
            self.dur_max = m
        sums = self.sums
        for i in range(len(SUMS)):
            v = row[4 + i]
            if v is not None:
                current = sums[i]
                sums[i] = v if current is None else current + v

    def agg(self) -> list[Any]:
        """The ``_AGG`` row of :mod:`spyglass.store._queries`: count, errors, duration sum, max, sums."""
        return [self.n, self.errors, self.dur_sum, self.dur_max, *self.sums]


def aggregate(rows: Iterable[Sequence[Any]]) -> dict[Key, Acc]:
    """Rows of ``_SPAN_FIELDS`` grouped into hourly cells (keys of :data:`HOURLY`)."""
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
    """``Acc()`` merged with ``acc``, without the merge."""
    out = Acc.__new__(Acc)
    out.n = acc.n
    out.errors = acc.errors
    out.dur_sum = 0.0 + acc.dur_sum
    out.dur_max = acc.dur_max
    out.sums = list(acc.sums)
    out.hist = dict(acc.hist)
    return out


def _add(cells: dict[Key, Acc], key: Key, acc: Acc) -> None:
    cell = cells.get(key)
    if cell is None:
        cells[key] = _copy(acc)
    else:
        cell.merge(acc)


def levels(cells: dict[Key, Acc]) -> tuple[dict[Key, Acc], dict[Key, Acc]]:
    """The daily cube cells and the slice cells that hourly cube cells add up to."""
    daily: dict[Key, Acc] = {}
    hourly: dict[Key, Acc] = {}
    for key, acc in cells.items():
        hour = key[0]
        is_llm = key[1]
        _add(daily, (hour // DAY * DAY, *key[1:]), acc)
        _add(hourly, (HOUR, "", is_llm, hour, ""), acc)
        for i, dim in enumerate(SLICE_DIMS, 2):
            _add(hourly, (HOUR, dim, is_llm, hour, key[i]), acc)
    # Daily slices from the hourly ones: far fewer merges than from every cell again.
    slices = dict(hourly)
    for (_, dim, is_llm, hour, value), acc in hourly.items():
        _add(slices, (DAY, dim, is_llm, hour // DAY * DAY, value), acc)
    return daily, slices


_decode = json.JSONDecoder().raw_decode


def _hist_pairs(text: str) -> list[int]:
    """A stored histogram as ``[bin, count, bin, count, ...]`` (also reads the older ``{"bin": count}``)."""
    data = _decode(text)[0]  # json.loads without its per-call checks: this runs for every row read
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in (int(k), v)]
    return list(data)


_encode = json.JSONEncoder(separators=(",", ":")).encode


def _hist_text(hist: dict[int, int]) -> str:
    return _encode(list(itertools.chain.from_iterable(sorted(hist.items()))))  # [bin, count, bin, count, ...]


def load(row: Sequence[Any]) -> Acc:
    acc = Acc()
    acc.add_stored(row)
    return acc


_KEYS_PER_STATEMENT = 400
"""Cells read or written per statement. A transaction touches hundreds of cells in each table; one
statement per cell (a read and a write each) was the writer's largest number of statements (five per span
on the benchmark's load), and sqlite3 gives the GIL up around each one it steps, so the writer waited for the
request threads once per cell. Now a table's cells take a few statements: one join to read the stored rows,
one multi-row ``INSERT OR REPLACE`` (and a ``DELETE`` per cell that retention empties)."""


@functools.lru_cache(maxsize=64)
def _statements(table: Table, keys: int) -> tuple[str, str, str]:
    cols = ", ".join(table.key)
    marks = "(" + ", ".join("?" * len(table.key)) + ")"
    some = ", ".join([marks] * keys)
    # CROSS JOIN keeps the listed keys outside, so each is one primary-key search (an IN list of row values
    # would scan the table).
    on = " AND ".join(f"r.{c} = k.column{i}" for i, c in enumerate(table.key, 1))
    values = ", ".join(f"r.{c}" for c in (*table.key, *VALUES.split(", ")))
    read = f"SELECT {values} FROM (VALUES {some}) AS k CROSS JOIN {table.name} AS r ON {on}"  # noqa: S608
    row = "(" + ", ".join("?" * (len(table.key) + 5 + len(SUMS))) + ")"
    write = f"INSERT OR REPLACE INTO {table.name} ({cols}, {VALUES}) VALUES {', '.join([row] * keys)}"  # noqa: S608
    delete = f"DELETE FROM {table.name} WHERE " + " AND ".join(f"{c} = ?" for c in table.key)  # noqa: S608
    return read, write, delete


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _KEYS_PER_STATEMENT):
        yield items[start : start + _KEYS_PER_STATEMENT]


class Cache:
    """The rollup rows one connection last wrote, as :class:`Acc`, so that its next transaction need not read
    them back (a span's hour and day are usually the ones the previous transaction touched).

    Only for the writer's connection (its ``rollup_cache``, see :class:`spyglass.store._schema.WriterConnection`):
    it is the only one writing rollups. Its owner must :meth:`clear` it
    when a transaction rolls back or when rollups change by another path (retention, migrations); and it
    forgets everything when another connection has committed (``PRAGMA data_version`` changed). Bounded by
    entries and by histogram bins (about 100 bytes each): the least recently written go first.
    """

    __slots__ = ("max_bins", "max_rows", "rows", "version")

    def __init__(self, max_rows: int = 4096, max_bins: int = 200_000) -> None:
        self.rows: dict[tuple[str, Key], Acc] = {}
        self.version: int | None = None
        self.max_rows = max_rows
        self.max_bins = max_bins

    def clear(self) -> None:
        self.rows.clear()
        self.version = None

    def check(self, conn: sqlite3.Connection) -> None:
        """Forget everything if another connection committed since the last check."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version:
            self.rows.clear()
            self.version = version

    def trim(self) -> None:
        rows = self.rows
        bins = sum(len(acc.hist) for acc in rows.values())
        while rows and (len(rows) > self.max_rows or bins > self.max_bins):
            bins -= len(rows.pop(next(iter(rows))).hist)


def _write(
    conn: sqlite3.Connection, table: Table, cells: dict[Key, Acc], sign: int, cache: Cache | None = None
) -> None:
    n_key = len(table.key)
    known = cache.rows if cache is not None else {}
    name = table.name
    stored: dict[Key, Acc] = {}
    missing = [key for key in cells if (name, key) not in known]
    for chunk in _chunks(missing):
        read = _statements(table, len(chunk))[0]
        for row in conn.execute(read, [v for key in chunk for v in key]):
            stored[tuple(row[:n_key])] = load(row[n_key:])
    rows: list[tuple[Any, ...]] = []
    gone: list[Key] = []
    for key, delta in cells.items():
        acc = known.pop((name, key), None) or stored.get(key)
        existed = acc is not None
        if acc is not None:
            acc.merge(delta, sign)
        elif sign > 0:
            acc = _copy(delta)
        else:
            acc = Acc()
            acc.merge(delta, sign)
        if acc.n > 0:
            rows.append((*key, acc.n, acc.errors, acc.dur_sum, acc.dur_max, *acc.sums, _hist_text(acc.hist)))
            if cache is not None:
                known[(name, key)] = acc  # re-inserted last: the most recently written
        elif existed:
            gone.append(key)
    for chunk in _chunks(rows):
        conn.execute(_statements(table, len(chunk))[1], [v for row in chunk for v in row])
    if gone:
        conn.executemany(_statements(table, 1)[2], gone)


def apply(conn: sqlite3.Connection, cells: dict[Key, Acc], sign: int = 1) -> None:
    """Add (``sign=1``) or subtract (``-1``) hourly cells into every rollup table (in the caller's transaction).

    On the writer's connection, rows its :class:`Cache` holds are not read back."""
    cache: Cache | None = getattr(conn, "rollup_cache", None)
    if cache is not None:
        cache.check(conn)
    _write(conn, HOURLY, cells, sign, cache)
    daily, slices = levels(cells)
    _write(conn, DAILY, daily, sign, cache)
    _write(conn, SLICES, slices, sign, cache)
    if cache is not None:
        cache.trim()


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
    """Recompute the hourly rollups from the spans (migration ``0004``, which adds them to a database).

    Only the hourly table: the others come later, from it (:func:`rebuild_levels`, migration ``0007``).
    """
    conn.execute("DELETE FROM rollups")
    _write(conn, HOURLY, aggregate(conn.execute(f"SELECT {_SPAN_FIELDS} FROM spans")), 1)  # noqa: S608


def rebuild_levels(conn: sqlite3.Connection) -> None:
    """Recompute the daily cube and the slices from the hourly rollups (migration ``0007``)."""
    conn.execute(f"DELETE FROM {DAILY.name}")  # noqa: S608
    conn.execute(f"DELETE FROM {SLICES.name}")  # noqa: S608
    cells = {
        tuple(row[: len(HOURLY.key)]): load(row[len(HOURLY.key) :])
        for row in conn.execute(
            f"SELECT {', '.join(HOURLY.key)}, {VALUES} FROM {HOURLY.name}"  # noqa: S608
        )
    }
    daily, slices = levels(cells)
    _write(conn, DAILY, daily, 1)
    _write(conn, SLICES, slices, 1)


def repair(conn: sqlite3.Connection) -> bool:
    """Rebuild the daily cube and the slices if they do not add up to the hourly rollups; ``True`` if so.

    A store from before migration ``0007`` that writes to a migrated database (a downgrade) keeps only the
    hourly rollups up to date. Run when the writer opens the database, after the migrations.
    """
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SLICES.name,)).fetchone() is None:
        return False
    totals = {
        conn.execute(f"SELECT sum(n), sum(errors) FROM {table}{where}").fetchone()  # noqa: S608
        for table, where in (
            (HOURLY.name, ""),
            (DAILY.name, ""),
            (SLICES.name, f" WHERE grain = {HOUR} AND dim = ''"),
            (SLICES.name, f" WHERE grain = {DAY} AND dim = ''"),
        )
    }
    if len(totals) == 1:
        return False
    log.warning("the daily and per-dimension rollups disagree with the hourly ones; rebuilding them")
    with transaction(conn, "BEGIN"):
        rebuild_levels(conn)
    return True
