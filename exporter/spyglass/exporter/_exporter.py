"""``SpyglassSpanExporter``: cost, capture policy and redaction on every span, then OTLP that never loses a span.

Usage::

    # no code change: the entry point is registered
    OTEL_TRACES_EXPORTER=spyglass opentelemetry-instrument python app.py

    # or in code
    provider.add_span_processor(BatchSpanProcessor(SpyglassSpanExporter(endpoint="http://127.0.0.1:4318/v1/traces")))

How a batch travels: ``export()`` enriches and encodes the spans (CPU only), appends the bytes to a bounded
in-memory queue and returns at once; a daemon sender thread ships batches oldest first. A retryable failure
is retried with exponential backoff and jitter (honouring ``Retry-After``); while the backend is down the
queue spills to the disk spool (``OTEL_SPYGLASS_SPOOL_DIR``), which is always older than the memory queue, so
batches reach the backend in the order they were exported. With no spool, or a full one, the oldest batches
are dropped and counted. All sending runs with instrumentation suppressed, so the exporter's own HTTP and
gRPC calls are never traced. Counts are the ``spyglass.exporter.spans`` metric and a log line at shutdown.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spyglass.exporter._cost import Pricer, start_price_updates
from spyglass.exporter._encoding import encode_request
from spyglass.exporter._enrichment import Enricher
from spyglass.exporter._modes import ContentMode
from spyglass.exporter._policy import CapturePolicy, PolicyFile
from spyglass.exporter._redaction import Redactor
from spyglass.exporter._settings import DEFAULT_ENDPOINTS, PROTOCOLS, Settings
from spyglass.exporter._spool import Spool
from spyglass.exporter._transport import SendError, Transport, make_transport
from spyglass.semconv import extensions as ext
from spyglass.semconv import metrics as semconv_metrics

__all__ = ["ExportCounts", "SpyglassSpanExporter"]

_log = logging.getLogger(__name__)
_JITTER = random.Random()  # noqa: S311 - jitter, not security
"""The exporter's own generator: retries never draw from (or disturb) the application's global ``random``."""

DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
DEFAULT_BACKOFF_INITIAL_S = 0.5
DEFAULT_BACKOFF_MAX_S = 30.0
_UNSET: Any = object()


class ExportCounts:
    """Spans by outcome since start. ``retried`` counts spans in a failed attempt that will be tried again."""

    __slots__ = ("dropped", "exported", "retried", "spooled")

    def __init__(self) -> None:
        self.exported = 0
        self.retried = 0
        self.spooled = 0
        self.dropped = 0

    def as_dict(self) -> dict[str, int]:
        return {"exported": self.exported, "retried": self.retried, "spooled": self.spooled, "dropped": self.dropped}


def _suppressed() -> object:
    """Attach a context that turns off all instrumentation (our own HTTP/gRPC calls must not be traced)."""
    ctx = otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
    ctx = otel_context.set_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)
    return otel_context.attach(ctx)


class SpyglassSpanExporter(SpanExporter):
    """Enrich (cost, policy, redaction) and export spans over OTLP, with retries and a disk spool.

    Every argument defaults to its ``OTEL_*`` variable, then to the built-in default (argument > env var >
    default, resolved once here). Bad arguments raise ``ValueError``; bad env values are logged and ignored.
    ``transport`` replaces the OTLP/file sender with your own object with ``send(payload, timeout) -> int``
    (serialized ``ExportTraceServiceRequest`` in, rejected span count out) and ``close()``.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        protocol: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        certificate: str | None = None,
        export_file: str | Path | None = None,
        spool_dir: str | Path | None = None,
        spool_max_bytes: int | None = None,
        content_mode: ContentMode | str | None = None,
        redactor: Redactor | None = None,
        policy: CapturePolicy | PolicyFile | str | Path | None = None,
        pricer: Pricer | None = _UNSET,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL_S,
        backoff_max: float = DEFAULT_BACKOFF_MAX_S,
        meter_provider: Any = None,
        settings: Settings | None = None,
        transport: Transport | None = None,
    ) -> None:
        s = settings or Settings.from_env()
        if protocol is not None and protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        if max_queue_bytes <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("max_queue_bytes and backoffs must be positive, backoff_max >= backoff_initial")
        self.protocol = protocol or s.protocol
        endpoint_from_env = endpoint is None
        if endpoint is None:
            endpoint = s.endpoint if protocol is None or protocol == s.protocol else DEFAULT_ENDPOINTS[self.protocol]
        self.timeout = timeout if timeout is not None else s.timeout_s
        target_file = export_file if export_file is not None else s.export_file
        transport_options: dict[str, Any] = {
            "headers": headers if headers is not None else s.headers,
            "compression": compression if compression is not None else s.compression,
            "certificate": certificate if certificate is not None else s.certificate,
            "export_file": target_file,
        }
        try:
            self._transport: Transport = transport or make_transport(self.protocol, endpoint, **transport_options)
        except (ValueError, OSError) as exc:
            if not endpoint_from_env:
                raise
            # A bad OTEL_* value must not stop the application from starting.
            _log.error("spyglass exporter: %s; using %s", exc, DEFAULT_ENDPOINTS[self.protocol])
            endpoint = DEFAULT_ENDPOINTS[self.protocol]
            transport_options["certificate"] = None
            self._transport = make_transport(self.protocol, endpoint, **transport_options)
        self.endpoint = endpoint
        spool_path = spool_dir if spool_dir is not None else s.spool_dir
        self._spool: Spool | None = None
        if spool_path is not None:
            try:
                self._spool = Spool(spool_path, spool_max_bytes if spool_max_bytes is not None else s.spool_max_bytes)
            except OSError as exc:
                if spool_dir is not None:
                    raise
                _log.error("spyglass exporter: cannot use spool directory %s (%s); spooling is off", spool_path, exc)

        mode = s.content_mode
        if content_mode is not None:
            mode = ContentMode(content_mode) if isinstance(content_mode, str) else content_mode
        if redactor is None:
            try:
                redactor = Redactor(
                    detectors=s.redaction_detectors,
                    mode=s.redaction_mode,
                    hmac_key=s.hmac_key,
                    patterns=s.redaction_patterns,
                )
            except ValueError as exc:  # a bad env setting: keep the built-ins, say why
                _log.error("redaction settings rejected (%s); using all built-in detectors", exc)
                redactor = Redactor(mode=s.redaction_mode, hmac_key=s.hmac_key)
        if policy is None and s.policy_file is not None:
            policy = s.policy_file
        if isinstance(policy, str | Path):
            policy = PolicyFile(policy)
        if pricer is _UNSET:
            pricer = Pricer(s.price_overrides)
        if s.prices_update_url is not None and pricer is not None:
            start_price_updates(s.prices_update_url)
        self._enricher = Enricher(
            pricer=pricer, redactor=redactor, default_mode=mode, policy=policy, extra_keys=s.redaction_keys
        )

        self.counts = ExportCounts()
        self._max_queue_bytes = max_queue_bytes
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._queue: deque[tuple[bytes, int]] = deque()
        self._queue_bytes = 0
        self._cond = threading.Condition()
        self._inflight = False
        self._held = 0  # spans of the memory batch being sent (off the queue while in flight)
        self._shutdown = False
        self._stop_sending = False
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._counter = self._make_counter(meter_provider)
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            # A weak reference: the fork hook must not keep every exporter ever made alive.
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (m := after_fork()) is not None and m())

    # -- plumbing ----------------------------------------------------------------------------------
    @staticmethod
    def _make_counter(meter_provider: Any) -> Any:
        try:
            from opentelemetry import metrics

            meter = (meter_provider or metrics.get_meter_provider()).get_meter("spyglass.exporter")
            return meter.create_counter(
                semconv_metrics.SPYGLASS_EXPORTER_SPANS, unit="{span}", description="Spans by export outcome"
            )
        except Exception:  # metrics are optional; never fail construction over them
            _log.debug("exporter metrics unavailable", exc_info=True)
            return None

    def _count(self, outcome: str, spans: int) -> None:
        if spans <= 0:
            return
        setattr(self.counts, outcome, getattr(self.counts, outcome) + spans)
        if self._counter is not None:
            try:
                self._counter.add(spans, {ext.EXPORT_OUTCOME: outcome})
            except Exception:
                _log.debug("exporter metric update failed", exc_info=True)

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name="spyglass-exporter", daemon=True)
        self._worker.start()

    def _after_fork(self) -> None:
        # The child has the parent's queue but no sender thread; start one (the SDK's batch processor does too).
        self._cond = threading.Condition()
        self._inflight = False
        if not self._shutdown:
            self._start_worker()

    @property
    def pending_spans(self) -> int:
        """Spans waiting in memory and in the spool."""
        with self._cond:
            mem = sum(n for _, n in self._queue) + self._held
        return mem + (self._spool.spans if self._spool is not None else 0)

    # -- SpanExporter ------------------------------------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Enrich, encode and queue; never waits for the network."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        token = _suppressed()
        try:
            payload = encode_request([self._enricher.enrich(s) for s in spans])
        except Exception:
            _log.exception("spyglass exporter: encoding %d spans failed; they are dropped", len(spans))
            self._count("dropped", len(spans))
            return SpanExportResult.FAILURE
        finally:
            otel_context.detach(token)  # type: ignore[arg-type]
        self._enqueue(payload, len(spans))
        return SpanExportResult.SUCCESS

    def _enqueue(self, payload: bytes, spans: int) -> None:
        with self._cond:
            self._queue.append((payload, spans))
            self._queue_bytes += len(payload)
            while self._queue_bytes > self._max_queue_bytes and len(self._queue) > 1:
                old, n = self._queue.popleft()
                self._queue_bytes -= len(old)
                self._spill_or_drop(old, n)
            self._cond.notify_all()

    def _spill_or_drop(self, payload: bytes, spans: int, *, front: bool = False) -> None:
        if self._spool is None:
            self._count("dropped", spans)
            _log.warning("spyglass exporter: queue full, dropped %d spans (configure a spool to keep them)", spans)
            return
        try:
            dropped = self._spool.put(payload, spans, front=front)
        except OSError as exc:
            _log.error("spyglass exporter: cannot write the spool (%s); dropped %d spans", exc, spans)
            self._count("dropped", spans)
            return
        self._count("spooled", spans)
        if dropped:
            self._count("dropped", dropped)
            _log.warning("spyglass exporter: spool full, dropped the %d oldest spans", dropped)

    def _spill_all(self) -> None:
        """Move the whole memory queue to the spool (backend down): keeps memory small and survives exit."""
        if self._spool is None:
            return
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            self._queue_bytes = 0
        for payload, n in items:
            self._spill_or_drop(payload, n)

    # -- sender ------------------------------------------------------------------------------------
    def _next(self) -> tuple[str, Any, bytes, int] | None:
        """The oldest batch: the spool's head (everything there is older than memory), else memory's head.

        A memory batch is taken off the queue while it is sent, so the queue's eviction never touches it; if
        sending fails it goes back in front (of the spool, or of the queue when there is no spool)."""
        if self._spool is not None:
            head = self._spool.peek()
            if head is not None:
                batch, payload = head
                return "spool", batch, payload, batch.spans
        with self._cond:
            if self._queue:
                payload, n = self._queue.popleft()
                self._queue_bytes -= len(payload)
                self._held = n
                return "memory", None, payload, n
        return None

    def _done(self, source: str, batch: Any, payload: bytes) -> None:
        if source == "spool":
            assert self._spool is not None
            self._spool.pop(batch)
        else:
            with self._cond:
                self._held = 0

    def _put_back(self, source: str, payload: bytes, n: int) -> None:
        """A retryable failure: keep the batch first in line."""
        if source != "memory":
            return  # still the spool's head
        if self._spool is not None:
            self._spill_or_drop(payload, n, front=True)
        else:
            with self._cond:
                self._queue.appendleft((payload, n))
                self._queue_bytes += len(payload)
        with self._cond:
            self._held = 0

    def _run(self) -> None:
        token = _suppressed()
        try:
            attempt = 0
            while True:
                with self._cond:
                    while not self._stop_sending and not self._queue and not (self._spool and len(self._spool)):
                        self._inflight = False
                        self._cond.notify_all()
                        self._cond.wait()
                    if self._stop_sending:
                        self._inflight = False
                        self._cond.notify_all()
                        return
                    self._inflight = True
                item = self._next()
                if item is None:
                    continue
                source, batch, payload, n = item
                if not payload:  # unreadable spool file
                    self._count("dropped", n)
                    self._done(source, batch, payload)
                    continue
                try:
                    rejected = self._transport.send(payload, self.timeout)
                except SendError as exc:
                    if not exc.retryable:
                        _log.error("spyglass exporter: %s; dropping %d spans (not retryable)", exc, n)
                        self._count("dropped", n)
                        self._done(source, batch, payload)
                        attempt = 0
                        continue
                    self._count("retried", n)
                    if attempt == 0:
                        _log.warning("spyglass exporter: %s; retrying with backoff", exc)
                    self._put_back(source, payload, n)
                    self._spill_all()
                    delay = min(self._backoff_max, self._backoff_initial * (2**attempt))
                    delay = delay * _JITTER.uniform(0.5, 1.0)
                    if exc.retry_after is not None:
                        delay = max(delay, exc.retry_after)
                    attempt = min(attempt + 1, 30)
                    not_before = time.monotonic() + (exc.retry_after or 0.0)
                    self._wake.wait(delay)  # a flush may cut our own backoff short...
                    self._wake.clear()
                    remaining = not_before - time.monotonic()
                    if remaining > 0:  # ...but never the server's Retry-After (only shutdown does)
                        self._stopped.wait(remaining)
                    continue
                except Exception:  # a transport bug must not kill the sender
                    _log.exception("spyglass exporter: unexpected send failure; dropping %d spans", n)
                    self._count("dropped", n)
                    self._done(source, batch, payload)
                    continue
                if attempt:
                    _log.info("spyglass exporter: backend reachable again (%s)", self._transport.description)
                attempt = 0
                rejected = min(max(rejected, 0), n)
                if rejected:  # the backend took the batch but refused some spans: not retryable, but counted
                    _log.warning("spyglass exporter: backend rejected %d of %d spans", rejected, n)
                    self._count("dropped", rejected)
                self._count("exported", n - rejected)
                self._done(source, batch, payload)
        finally:
            otel_context.detach(token)  # type: ignore[arg-type]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything queued (memory and spool) is sent, or the timeout passes."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._wake.set()  # cut a backoff short: flushing means "try now"
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight or (self._spool is not None and len(self._spool)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.05))
                if self._spool is not None and len(self._spool) and not self._queue and not self._inflight:
                    self._cond.notify_all()
        return True

    def shutdown(self, timeout_millis: int = 10_000) -> None:
        """Flush within the timeout, keep the rest in the spool (or count it dropped), log the counts. Idempotent."""
        if self._shutdown:
            return
        self._shutdown = True
        flushed = self.force_flush(timeout_millis)
        with self._cond:
            self._stop_sending = True
            self._cond.notify_all()
        self._stopped.set()
        self._wake.set()
        self._worker.join(timeout=max(self.timeout, 1.0) + 1.0)
        if not flushed:
            with self._cond:
                left = list(self._queue)
                self._queue.clear()
                self._queue_bytes = 0
            for payload, n in left:
                self._spill_or_drop(payload, n)
        try:
            self._transport.close()
        except Exception:
            _log.debug("closing the transport failed", exc_info=True)
        c = self.counts
        spooled_left = self._spool.spans if self._spool is not None else 0
        _log.log(
            logging.WARNING if c.dropped or spooled_left else logging.INFO,
            "spyglass exporter shut down: exported=%d retried=%d spooled=%d dropped=%d (still in spool: %d) via %s",
            c.exported,
            c.retried,
            c.spooled,
            c.dropped,
            spooled_left,
            self._transport.description,
        )
