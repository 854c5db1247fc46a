"""Pipeline steps: a span per workflow, task, agent, tool and retrieval, with inputs, outputs and latency.

Usage::

    from spyglass.instrumentation import agent, retrieval, task, tool, workflow

    @workflow                      # invoke_workflow answer_question
    def answer_question(q): ...

    @retrieval(data_source_id="docs")   # retrieval docs; query text and documents captured
    async def search(query: str) -> list[str]: ...

    @tool                          # execute_tool get_weather; arguments and result captured
    def get_weather(city: str) -> dict: ...

    @task(name="parse", capture_output=False)
    def parse(text): ...

    with task("rerank") as step:   # a context manager too (``async with`` as well)
        ranked = rerank(docs)
        step.set_output(ranked)

Each works on sync functions, async functions, generators and async generators (the span covers the whole
iteration; a generator's output is the list of what it yielded). Exceptions are recorded on the span
(``error.type``, status ERROR, an ``exception`` event) and re-raised unchanged.

Spans (names per ``SEMCONV_GENAI_REF`` where the conventions have the operation; all ``INTERNAL``, since a
decorated step runs in-process):

- workflow: ``invoke_workflow {name}``; ``gen_ai.operation.name``, ``gen_ai.workflow.name``.
- agent: ``invoke_agent {name}``; ``gen_ai.agent.name`` and ``.description``.
- tool: ``execute_tool {name}``; ``gen_ai.tool.name``/``.type``/``.description``, and the arguments and
  result in ``gen_ai.tool.call.arguments``/``.result``.
- retrieval: ``retrieval {data_source_id}``; ``gen_ai.data_source.id``, ``gen_ai.retrieval.query.text``
  (the ``query`` argument, else the first string one) and ``gen_ai.retrieval.documents`` (the result as
  ``[{"content": ...}]``, or the dicts it returned).
- task: ``{name}``; no GenAI operation exists for a generic step.

Every step span also has ``spyglass.step.kind``; workflow, agent, task and retrieval record their arguments
and result as JSON in ``spyglass.step.input``/``spyglass.step.output`` (tools use the ``gen_ai.tool.call.*``
pair instead). All captured values go through the one content policy: ``NO_CONTENT`` turns them off, and
values longer than the content limit are cut (``spyglass.content.truncated`` names the attributes).

Configuration: :func:`configure_steps` sets the tracer provider (default: the global one) and reads the
content settings once; without it they are read on first use.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import json
import logging
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from spyglass.instrumentation._config import load_settings
from spyglass.instrumentation._content import ContentPolicy
from spyglass.instrumentation._context import Scope, install_context_processor, wrap_callable
from spyglass.semconv import SCHEMA_URL, gen_ai, messages
from spyglass.semconv import extensions as ext
from spyglass.semconv.values import OperationName, ToolType

__all__ = ["Step", "StepFactory", "StepKind", "agent", "configure_steps", "retrieval", "task", "tool", "workflow"]

logger = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

_UNSET: Any = object()

_MAX_ITEMS = 1000
"""Generator items kept for a step's output; beyond this the output ends with a marker."""


class StepKind(str, enum.Enum):
    WORKFLOW = "workflow"
    TASK = "task"
    AGENT = "agent"
    TOOL = "tool"
    RETRIEVAL = "retrieval"


_OPERATIONS: Mapping[StepKind, str | None] = {
    StepKind.WORKFLOW: OperationName.INVOKE_WORKFLOW.value,
    StepKind.AGENT: OperationName.INVOKE_AGENT.value,
    StepKind.TOOL: OperationName.EXECUTE_TOOL.value,
    StepKind.RETRIEVAL: OperationName.RETRIEVAL.value,
    StepKind.TASK: None,
}


class _State:
    """The tracer and settings steps use; replaced as a whole by :func:`configure_steps`."""

    lock = threading.Lock()
    tracer: trace.Tracer = trace.get_tracer("spyglass.instrumentation.steps", schema_url=SCHEMA_URL)
    policy: ContentPolicy | None = None

    @classmethod
    def current_policy(cls) -> ContentPolicy:
        policy = cls.policy
        if policy is None:
            with cls.lock:
                if cls.policy is None:
                    cls.policy = ContentPolicy.from_settings(load_settings())
                policy = cls.policy
        return policy


