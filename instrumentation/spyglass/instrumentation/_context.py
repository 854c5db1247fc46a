"""Context attributes: who and what a request was for, stamped on every span started inside it.

Usage::

    from spyglass.instrumentation import using_attributes

    with using_attributes(user_id="u-1", session_id="s-9", tenant_id="acme", metadata={"plan": "pro"}, tags=["beta"]):
        client.chat.completions.create(...)  # the LLM span, its HTTP span, every step span carry them

    @using_attributes(tenant_id="acme")  # also a decorator, on sync/async functions and (async) generators
    def handle(request): ...

How it reaches spans: the attributes live in the OpenTelemetry :class:`~opentelemetry.context.Context` (one
key), and :class:`ContextAttributesSpanProcessor` copies them onto each span in ``on_start``, so spans made by
any instrumentation (Spyglass's or another package's) get them. Every Spyglass instrumentor's ``instrument()``
adds that processor to its tracer provider once (:func:`install_context_processor`); add it yourself when you
only use another package's instrumentation.

Attribute names (``spyglass.semconv.extensions``): ``user.id``, ``session.id``, ``spyglass.tenant.id``,
``spyglass.metadata.<key>`` (str/int/float/bool; anything else as JSON text) and ``spyglass.tags`` (str[]).
Nested blocks merge: the inner value wins per key, tags accumulate.

Where the context goes: everywhere the OpenTelemetry context goes. ``asyncio`` tasks copy it when they are
created. Threads do not: submit ``bind_context(fn)`` to a thread pool (or use
``opentelemetry-instrumentation-threading``).

W3C baggage (opt-in, ``OTEL_SPYGLASS_CONTEXT_BAGGAGE=true`` or ``using_attributes(..., baggage=True)``):
``user.id``, ``session.id`` and ``spyglass.tenant.id`` are also put in the W3C baggage, which the
configured propagator (``tracecontext,baggage`` by default) sends with outgoing HTTP requests; a downstream
service whose processor has baggage enabled stamps its own spans with them. Metadata and tags never leave
the process. Incoming baggage is untrusted input: it is only read when the switch is on, only those three
keys, and values are cut to 256 characters.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from spyglass.semconv import extensions as ext
from spyglass.semconv import messages
from spyglass.semconv.environment import OTEL_SPYGLASS_CONTEXT_BAGGAGE

__all__ = [
    "BAGGAGE_KEYS",
    "ContextAttributesSpanProcessor",
    "Scope",
    "bind_context",
    "current_attributes",
    "install_context_processor",
    "using_attributes",
    "wrap_callable",
]

logger = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

_ATTRIBUTES_KEY = otel_context.create_key("spyglass.context-attributes")
_EMPTY: Mapping[str, AttributeValue] = {}

BAGGAGE_KEYS = (ext.USER_ID, ext.SESSION_ID, ext.TENANT_ID)
"""The context attributes that may travel in W3C baggage (never metadata or tags)."""
_BAGGAGE_VALUE_LIMIT = 256


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no", "off"):
        return False
    if raw in ("true", "1", "yes", "on"):
        return True
    logger.warning("%s=%r is not a boolean; using false", name, raw)
    return False


class _Settings:
    """The baggage switch, read from the environment once (first use or :func:`install_context_processor`)."""

    _lock = threading.Lock()
    _baggage: bool | None = None

    @classmethod
    def baggage(cls) -> bool:
        value = cls._baggage
        if value is None:
            with cls._lock:
                if cls._baggage is None:
                    cls._baggage = _env_flag(OTEL_SPYGLASS_CONTEXT_BAGGAGE)
                value = cls._baggage
        return value

    @classmethod
    def reset(cls) -> None:
        """Forget the value read from the environment (tests)."""
        with cls._lock:
            cls._baggage = None


def current_attributes(context: otel_context.Context | None = None) -> Mapping[str, AttributeValue]:
    """The context attributes in ``context`` (default: the current context); an empty mapping if none."""
    value = otel_context.get_value(_ATTRIBUTES_KEY, context)
    return cast("Mapping[str, AttributeValue]", value) if value is not None else _EMPTY


def _metadata_value(value: Any) -> AttributeValue:
    if isinstance(value, (str, bool, int, float)):
        return value
    return messages.dumps(value)


def _build(
    user_id: str | None,
    session_id: str | None,
    tenant_id: str | None,
    metadata: Mapping[str, Any] | None,
    tags: Iterable[str] | None,
) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    if user_id is not None:
        attrs[ext.USER_ID] = str(user_id)
    if session_id is not None:
        attrs[ext.SESSION_ID] = str(session_id)
    if tenant_id is not None:
        attrs[ext.TENANT_ID] = str(tenant_id)
    if metadata:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"using_attributes(metadata=...) takes a mapping, not {type(metadata).__name__}")
        for key, value in metadata.items():
            attrs[ext.METADATA_PREFIX + str(key)] = _metadata_value(value)
    if tags is not None:
        if isinstance(tags, str):
            raise TypeError("using_attributes(tags=...) takes a list of strings, not one string")
        attrs[ext.TAGS] = tuple(str(t) for t in tags)
    return attrs


def _merge(outer: Mapping[str, AttributeValue], inner: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]:
    if not outer:
        return inner  # the outermost block: its own dict, never changed once built
    merged = dict(outer)
    merged.update(inner)
    outer_tags = outer.get(ext.TAGS)
    inner_tags = inner.get(ext.TAGS)
    if outer_tags and inner_tags:
        merged[ext.TAGS] = tuple(
            dict.fromkeys([*cast("tuple[str, ...]", outer_tags), *cast("tuple[str, ...]", inner_tags)])
        )
    return merged


class Scope(Protocol):
    """What :func:`wrap_callable` runs a call in: a context to activate, and callbacks for the outcome."""

    context: otel_context.Context

    def item(self, value: Any) -> None:
        """A generator yielded ``value``."""

    def finish(self, result: Any, error: BaseException | None) -> None:
        """The call ended (``error`` is ``None`` on success and on an early ``close()`` of a generator)."""


def _safe_finish(scope: Scope, result: Any, error: BaseException | None) -> None:
    try:
        scope.finish(result, error)
    except Exception:
        logger.debug("spyglass: finishing a scope failed", exc_info=True)


def _safe_item(scope: Scope, value: Any) -> None:
    try:
        scope.item(value)
    except Exception:
        logger.debug("spyglass: recording a generator item failed", exc_info=True)


def _safe_begin(
    begin: Callable[[tuple[Any, ...], dict[str, Any]], Scope | None], args: Any, kwargs: Any
) -> Scope | None:
    try:
        return begin(args, kwargs)
    except Exception:
        logger.debug("spyglass: starting a scope failed; running the function untraced", exc_info=True)
        return None


def wrap_callable(fn: _F, begin: Callable[[tuple[Any, ...], dict[str, Any]], Scope | None]) -> _F:
    """Wrap ``fn`` (sync, async, generator or async generator) so each call runs in ``begin(args, kwargs)``.

    The scope's context is active only while ``fn``'s own code runs: a generator's scope is attached on each
    resumption and detached at each ``yield``, so it never leaks into the caller. ``begin`` returning ``None``
    or raising runs ``fn`` untraced; the function's results and exceptions pass through unchanged.
    """
    if inspect.isasyncgenfunction(fn):
        return cast("_F", _wrap_async_generator(fn, begin))
    if inspect.isgeneratorfunction(fn):
        return cast("_F", _wrap_generator(fn, begin))
    if inspect.iscoroutinefunction(fn):
        return cast("_F", _wrap_coroutine(fn, begin))
    return cast("_F", _wrap_sync(fn, begin))


def _wrap_sync(fn: Callable[..., Any], begin: Callable[..., Scope | None]) -> Callable[..., Any]:
    # The hot path of every decorated sync call: _safe_begin/_safe_finish inlined (a frame each saved).
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            scope = begin(args, kwargs)
        except Exception:
            logger.debug("spyglass: starting a scope failed; running the function untraced", exc_info=True)
            scope = None
        if scope is None:
            return fn(*args, **kwargs)
        token = otel_context.attach(scope.context)
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            otel_context.detach(token)
            _safe_finish(scope, None, error)
            raise
        otel_context.detach(token)
        try:
            scope.finish(result, None)
        except Exception:
            logger.debug("spyglass: finishing a scope failed", exc_info=True)
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Awaitable[Any]], begin: Callable[..., Scope | None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = _safe_begin(begin, args, kwargs)
        if scope is None:
            return await fn(*args, **kwargs)
        token = otel_context.attach(scope.context)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            _safe_finish(scope, None, error)
            raise
        finally:
            otel_context.detach(token)
        _safe_finish(scope, result, None)
        return result

    return wrapper


def _wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]], begin: Callable[..., Scope | None]
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        scope = _safe_begin(begin, args, kwargs)
        if scope is None:
            return (yield from fn(*args, **kwargs))
        ctx = scope.context
        token = otel_context.attach(ctx)
        try:
            inner = fn(*args, **kwargs)
        except BaseException as error:
            _safe_finish(scope, None, error)
            raise
        finally:
            otel_context.detach(token)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = otel_context.attach(ctx)
            try:
                if thrown is not None:
                    pending, thrown = thrown, None
                    item = inner.throw(pending)
                else:
                    item = inner.send(sent)
            except StopIteration as stop:
                _safe_finish(scope, stop.value, None)
                return stop.value
            except BaseException as error:
                _safe_finish(scope, None, error)
                raise
            finally:
                otel_context.detach(token)
            _safe_item(scope, item)
            try:
                sent = yield item
            except GeneratorExit:
                token = otel_context.attach(ctx)
                try:
                    inner.close()
                finally:
                    otel_context.detach(token)
                _safe_finish(scope, None, None)
                raise
            except BaseException as error:
                thrown = error

    return wrapper


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], begin: Callable[..., Scope | None]
) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        scope = _safe_begin(begin, args, kwargs)
        if scope is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        ctx = scope.context
        token = otel_context.attach(ctx)
        try:
            inner = fn(*args, **kwargs)
        except BaseException as error:
            _safe_finish(scope, None, error)
            raise
        finally:
            otel_context.detach(token)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = otel_context.attach(ctx)
            try:
                if thrown is not None:
                    pending, thrown = thrown, None
                    item = await inner.athrow(pending)
                else:
                    item = await inner.asend(sent)
            except StopAsyncIteration:
                _safe_finish(scope, None, None)
                return
            except BaseException as error:
                _safe_finish(scope, None, error)
                raise
            finally:
                otel_context.detach(token)
            _safe_item(scope, item)
            try:
                sent = yield item
            except GeneratorExit:
                token = otel_context.attach(ctx)
                try:
                    await inner.aclose()
                finally:
                    otel_context.detach(token)
                _safe_finish(scope, None, None)
                raise
            except BaseException as error:
                thrown = error

    return wrapper


class _AttributesScope:
    __slots__ = ("context",)

    def __init__(self, context: otel_context.Context) -> None:
        self.context = context

    def item(self, value: Any) -> None:
        return None

    def finish(self, result: Any, error: BaseException | None) -> None:
        return None


class using_attributes:
    """Stamp every span started inside this block (or call) with user, session, tenant, metadata and tags.

    A context manager (sync and async) and a decorator. ``baggage`` overrides
    ``OTEL_SPYGLASS_CONTEXT_BAGGAGE`` for this block. Bad arguments raise ``TypeError`` at once.
    """

    __slots__ = ("_attributes", "_baggage", "_entered")

    def __init__(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tenant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        baggage: bool | None = None,
    ) -> None:
        self._attributes = _build(user_id, session_id, tenant_id, metadata, tags)
        self._baggage = baggage
        # Per-context stack of attach tokens: one instance may be entered by several threads or tasks at once.
        self._entered: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar("spyglass.entered")

    def context(self, parent: otel_context.Context | None = None) -> otel_context.Context:
        """``parent`` (default: the current context) with these attributes merged in."""
        base = otel_context.get_current() if parent is None else parent
        merged = _merge(current_attributes(base), self._attributes)
        ctx = otel_context.set_value(_ATTRIBUTES_KEY, merged, base)
        if self._baggage if self._baggage is not None else _Settings.baggage():
            for key in BAGGAGE_KEYS:
                value = self._attributes.get(key)
                if value is not None:
                    ctx = otel_baggage.set_baggage(key, value, ctx)
        return ctx

    def __enter__(self) -> using_attributes:
        token = otel_context.attach(self.context())
        self._entered.set((*self._entered.get(()), token))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = self._entered.get(())
        self._entered.set(stack[:-1])
        otel_context.detach(cast("Any", stack[-1]))

    async def __aenter__(self) -> using_attributes:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: _F) -> _F:
        def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Scope:
            return _AttributesScope(self.context())

        return wrap_callable(fn, begin)


def bind_context(fn: _F) -> _F:
    """``fn`` bound to the current OpenTelemetry context, for running on another thread.

    Threads start with an empty context, so ``executor.submit(bind_context(work), ...)`` is how context
    attributes and the parent span follow work onto a thread pool. The bound function can run on several
    threads at once.
    """
    ctx = otel_context.get_current()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return cast("_F", bound)


class ContextAttributesSpanProcessor(SpanProcessor):
    """Copies the context attributes (and, when enabled, the W3C baggage keys) onto each span at start.

    ``baggage=None`` follows ``OTEL_SPYGLASS_CONTEXT_BAGGAGE`` (read once, here).
    """

    def __init__(self, *, baggage: bool | None = None) -> None:
        self._baggage = _Settings.baggage() if baggage is None else baggage

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            if self._baggage:
                incoming = otel_baggage.get_all(parent_context)
                for key in BAGGAGE_KEYS:
                    value = incoming.get(key)
                    if isinstance(value, str):
                        span.set_attribute(key, value[:_BAGGAGE_VALUE_LIMIT])
            # A Context is a dict: read it directly on this per-span path (the API call re-fetches nothing).
            attrs = (
                parent_context.get(_ATTRIBUTES_KEY)
                if parent_context is not None
                else otel_context.get_value(_ATTRIBUTES_KEY)
            )
            if attrs:
                span.set_attributes(cast("Mapping[str, AttributeValue]", attrs))
        except Exception:
            logger.debug("spyglass: stamping context attributes failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_installed: weakref.WeakSet[Any] = weakref.WeakSet()
_install_lock = threading.Lock()


def install_context_processor(tracer_provider: Any) -> bool:
    """Add a :class:`ContextAttributesSpanProcessor` to ``tracer_provider`` once (idempotent).

    Returns ``False`` when the provider cannot take span processors (the no-op or a proxy provider).
    """
    add = getattr(tracer_provider, "add_span_processor", None)
    if add is None:
        return False
    with _install_lock:
        if tracer_provider in _installed:
            return True
        add(ContextAttributesSpanProcessor())
        _installed.add(tracer_provider)
    return True
