"""One stream lifecycle for every provider: proxies that end the LLM span exactly once.

Contract
--------
An adapter that gets a stream back (an SDK ``Stream``/``AsyncStream``, or an HTTP-level byte/event iterator)
returns ``SyncStreamProxy(stream, recorder)`` / ``AsyncStreamProxy(stream, recorder)`` instead. The proxy
(a :class:`wrapt.ObjectProxy`, so ``isinstance`` checks and every other attribute still work):

- hands the application exactly the chunks it would get uninstrumented, in order (an accumulator may
  *hide* a chunk by returning ``False`` from ``on_chunk``: used only for the usage chunk Spyglass itself asked
  for);
- calls ``recorder.accumulate(chunk)`` for each chunk, guarded: an error there is logged once and the
  recorder stops accumulating, the stream goes on;
- takes a timestamp per chunk (a list append: the only per-chunk timing cost); time to first chunk and
  the interval before every later chunk are worked out at the end and recorded as metrics then (the
  intervals in one batch, :func:`~._histograms.record_batch`);
- ends the span **exactly once**, on whichever comes first: exhaustion (``StopIteration``), an exception
  from the stream (ERROR, ``error.type``, re-raised unchanged), ``close()``/``aclose()``, context-manager
  exit, closing the underlying ``response`` (what the SDKs' ``.stream()`` helpers do on exit), or garbage
  collection of an abandoned, unfinished stream (ERROR with ``error.type`` = :data:`ABANDONED`);
- never attaches or detaches OpenTelemetry context across a ``yield``: nothing here touches the context.

:class:`StreamRecorder` is the per-call state: the :class:`~._telemetry.LLMInvocation`, its span, the
telemetry, and an :class:`Accumulator` (per provider: text, refusals, reasoning and tool-call argument
deltas by choice and tool index, response id/model/usage/finish reasons). ``Accumulator.finish(inv)`` fills
the invocation before :meth:`LLMTelemetry.finish` records it.
"""

from __future__ import annotations

import time
from itertools import islice
from types import TracebackType
from typing import Any, Protocol

import wrapt
from opentelemetry.trace import Span

from ._telemetry import LLMInvocation, LLMTelemetry, log_once

ABANDONED = "spyglass.stream_abandoned"
"""``error.type`` of a stream that was garbage-collected before it finished or was closed."""

_perf = time.perf_counter


class Accumulator(Protocol):
    """Per-provider chunk handling; both methods are called under a guard (errors are logged, not raised)."""

    def accumulate(self, chunk: Any) -> bool:
        """Take one chunk; return ``False`` to hide it from the application."""
        ...

    def finish(self, inv: LLMInvocation) -> None:
        """Fill ``inv`` (response id/model, finish reasons, usage, output messages) from what was seen."""
        ...


class StreamRecorder:
    """State of one streamed LM call. ``end`` is idempotent."""

    __slots__ = ("acc", "broken", "ended", "inv", "span", "tel", "times")

    def __init__(self, tel: LLMTelemetry, inv: LLMInvocation, span: Span, acc: Accumulator | None) -> None:
        self.tel = tel
        self.inv = inv
        self.span = span
        self.acc = acc
        self.broken = acc is None
        self.ended = False
        self.times: list[float] = []
        """``perf_counter()`` at each chunk; intervals are worked out once, at the end."""

    @property
    def count(self) -> int:
        return len(self.times)

    def chunk(self, chunk: Any) -> bool:
        """Record one chunk; the return value says whether the application sees it."""
        self.times.append(_perf())
        if self.broken:
            return True
        try:
            return self.acc.accumulate(chunk) is not False  # type: ignore[union-attr]
        except Exception as exc:
            self.broken = True
            log_once("accumulating a stream chunk", exc)
            return True

    def end(self, error: BaseException | None = None, error_type: str | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        inv = self.inv
        times = self.times
        inv.chunk_count = len(times)
        if times:
            inv.time_to_first_chunk = times[0] - inv.start_time
            inv.chunk_intervals = [b - a for a, b in zip(times, islice(times, 1, None), strict=False)]
        else:
            inv.chunk_intervals = []
        if self.acc is not None and not self.broken:
            try:
                self.acc.finish(inv)
            except Exception as exc:
                log_once("finishing a stream accumulator", exc)
        self.tel.finish(inv, self.span, error, error_type=error_type)


class _ResponseProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """The stream's HTTP response: closing it (as the SDK stream helpers do) ends the span."""

    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_recorder.end()

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_recorder.end()


class _StreamProxyBase(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        self._self_response: Any = None

    @property
    def response(self) -> Any:
        if self._self_response is None:
            self._self_response = _ResponseProxy(self.__wrapped__.response, self._self_recorder)
        return self._self_response

    def __del__(self) -> None:
        rec = self._self_recorder
        if not rec.ended:
            rec.end(None, ABANDONED)


class SyncStreamProxy(_StreamProxyBase):
    """Wraps a sync iterator of chunks/events; see the module docstring."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        rec = self._self_recorder
        nxt = self.__wrapped__.__next__
        while True:
            try:
                chunk = nxt()
            except StopIteration:
                rec.end()
                raise
            except BaseException as exc:
                rec.end(exc)
                raise
            # StreamRecorder.chunk, inlined: this runs once per chunk.
            if rec.ended:
                return chunk
            rec.times.append(_perf())
            if rec.broken:
                return chunk
            try:
                if rec.acc.accumulate(chunk) is not False:  # type: ignore[union-attr]
                    return chunk
            except Exception as exc:
                rec.broken = True
                log_once("accumulating a stream chunk", exc)
                return chunk

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_recorder.end()

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_recorder.end(exc)


class AsyncStreamProxy(_StreamProxyBase):
    """Wraps an async iterator of chunks/events; see the module docstring."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        rec = self._self_recorder
        nxt = self.__wrapped__.__anext__
        while True:
            try:
                chunk = await nxt()
            except StopAsyncIteration:
                rec.end()
                raise
            except BaseException as exc:
                rec.end(exc)
                raise
            if rec.ended:
                return chunk
            rec.times.append(_perf())
            if rec.broken:
                return chunk
            try:
                if rec.acc.accumulate(chunk) is not False:  # type: ignore[union-attr]
                    return chunk
            except Exception as exc:
                rec.broken = True
                log_once("accumulating a stream chunk", exc)
                return chunk

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_recorder.end()

    async def aclose(self) -> Any:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            return await closer()
        finally:
            self._self_recorder.end()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_recorder.end(exc)
