"""The one writer: a thread that owns the write connection and commits batches of spans.

Ingest calls :meth:`Writer.submit` with records and waits on the returned future, which completes only
after the transaction holding those spans has committed (in WAL mode a commit survives the process being
killed). The text of those spans goes into the full-text index in a transaction of its own right after
(:meth:`Writer._index`), off the acknowledgement's path: the next requests are decoded while FTS5 indexes.
``fts_progress`` records how far the index goes; readers of the :class:`~spyglass.store.Store` wait for it
to cover every span acknowledged before they started (:meth:`Writer.wait_indexed`), and a writer opening
the database indexes whatever a killed process left behind.

Pending spans are bounded: when the queue holds ``max_pending`` spans, :meth:`submit` raises
:class:`Overloaded` and the receivers answer ``RESOURCE_EXHAUSTED`` / 503 with ``Retry-After``.

The same thread runs other writes (datasets) through :meth:`Writer.call`, and retention between batches.
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from spyglass.store import _rollups
from spyglass.store._errors import StoreError
from spyglass.store._packing import dumps as _dumps
from spyglass.store._packing import pack
from spyglass.store._records import Record, resource_json
from spyglass.store._schema import SPAN_COLUMNS, WriterConnection, connect, migrate, transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

# The writer gives each row its id (so that a transaction's rows are the ids above the largest before it).
_INSERT = f"INSERT OR IGNORE INTO spans (id, {', '.join(SPAN_COLUMNS)}) VALUES "  # noqa: S608
_ROWS_PER_STATEMENT = 100
"""Rows per multi-row ``INSERT``. sqlite3 releases the GIL around every statement it steps, and taking it
back from request threads that decode in Python costs more than the step: with one statement per row, one
busy Python thread in the process made the writer's transactions 2.6x slower in wall time at the same CPU.
So rows go 100 to a statement (3,800 parameters) and the FTS index is filled by one ``INSERT ... SELECT``
per transaction (FTS5 writes a segment at the end of each multi-row statement, so not 100 at a time):
a fifth less wall time and a tenth less CPU next to that busy thread (measured)."""
_ROLLUP = tuple(SPAN_COLUMNS.index(c) for c in ("start_ns", *_rollups.DIMS, "duration_ms", *_rollups.SUMS))

_INDEX_RANGE = (
    "INSERT INTO spans_fts (rowid, input_text, output_text, tool_args) "
    "SELECT id, input_text, output_text, tool_args FROM spans WHERE id > ? AND id <= ?"
)


@functools.lru_cache(maxsize=32)
def _values(rows: int) -> str:
    return _INSERT + ", ".join(["(" + ", ".join("?" * (len(SPAN_COLUMNS) + 1)) + ")"] * rows)


def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert span rows with multi-row statements; returns how many were new."""
    inserted = 0
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        inserted += conn.execute(_values(len(chunk)), [value for row in chunk for value in row]).rowcount
    return inserted


class Overloaded(Exception):
    """The write queue is full; retry later."""


class WriterClosed(Exception):
    """The writer has stopped; nothing more is accepted."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How much to keep: spans older than ``max_age_s`` and, above ``max_bytes``, the oldest go first.

    Spans that belong to a dataset are kept regardless.
    """

    max_age_s: float | None = None
    max_bytes: int | None = None
    interval_s: float = 30.0


def prepare(rec: Record) -> tuple[tuple[Any, ...], str]:
    """The row of one record (without resource id and ingest time) and its resource JSON.

    Runs on the receiving thread so that the writer thread only executes SQL. Large attributes and events
    do not repeat the row's text (:func:`~spyglass.store._packing.pack`): half the bytes of an LM call's row.
    """
    row = (
        rec.trace_id,
        rec.span_id,
        rec.parent_span_id,
        rec.tenant,
        rec.name,
        rec.kind,
        rec.service,
        rec.scope_name,
        rec.start_ns,
        rec.end_ns,
        rec.duration_ms,
        rec.status,
        rec.status_message,
        1 if rec.is_llm else 0,
        rec.operation,
        rec.provider,
        rec.model,
        rec.request_model,
        rec.alias,
        rec.input_tokens,
        rec.output_tokens,
        rec.cache_read_tokens,
        rec.cache_write_tokens,
        rec.reasoning_tokens,
        rec.cost,
        rec.cost_source,
        rec.user_id,
        rec.session_id,
        rec.input_text,
        rec.output_text,
        rec.tool_args,
        _dumps(rec.metadata) if rec.metadata else None,
        pack(rec.attributes, rec.input_text, rec.output_text),
        pack(rec.events, rec.input_text, rec.output_text) if rec.events else None,
        _dumps(rec.links) if rec.links else None,
    )
    # to_records makes the resource JSON once per resource of a request; records built otherwise have none.
    return row, rec.resource_json or resource_json(rec.resource)