def configure_steps(*, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> None:
    """Use ``tracer_provider`` (default: the global one) for step spans, and read the content settings now.

    Keyword ``settings`` override the environment (``capture``, ``content_max_length``; see
    ``spyglass.instrumentation._config.load_settings``). Also adds the context-attributes span processor to
    the provider.
    """
    policy = ContentPolicy.from_settings(load_settings(**settings))
    tracer = trace.get_tracer("spyglass.instrumentation.steps", schema_url=SCHEMA_URL, tracer_provider=tracer_provider)
    if tracer_provider is not None:
        install_context_processor(tracer_provider)
    with _State.lock:
        _State.tracer = tracer
        _State.policy = policy


# --- value capture ----------------------------------------------------------------------------------


class _Binder:
    """Names a call's arguments (``{"question": ..., "k": 3}``), without ``self``/``cls``.

    Plain signatures (no ``*args``/``**kwargs``) take a zip of names and values, several times cheaper than
    ``Signature.bind``; anything else, or a call that does not fit, goes through ``bind_partial``.
    """

    __slots__ = ("keys", "names", "signature", "simple", "skip")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.signature: inspect.Signature | None
        try:
            self.signature = inspect.signature(fn)
        except (TypeError, ValueError):
            self.signature = None
        params = list(self.signature.parameters.values()) if self.signature is not None else []
        self.simple = self.signature is not None and all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params
        )
        self.names = tuple(p.name for p in params if p.kind is not p.KEYWORD_ONLY)
        self.skip = 1 if self.names and self.names[0] in ("self", "cls") else 0
        self.keys = tuple(f"{_json_str(name)}:" for name in self.names[self.skip :])
        """Each recorded name as the JSON object key it becomes, ready to prefix a value."""

    def json(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """``messages.dumps(self(args, kwargs))`` for a call with only positional scalar arguments, without
        building the dict; ``None`` when the call needs the general path."""
        if kwargs or not self.simple or len(args) > len(self.names):
            return None
        parts = []
        for key, value in zip(self.keys, args[self.skip :], strict=False):
            text = _json_scalar(value)
            if text is None:
                return None
            parts.append(key + text)
        return "{" + ",".join(parts) + "}"

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.simple and len(args) <= len(self.names):
            arguments = dict(zip(self.names[self.skip :], args[self.skip :], strict=False))
            if kwargs:
                arguments.update(kwargs)
            return arguments
        return _bound_arguments(self.signature, args, kwargs)


def _bound_arguments(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if signature is None:
        return {"args": list(args), "kwargs": kwargs} if kwargs else list(args)
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:  # the call itself is wrong; the function will raise, we record what we can
        return {"args": list(args), "kwargs": kwargs}
    arguments = dict(bound.arguments)
    for name in ("self", "cls"):
        arguments.pop(name, None)
    return arguments


_json_str: Callable[[str], str] = json.encoder.encode_basestring
"""What ``messages.dumps`` writes for a ``str`` (``ensure_ascii=False``), as one C call."""


def _json_scalar(value: Any) -> str | None:
    """``messages.dumps(value)`` for a str, int, finite float, bool or None; ``None`` for anything else."""
    cls = type(value)
    if cls is str:
        return _json_str(value)
    if cls is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if cls is bool:
        return "true" if value else "false"
    if cls is float and value - value == 0.0:  # NaN and infinities take the encoder's spelling
        return float.__repr__(value)
    return None


def _small_json(value: Any) -> str | None:
    """``messages.dumps(value)`` for a scalar or a flat str-keyed dict of scalars (most step arguments and
    results), without the encoder's per-call setup; ``None`` when ``value`` needs the full encoder."""
    if type(value) is dict:
        parts = []
        for key, item in value.items():
            text = _json_scalar(item)
            if text is None or type(key) is not str:
                return None
            parts.append(f"{_json_str(key)}:{text}")
        return "{" + ",".join(parts) + "}"
    return _json_scalar(value)


def _encode(policy: ContentPolicy, value: Any) -> tuple[str, bool]:
    """``policy.encode(value)``, with a fast path for small values; never raises."""
    text = _small_json(value)
    if text is not None and len(text) <= policy.limit:
        return text, False
    try:
        return policy.encode(value)
    except Exception:  # a value whose own __str__ fails, or a cycle
        return messages.dumps(f"<unserializable {type(value).__name__}>"), False


def _input_attributes(kind: StepKind, policy: ContentPolicy, arguments: Any, truncated: list[str]) -> dict[str, Any]:
    """The span attributes that record a step's arguments (empty when content capture is off)."""
    if not policy.on_span:
        return {}
    out: dict[str, Any] = {}
    if kind is StepKind.RETRIEVAL:
        query = _query_text(arguments)
        if query is not None:
            out[gen_ai.RETRIEVAL_QUERY_TEXT] = query[: policy.limit]
    key = gen_ai.TOOL_CALL_ARGUMENTS if kind is StepKind.TOOL else ext.STEP_INPUT
    text, cut = _encode(policy, arguments)
    if cut:
        truncated.append(key)
    out[key] = text
    return out


def _query_text(arguments: Any) -> str | None:
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, Mapping):
        for key in ("query", "question", "q", "text"):
            value = arguments.get(key)
            if isinstance(value, str):
                return value
        for value in arguments.values():
            if isinstance(value, str):
                return value
    return None


def _documents(result: Any) -> list[Any]:
    items = result if isinstance(result, (list, tuple)) else [result]
    docs: list[Any] = []
    for item in items:
        if isinstance(item, Mapping):
            docs.append(dict(item))
        elif isinstance(item, str):
            docs.append({"content": item})
        else:
            docs.append({"content": item if isinstance(item, (int, float, bool)) else str(item)})
    return docs


# --- the span of one step ---------------------------------------------------------------------------


class _StepScope:
    """One running step: its span, the context that makes it current, and what it produced."""

    __slots__ = ("_items", "_output", "_policy", "context", "kind", "span", "spec", "truncated")

    def __init__(
        self, spec: Step, policy: ContentPolicy, span: Span, context: otel_context.Context, truncated: list[str]
    ) -> None:
        self.spec = spec
        self.kind = spec.kind
        self._policy = policy
        self.span = span
        self.context = context
        self._items: list[Any] | None = None
        self._output: Any = _UNSET
        self.truncated = truncated

    # Scope protocol
    def item(self, value: Any) -> None:
        if self._items is None:
            self._items = []
        if len(self._items) < _MAX_ITEMS:
            self._items.append(value)
        elif len(self._items) == _MAX_ITEMS:
            self._items.append("<more items not kept>")

    def finish(self, result: Any, error: BaseException | None) -> None:
        span = self.span
        if self._output is not _UNSET:
            result = self._output
        elif self._items is not None:
            result = self._items
        if error is None or isinstance(error, GeneratorExit):
            if (result is not None or self._items is not None) and self.spec.capture_output and self._policy.on_span:
                self._record_output(result)
        else:
            error_type = type(error).__qualname__
            module = type(error).__module__
            if module and module != "builtins":
                error_type = f"{module}.{error_type}"
            span.set_attribute(gen_ai.ERROR_TYPE, error_type)
            span.record_exception(error, escaped=True)
            span.set_status(Status(StatusCode.ERROR, str(error)[:512] or type(error).__name__))
        if self.truncated:
            span.set_attribute(ext.CONTENT_TRUNCATED, tuple(self.truncated))
        span.end()

    # capture

    def record_input(self, arguments: Any) -> None:
        attrs = _input_attributes(self.kind, self._policy, arguments, self.truncated)
        if attrs:
            self.span.set_attributes(attrs)

    def _record_output(self, result: Any) -> None:
        """Record the step's result (content capture is on: the caller checked)."""
        kind = self.kind
        if kind is StepKind.RETRIEVAL:
            key, result = gen_ai.RETRIEVAL_DOCUMENTS, _documents(result)
        else:
            key = gen_ai.TOOL_CALL_RESULT if kind is StepKind.TOOL else ext.STEP_OUTPUT
        text, cut = _encode(self._policy, result)
        if cut:
            self.truncated.append(key)
        self.span.set_attribute(key, text)

    def set_output(self, value: Any) -> None:
        self._output = value


class ActiveStep:
    """The handle a ``with step(...)`` block gets: set the step's input, output or extra attributes."""

    __slots__ = ("_scope",)

    def __init__(self, scope: _StepScope) -> None:
        self._scope = scope

    @property
    def span(self) -> Span:
        return self._scope.span

    def set_input(self, value: Any) -> None:
        try:
            self._scope.record_input(value)
        except Exception:
            logger.debug("spyglass: recording a step input failed", exc_info=True)

    def set_output(self, value: Any) -> None:
        self._scope.set_output(value)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._scope.span.set_attribute(key, value)


class Step:
    """A configured step: a decorator (each call is a span) and a context manager (the block is a span)."""

    __slots__ = (
        "_active",
        "_static",
        "attributes",
        "capture_input",
        "capture_output",
        "data_source_id",
        "description",
        "kind",
        "name",
    )

    def __init__(
        self,
        kind: StepKind,
        name: str | None = None,
        *,
        description: str | None = None,
        data_source_id: str | None = None,
        capture_input: bool = True,
        capture_output: bool = True,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a step name must be a string, not {type(name).__name__}")
        self.kind = kind
        self.name = name
        self.description = description
        self.data_source_id = data_source_id
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.attributes = dict(attributes) if attributes else None
        self._static: dict[str, tuple[str, dict[str, AttributeValue]]] = {}
        # Per-context stack of open blocks: one Step may be entered by several threads or tasks at once.
        self._active: contextvars.ContextVar[tuple[tuple[_StepScope, object], ...]] = contextvars.ContextVar(
            "spyglass.step"
        )

    def _span_name(self, name: str) -> str:
        operation = _OPERATIONS[self.kind]
        if operation is None:
            return name
        if self.kind is StepKind.RETRIEVAL:
            return f"{operation} {self.data_source_id}" if self.data_source_id else operation
        return f"{operation} {name}" if name else operation

    def _start_attributes(self, name: str) -> dict[str, AttributeValue]:
        """The attributes every span of this step named ``name`` starts with (computed once per name)."""
        attrs: dict[str, AttributeValue] = {ext.STEP_KIND: self.kind.value}
        operation = _OPERATIONS[self.kind]
        if operation is not None:
            attrs[gen_ai.OPERATION_NAME] = operation
        kind = self.kind
        if kind is StepKind.WORKFLOW:
            attrs[gen_ai.WORKFLOW_NAME] = name
        elif kind is StepKind.AGENT:
            attrs[gen_ai.AGENT_NAME] = name
            if self.description:
                attrs[gen_ai.AGENT_DESCRIPTION] = self.description
        elif kind is StepKind.TOOL:
            attrs[gen_ai.TOOL_NAME] = name
            attrs[gen_ai.TOOL_TYPE] = ToolType.FUNCTION.value
            if self.description:
                attrs[gen_ai.TOOL_DESCRIPTION] = self.description
        elif kind is StepKind.RETRIEVAL and self.data_source_id:
            attrs[gen_ai.DATA_SOURCE_ID] = self.data_source_id
        if self.attributes:
            attrs.update(self.attributes)
        return attrs

    def _static_for(self, name: str) -> tuple[str, dict[str, AttributeValue]]:
        """The span name and start attributes of this step named ``name`` (computed once per name)."""
        static = self._static.get(name)
        if static is None:
            static = self._static[name] = (self._span_name(name), self._start_attributes(name))
        return static

    def _start(
        self,
        name: str,
        tracer: trace.Tracer | None = None,
        policy: ContentPolicy | None = None,
        arguments: Any = _UNSET,
    ) -> _StepScope:
        """Start this step's span (current only once the caller attaches ``scope.context``).

        ``tracer``/``policy`` default to the Steps API's own; framework instrumentors (DSPy) pass theirs.
        ``arguments`` (the step's input) goes in with the span's start attributes: one attribute call.
        """
        policy = policy or _State.current_policy()
        span_name, attrs = self._static_for(name)
        truncated: list[str] = []
        if arguments is not _UNSET:
            attrs = {**attrs, **_input_attributes(self.kind, policy, arguments, truncated)}
        # The SDK copies ``attrs`` into the span's own attribute container, so the shared dict is never changed.
        span = (tracer or _State.tracer).start_span(span_name, kind=SpanKind.INTERNAL, attributes=attrs)
        return _StepScope(self, policy, span, trace.set_span_in_context(span), truncated)

    # --- decorator ---------------------------------------------------------------------------------
    def __call__(self, fn: _F) -> _F:
        if not callable(fn):
            raise TypeError(f"@{self.kind.value} decorates a function, not {type(fn).__name__}")
        name = self.name or getattr(fn, "__name__", None) or self.kind.value
        spec = self
        if spec.kind in (StepKind.TOOL, StepKind.AGENT) and spec.description is None:
            doc = inspect.getdoc(fn)
            if doc:
                spec = _copy(spec, description=doc.strip().splitlines()[0])
        binder = _Binder(fn)
        capture_input = spec.capture_input
        kind = spec.kind
        span_name, base = spec._static_for(name)
        # Retrieval also records the query text: the general path. Others put one JSON input attribute.
        input_key = (
            None
            if kind is StepKind.RETRIEVAL
            else gen_ai.TOOL_CALL_ARGUMENTS
            if kind is StepKind.TOOL
            else ext.STEP_INPUT
        )

        def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Scope:
            # Everything per call in one frame: this runs on every call of a decorated function.
            policy = _State.policy or _State.current_policy()
            truncated: list[str] = []
            attrs = base
            if capture_input and policy.on_span:
                if input_key is None:
                    return spec._start(name, None, policy, binder(args, kwargs))
                text = binder.json(args, kwargs)
                if text is None or len(text) > policy.limit:
                    text, cut = _encode(policy, binder(args, kwargs))
                    if cut:
                        truncated.append(input_key)
                attrs = {**base, input_key: text}
            span = _State.tracer.start_span(span_name, kind=SpanKind.INTERNAL, attributes=attrs)
            return _StepScope(spec, policy, span, trace.set_span_in_context(span), truncated)

        return wrap_callable(fn, begin)

    # --- context manager ---------------------------------------------------------------------------
    def __enter__(self) -> ActiveStep:
        scope = self._start(self.name or self.kind.value)
        token = otel_context.attach(scope.context)
        self._active.set((*self._active.get(()), (scope, token)))
        return ActiveStep(scope)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = self._active.get(())
        self._active.set(stack[:-1])
        scope, token = stack[-1]
        otel_context.detach(cast("Any", token))
        try:
            scope.finish(None, exc)
        except Exception:
            logger.debug("spyglass: finishing a step failed", exc_info=True)

    async def __aenter__(self) -> ActiveStep:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<{self.kind.value} step {self.name!r}>"


def _copy(step: Step, **changes: Any) -> Step:
    values: dict[str, Any] = {
        "name": step.name,
        "description": step.description,
        "data_source_id": step.data_source_id,
        "capture_input": step.capture_input,
        "capture_output": step.capture_output,
        "attributes": step.attributes,
    }
    values.update(changes)
    return Step(step.kind, **values)


class StepFactory:
    """``@kind``, ``@kind()``, ``@kind("name", ...)`` and ``with kind("name") as step:``."""

    __slots__ = ("kind",)

    def __init__(self, kind: StepKind) -> None:
        self.kind = kind

    @overload
    def __call__(self, fn: _F, /) -> _F: ...

    @overload
    def __call__(
        self,
        step_name: str | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        data_source_id: str | None = None,
        capture_input: bool = True,
        capture_output: bool = True,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Step: ...

    def __call__(self, fn_or_name: Any = None, /, **options: Any) -> Any:
        if callable(fn_or_name):
            if options:
                raise TypeError(f"@{self.kind.value}(...) takes options as keywords with the name first")
            return Step(self.kind)(fn_or_name)
        if "name" in options:
            if fn_or_name is not None:
                raise TypeError("give the step name once")
            fn_or_name = options.pop("name")
        return Step(self.kind, fn_or_name, **options)

    def __repr__(self) -> str:
        return f"<spyglass step factory {self.kind.value!r}>"


workflow = StepFactory(StepKind.WORKFLOW)
"""A whole pipeline run: ``invoke_workflow {name}``."""
task = StepFactory(StepKind.TASK)
"""A generic step (parse, rerank, format...): a span named after it."""
agent = StepFactory(StepKind.AGENT)
"""An in-process agent: ``invoke_agent {name}``."""
tool = StepFactory(StepKind.TOOL)
"""A tool the model calls: ``execute_tool {name}`` with its arguments and result."""
retrieval = StepFactory(StepKind.RETRIEVAL)
"""A retriever: ``retrieval {data_source_id}`` with the query and the documents."""
