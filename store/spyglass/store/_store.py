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


_AFFINE_LIMIT = 100_000
"""Token counts below which a price is affine in the counts (tiered prices start above 128k input tokens)."""
_PROBE = (4000, 2000, 0, 0, 0)
_STEP = 1000
_NS_PER_DAY = 86_400 * 10**9


def exporter_pricer() -> Pricer | None:
    """Price records with the exporter's pricing code (``spyglass.exporter.price``), if installed.

    ``price()`` takes about a millisecond per call, too slow for ingest. For ordinary calls (every token
    count under :data:`_AFFINE_LIMIT`) the price is affine in the five token counts, so the store asks
    ``price()`` once per (provider, model, server, day) at six probe points and applies the coefficients;
    larger calls go to ``price()`` directly. The cost is the exporter's, computed by its code.
    """
    try:
        from spyglass.exporter import price
    except ImportError:  # pragma: no cover - the exporter ships in the same distribution
        return None

    def attrs_for(rec: Record, tokens: tuple[int, int, int, int, int]) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            ga.REQUEST_MODEL: rec.request_model,
            ga.RESPONSE_MODEL: rec.model,
            ga.PROVIDER_NAME: rec.provider,
            ga.USAGE_INPUT_TOKENS: tokens[0],
            ga.USAGE_OUTPUT_TOKENS: tokens[1],
            ga.USAGE_CACHE_READ_INPUT_TOKENS: tokens[2],
            ga.USAGE_CACHE_WRITE_INPUT_TOKENS: tokens[3],
            ga.USAGE_REASONING_OUTPUT_TOKENS: tokens[4],
            ga.SERVER_ADDRESS: rec.attributes.get(ga.SERVER_ADDRESS),
        }
        return {k: v for k, v in attrs.items() if v is not None}

    def direct(rec: Record, tokens: tuple[int, int, int, int, int], when: datetime) -> tuple[float, str] | None:
        result = price(attrs_for(rec, tokens), when)
        cost = result.get(ext.USAGE_COST)
        if cost is None:
            return None
        return float(cost), str(result.get(ext.COST_SOURCE) or "genai-prices")

    cache: dict[tuple[Any, ...], tuple[float, list[float], str] | None] = {}
    lock = threading.Lock()

    def pricer(rec: Record) -> tuple[float, str] | None:
        if rec.input_tokens is None and rec.output_tokens is None:
            return None
        tokens = (
            rec.input_tokens or 0,
            rec.output_tokens or 0,
            rec.cache_read_tokens or 0,
            rec.cache_write_tokens or 0,
            rec.reasoning_tokens or 0,
        )
        if max(tokens) >= _AFFINE_LIMIT:
            return direct(rec, tokens, datetime.fromtimestamp(rec.start_ns / 1e9, tz=timezone.utc))
        # The UTC day as a number: no datetime per span (prices change by day at most).
        day = rec.start_ns // _NS_PER_DAY
        key = (rec.provider, rec.model, rec.request_model, rec.attributes.get(ga.SERVER_ADDRESS), day)
        with lock:
            known = key in cache
            entry = cache.get(key)
        if not known:
            when = datetime.fromtimestamp(rec.start_ns / 1e9, tz=timezone.utc)
            base = direct(rec, _PROBE, when)
            entry = None
            if base is not None:
                coefficients = []
                for i in range(5):
                    probe = list(_PROBE)
                    probe[i] += _STEP
                    priced = direct(rec, (probe[0], probe[1], probe[2], probe[3], probe[4]), when)
                    coefficients.append(((priced[0] if priced else base[0]) - base[0]) / _STEP)
                entry = (base[0], coefficients, base[1])
            with lock:
                if len(cache) > 10_000:
                    cache.clear()
                cache[key] = entry
        if entry is None:
            return None
        base_cost, (c0, c1, c2, c3, c4), source = entry
        p0, p1, p2, p3, p4 = _PROBE
        t0, t1, t2, t3, t4 = tokens
        cost = base_cost + (c0 * (t0 - p0) + c1 * (t1 - p1) + c2 * (t2 - p2) + c3 * (t3 - p3) + c4 * (t4 - p4))
        return max(cost, 0.0), source

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
        """Run ``fn(conn, ...)`` on this thread's read-only connection, within the read time limit.

        It sees every span acknowledged before it started, in the full-text index too (it waits for the
        writer's indexing transaction while spans arrive: see :mod:`spyglass.store._writer`).
        """
        conn = self._reader()
        self.writer.wait_indexed(self.read_timeout_s)
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
        """This thread's read-only connection without a time limit (streaming exports), once the full-text
        index holds every span acknowledged so far (see :meth:`read`)."""
        self.writer.wait_indexed(self.read_timeout_s)
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