class _Job:
    __slots__ = ("cells", "fn", "future", "own_transactions", "rows", "size")

    def __init__(
        self,
        rows: Sequence[tuple[tuple[Any, ...], str]] | None,
        fn: Callable[[sqlite3.Connection], Any] | None,
        own_transactions: bool = False,
    ) -> None:
        self.rows = rows
        self.fn = fn
        self.own_transactions = own_transactions
        self.size = len(rows) if rows is not None else 0
        # Rolled up on the submitting thread; used when every row is new (see _transaction).
        self.cells = _rollups.aggregate([row[i] for i in _ROLLUP] for row, _ in rows) if rows else None
        self.future: Future[Any] = Future()


class Writer:
    """Owns the write connection; see the module docstring."""

    def __init__(
        self,
        path: str,
        *,
        max_pending: int = 200_000,
        batch_spans: int = 20_000,
        retention: Retention | None = None,
    ) -> None:
        self.path = path
        self.max_pending = max_pending
        self.batch_spans = batch_spans
        self.retention = retention or Retention()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        conn = connect(path, writer=True)
        assert isinstance(conn, WriterConnection)
        self._conn = conn
        self.migrations_applied = migrate(self._conn)
        self._resources: dict[str, int] = {}
        # From here on this connection's rollup writes skip reading back the rows it wrote last.
        self._rollups = self._conn.rollup_cache = _rollups.Cache()
        self._index_changed = threading.Condition()
        self._index_failing = self._index_warned = False
        # Without migration 0010 (only when a test runs the older migrations) text is indexed with the rows.
        self._deferred = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'fts_progress'").fetchone() is not None
        self._committed = self._indexed = self._catch_up()
        """Row ids up to which spans are committed (acknowledged), and indexed for full text."""
        self.spans_written = 0
        self.spans_rejected_overload = 0
        self._thread = threading.Thread(target=self._run, name="spyglass-store-writer", daemon=True)
        self._thread.start()

    # --- producers -------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, rows: Sequence[tuple[tuple[Any, ...], str]]) -> Future[int]:
        """Queue prepared rows; the future gives the number of spans accepted, once committed."""
        job = _Job(rows, None)
        with self._lock:
            if self._closed:
                raise WriterClosed("the store is shutting down")
            # A batch bigger than the whole limit still goes through when the queue is empty.
            if self._pending and self._pending + job.size > self.max_pending:
                self.spans_rejected_overload += job.size
                raise Overloaded(f"{self._pending} spans are waiting to be written")
            self._pending += job.size
        self._queue.put(job)
        return job.future

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Run ``fn(conn)`` on the writer thread inside a transaction; the future gives its result."""
        job = _Job(None, fn)
        with self._lock:
            if self._closed:
                raise WriterClosed("the store is shutting down")
        self._queue.put(job)
        return job.future

    def retain(self, retention: Retention | None = None) -> Future[int]:
        """Run a retention pass now (with these settings, or the writer's own); gives rows deleted."""
        settings = retention or self.retention
        job = _Job(None, lambda conn: retention_pass(conn, settings), own_transactions=True)
        with self._lock:
            if self._closed:
                raise WriterClosed("the store is shutting down")
        self._queue.put(job)
        return job.future

    def wait_indexed(self, timeout: float) -> bool:
        """Wait until the text of every span acknowledged so far is in the full-text index (at most one
        indexing transaction, while spans arrive); ``False`` if it is not after ``timeout``, or at once
        while indexing fails (logged by the writer; the spans are stored and indexed once it works)."""
        target = self._committed
        if self._indexed >= target:
            return True
        with self._index_changed:
            self._index_changed.wait_for(
                lambda: self._indexed >= target or self._index_failing or not self._thread.is_alive(), timeout
            )
            return self._indexed >= target

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        with self._index_changed:
            self._index_changed.notify_all()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._conn.close()
        except sqlite3.Error:
            log.debug("closing the writer connection failed", exc_info=True)

    # --- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        next_retention = time.monotonic() + 1.0
        stop = False
        while not stop:
            timeout = max(next_retention - time.monotonic(), 0.01)
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = _IDLE
            jobs: list[_Job] = []
            if first is None:
                stop = True
            elif first is not _IDLE:
                jobs.append(first)
                size = first.size
                while size < self.batch_spans:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    jobs.append(nxt)
                    size += nxt.size
            # Jobs that manage their own transactions (retention) run alone, between batches.
            for job in [j for j in jobs if j.own_transactions]:
                jobs.remove(job)
                try:
                    assert job.fn is not None
                    self._index_before_deletes()
                    job.future.set_result(job.fn(self._conn))
                except Exception as exc:
                    job.future.set_exception(exc)
                finally:
                    self._rollups.clear()  # a rolled-back retention transaction leaves the cache ahead
            if jobs:
                self._commit(jobs)
            self._index()  # the text of what was just acknowledged (also before retention deletes rows)
            if time.monotonic() >= next_retention:
                next_retention = time.monotonic() + self.retention.interval_s
                self._retain()

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            results = self._transaction(jobs)
        except Exception:
            # Find the culprit: each job alone, so one bad job fails only its own caller.
            log.warning("a write batch failed; retrying its %d jobs one by one", len(jobs), exc_info=True)
            for job in jobs:
                try:
                    (result,) = self._transaction([job])
                    job.future.set_result(result)
                except Exception as exc:
                    job.future.set_exception(exc)
                finally:
                    self._release(job)
            return
        for job, result in zip(jobs, results, strict=False):
            self._release(job)
            job.future.set_result(result)

    def _release(self, job: _Job) -> None:
        with self._lock:
            self._pending -= job.size

    def _transaction(self, jobs: list[_Job]) -> list[Any]:
        conn = self._conn
        results: list[Any] = []
        try:
            with transaction(conn):
                # Only this thread inserts spans, so rows with an id above this are this transaction's.
                first_new = conn.execute("SELECT coalesce(max(id), 0) FROM spans").fetchone()[0]
                now = time.time_ns()
                next_id = first_new + 1
                cells: dict[_rollups.Key, _rollups.Acc] = {}
                all_new = True
                for job in jobs:
                    if job.rows is not None:
                        batch = []
                        for row, res in job.rows:
                            batch.append((next_id, *row, self._resource_id(res), now))
                            next_id += 1
                        # Spans already stored (an exporter's retry) are ignored, and count as accepted.
                        if batch:
                            all_new = _insert(conn, batch) == len(batch) and all_new
                        if all_new and job.cells:
                            _rollups.merge(cells, job.cells)
                        self.spans_written += job.size
                        results.append(job.size)
                    else:
                        assert job.fn is not None
                        self._rollups.clear()  # whatever fn writes, the cached rollup rows are read again
                        results.append(job.fn(conn))
                if all_new:
                    _rollups.apply(conn, cells)
                else:
                    _rollups.add(conn, first_new)
                if next_id - 1 > first_new:
                    if self._deferred:
                        conn.execute("UPDATE fts_progress SET committed_through = ?", (next_id - 1,))
                    else:
                        conn.execute(_INDEX_RANGE, (first_new, next_id - 1))
        except BaseException:
            self._resources.clear()  # ids inserted by the rolled-back transaction are gone
            self._rollups.clear()  # and so are the rollup rows it wrote
            raise
        self._committed = max(self._committed, next_id - 1)  # before the futures complete
        self._index_failing = False  # readers wait for the attempt to index these
        if not self._deferred:
            self._indexed = self._committed
        return results

    def _index(self) -> None:
        """Index the text of the rows committed since the last call, in a transaction of its own."""
        start, end = self._indexed, self._committed
        if end <= start:
            return
        conn = self._conn
        try:
            with transaction(conn):
                conn.execute(_INDEX_RANGE, (start, end))
                conn.execute("UPDATE fts_progress SET indexed_through = ?", (end,))
        except Exception:
            if not self._index_warned:  # once per failing streak
                self._index_warned = True
                log.warning("indexing spans %d-%d failed; retrying after each batch", start + 1, end, exc_info=True)
            with self._index_changed:
                self._index_failing = True  # readers stop waiting for it until it works again
                self._index_changed.notify_all()
            return
        self._index_warned = False
        with self._index_changed:
            self._indexed = end
            self._index_failing = False
            self._index_changed.notify_all()

    def _index_before_deletes(self) -> None:
        """Deleting a row takes its text out of the index, so every row must be in it first."""
        self._index()
        if self._indexed < self._committed:
            raise StoreError("the full-text index is behind (indexing failed); retention waits for it")

    def _catch_up(self) -> int:
        """Index what a killed writer committed but had not indexed; returns the largest row id.

        Rows above ``committed_through`` were written by a store from before migration ``0010``, which
        indexed them in their own transaction: they are not indexed twice.
        """
        conn = self._conn
        if not self._deferred:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM spans").fetchone()[0])
        with transaction(conn):
            indexed, committed = conn.execute("SELECT indexed_through, committed_through FROM fts_progress").fetchone()
            last = conn.execute("SELECT coalesce(max(id), 0) FROM spans").fetchone()[0]
            if committed > indexed:
                log.info("indexing the text of %d spans a stopped writer left unindexed", committed - indexed)
                conn.execute(_INDEX_RANGE, (indexed, committed))
            conn.execute("UPDATE fts_progress SET indexed_through = ?, committed_through = ?", (last, last))
        return int(last)

    def _resource_id(self, attributes: str) -> int:
        rid = self._resources.get(attributes)
        if rid is None:
            conn = self._conn
            conn.execute("INSERT OR IGNORE INTO resources (attributes) VALUES (?)", (attributes,))
            rid = int(conn.execute("SELECT id FROM resources WHERE attributes = ?", (attributes,)).fetchone()[0])
            if len(self._resources) > 10_000:
                self._resources.clear()
            self._resources[attributes] = rid
        return rid

    def _retain(self) -> None:
        try:
            self._index_before_deletes()
            retention_pass(self._conn, self.retention)
        except Exception:
            self._rollups.clear()  # its rolled-back transaction leaves the cache ahead
            log.warning("retention pass failed", exc_info=True)


_IDLE: Any = object()


_KEEP = "id NOT IN (SELECT span_id FROM dataset_items)"
_OLDER_THAN = f"SELECT id FROM spans WHERE start_ns < ? AND {_KEEP} LIMIT ?"  # noqa: S608
_OLDEST = f"SELECT id FROM spans WHERE {_KEEP} ORDER BY start_ns LIMIT ?"  # noqa: S608


def _delete(conn: sqlite3.Connection, select_ids: str, args: tuple[Any, ...]) -> int:
    """Delete the spans ``select_ids`` picks, and take them out of the rollups, in one transaction."""
    with transaction(conn):
        ids = [row[0] for row in conn.execute(select_ids, args)]
        if ids:
            _rollups.subtract(conn, ids)
            conn.executemany("DELETE FROM spans WHERE id = ?", [(i,) for i in ids])
    return len(ids)


_SIZE_ROUNDS = 4


def retention_pass(conn: sqlite3.Connection, retention: Retention, *, chunk: int = 5_000) -> int:
    """Delete what the retention settings say must go, in small transactions; returns rows deleted."""
    deleted = 0
    if retention.max_age_s is not None:
        cutoff = time.time_ns() - int(retention.max_age_s * 1e9)
        while True:
            n = _delete(conn, _OLDER_THAN, (cutoff, chunk))
            deleted += n
            if n < chunk:
                break
    if retention.max_bytes is not None:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        target = 0.9 * retention.max_bytes
        # Freed space shows up only as whole pages come free (and FTS deletes add tombstones first), so the
        # measured size lags behind deletes: delete the share of rows that should bring it to 90 %, fold the
        # FTS tombstones in (bounded work) so the space is reused, and measure again (large pages free up
        # later than small ones).
        for _ in range(_SIZE_ROUNDS):
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            pages -= conn.execute("PRAGMA freelist_count").fetchone()[0]
            used = pages * page_size
            rows = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
            if used <= retention.max_bytes or not rows:
                break
            todo = min(rows, math.ceil((used - target) / (used / rows)))
            while todo > 0:
                n = _delete(conn, _OLDEST, (min(chunk, todo),))
                deleted += n
                todo -= n
                if n == 0:
                    break
            conn.execute("INSERT INTO spans_fts (spans_fts, rank) VALUES ('merge', 500)")
    return deleted
