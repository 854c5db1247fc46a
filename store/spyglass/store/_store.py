"""The :class:`Store`: one database, one writer thread, read-only connections per reading thread.

Usage::

    store = Store("spans.db")
    accepted = store.ingest(export_request).result()      # after commit
    page = store.read(queries.search_spans, Filters(model=("gpt-4o",)))
    store.write(queries.create_dataset, "golden")
    store.close()
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai as ga
from spyglass.store._errors import StoreError
from spyglass.store._otlp import Decoded, to_records
from spyglass.store._records import Pricer, Record
from spyglass.store._schema import connect
from spyglass.store._writer import Retention, Writer, prepare

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_READ_TIMEOUT_S = 15.0


class QueryTimeout(StoreError):
    status = 503


def exporter_pricer() -> Pricer | None:
    """Price records with the exporter's pricing code (``spyglass.exporter.price``), if installed."""
    try:
        from spyglass.exporter import price
    except ImportError:  # pragma: no cover - the exporter ships in the same distribution
        return None

    def pricer(rec: Record) -> tuple[float, str] | None:
        if rec.input_tokens is None and rec.output_tokens is None:
            return None
        attrs: dict[str, Any] = {
            ga.REQUEST_MODEL: rec.request_model,
            ga.RESPONSE_MODEL: rec.model,
            ga.PROVIDER_NAME: rec.provider,
            ga.USAGE_INPUT_TOKENS: rec.input_tokens or 0,
            ga.USAGE_OUTPUT_TOKENS: rec.output_tokens or 0,
            ga.USAGE_CACHE_READ_INPUT_TOKENS: rec.cache_read_tokens or 0,
            ga.USAGE_CACHE_WRITE_INPUT_TOKENS: rec.cache_write_tokens or 0,
            ga.USAGE_REASONING_OUTPUT_TOKENS: rec.reasoning_tokens or 0,
            ga.SERVER_ADDRESS: rec.attributes.get(ga.SERVER_ADDRESS),
        }
        when = datetime.fromtimestamp(rec.start_ns / 1e9, tz=timezone.utc)
        result = price({k: v for k, v in attrs.items() if v is not None}, when)
        cost = result.get(ext.USAGE_COST)
        if cost is None:
            return None
        return float(cost), str(result.get(ext.COST_SOURCE) or "genai-prices")

    return pricer


class Store:
    """See the module docstring. Thread-safe; :meth:`close` is idempotent."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_pending: int = 200_000,
        retention: Retention | None = None,
        pricer: Pricer | bool | None = True,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = Writer(str(self.path), max_pending=max_pending, retention=retention)
        self.pricer: Pricer | None = exporter_pricer() if pricer is True else (pricer or None)
        self.read_timeout_s = read_timeout_s
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    # --- writing ---------------------------------------------------------------------------------

    def decode(self, req: ExportTraceServiceRequest, *, tenant: str | None = None) -> Decoded:
        return to_records(req, tenant=tenant, pricer=self.pricer)

    def submit(self, records: list[Record]) -> Future[int]:
        """Queue records; raises :class:`~spyglass.store._writer.Overloaded` when the queue is full."""
        return self.writer.submit([prepare(r) for r in records])

    def ingest(self, req: ExportTraceServiceRequest, *, tenant: str | None = None) -> tuple[Decoded, Future[int]]:
        decoded = self.decode(req, tenant=tenant)
        return decoded, self.submit(decoded.records)

    def write(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on the writer thread in a transaction and wait for it."""
        return self.writer.call(lambda conn: fn(conn, *args, **kwargs)).result()

    # --- reading ---------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(str(self.path), readonly=True)
            self._local.conn = conn
            self._local.deadline = None
            local = self._local

            def over_time() -> int:
                deadline = local.deadline
                return 1 if deadline is not None and time.monotonic() > deadline else 0

            conn.set_progress_handler(over_time, 20_000)
            with self._lock:
                self._readers.append(conn)
        return conn

    def read(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` on this thread's read-only connection, within the read time limit."""
        conn = self._reader()
        self._local.deadline = time.monotonic() + self.read_timeout_s
        try:
            return fn(conn, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise QueryTimeout(f"the query took longer than {self.read_timeout_s:g}s; narrow the filters") from None
            raise
        finally:
            self._local.deadline = None

    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection without a time limit (streaming exports)."""
        return self._reader()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            readers, self._readers = self._readers, []
        self.writer.close()
        for conn in readers:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
