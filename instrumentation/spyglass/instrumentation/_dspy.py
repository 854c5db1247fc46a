"""DSPy auto-instrumentation: a span per module, predictor, retriever and tool call, and one per LM call.

Usage::

    from spyglass.instrumentation import DSPyInstrumentor

    DSPyInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)   # or opentelemetry-instrument

Spans (DSPy 3.x; all but the LM span are step spans of :mod:`._steps`, with inputs and outputs as
size-limited JSON under the one content policy):

- the outermost module call: ``invoke_workflow {Class}`` (``spyglass.step.kind=workflow``);
- every module inside it, predictors included: a span named after its class (``ChainOfThought``,
  ``Predict``...), ``spyglass.step.kind=task``; predictors add ``spyglass.dspy.signature`` and their parsed
  output fields as ``spyglass.step.output``;
- ``dspy.Retrieve`` subclasses: ``retrieval {Class}`` with the query and the passages;
- ``dspy.Tool`` calls: ``execute_tool {name}`` with arguments and result;
- LM calls (``dspy.LM`` and any ``BaseLM``): the same CLIENT GenAI span the SDK instrumentors emit
  (``chat {model}``; provider from the model prefix, ``openai/gpt-4o-mini`` -> ``openai``; server from
  ``api_base``), with messages, parameters, usage and the completion.

Exactly one LLM span per LM call: the LM span marks the context (``LLM_SPAN_KEY``), so the SDK and HTTP-level
instrumentors stay silent for the request DSPy's engine makes (litellm -> openai SDK -> httpx, or DSPy's own
HTTP client); and when the LM is itself called inside another Spyglass LLM span, no DSPy LM span is made.
Patched with wrapt on ``Module.__call__``/``acall``, ``BaseLM.__call__``/``acall``, ``Retrieve.__call__`` and
``Tool.__call__``/``acall`` when the application imports ``dspy`` (a post-import hook, so an app that never
uses DSPy does not pay its import time); ``uninstrument()`` removes them.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from spyglass.semconv import SCHEMA_URL
from spyglass.semconv import extensions as ext
from spyglass.semconv import messages as m
from spyglass.semconv.values import OperationName, ProviderName

from . import _openai
from . import _openai_messages as om
from ._config import load_settings
from ._content import ContentPolicy
from ._context import install_context_processor
from ._providers import provider_for_host, server_of
from ._steps import Step, StepKind, _StepScope
from ._telemetry import LLMInvocation, LLMTelemetry, llm_span_active, log_once

__all__ = ["DSPyInstrumentor"]

logger = logging.getLogger(__name__)

_instruments = ("dspy >= 3.0",)

_IN_MODULE = otel_context.create_key("spyglass-dspy-module")
"""Set while a DSPy module span is current: the next module down is a task, not a workflow."""

# litellm/DSPy model prefixes -> gen_ai.provider.name.
_PREFIXES = {
    "openai": ProviderName.OPENAI.value,
    "text-completion-openai": ProviderName.OPENAI.value,
    "anthropic": ProviderName.ANTHROPIC.value,
    "azure": ProviderName.AZURE_AI_OPENAI.value,
    "azure_ai": ProviderName.AZURE_AI_INFERENCE.value,
    "gemini": ProviderName.GCP_GEMINI.value,
    "vertex_ai": ProviderName.GCP_VERTEX_AI.value,
    "bedrock": ProviderName.AWS_BEDROCK.value,
    "cohere": ProviderName.COHERE.value,
    "cohere_chat": ProviderName.COHERE.value,
    "groq": ProviderName.GROQ.value,
    "deepseek": ProviderName.DEEPSEEK.value,
    "mistral": ProviderName.MISTRAL_AI.value,
    "xai": ProviderName.X_AI.value,
    "perplexity": ProviderName.PERPLEXITY.value,
    "openrouter": ProviderName.OPENROUTER.value,
    "ollama": ProviderName.OLLAMA.value,
    "ollama_chat": ProviderName.OLLAMA.value,
    "hosted_vllm": ProviderName.VLLM.value,
    "watsonx": ProviderName.IBM_WATSONX_AI.value,
}
_OPERATIONS = {"chat": OperationName.CHAT.value, "text": OperationName.TEXT_COMPLETION.value}


def _jsonable(value: Any) -> Any:
    """DSPy values as plain JSON: ``Prediction``/``Example`` become their field dicts."""
    to_dict = getattr(value, "toDict", None)
    if callable(to_dict):
        try:
            return {k: _jsonable(v) for k, v in to_dict().items()}
        except Exception:
            return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


_SIGNATURES: dict[type, inspect.Signature | None] = {}


def _forward_arguments(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args:
        return _jsonable(kwargs)
    cls = type(instance)
    if cls not in _SIGNATURES:
        try:
            _SIGNATURES[cls] = inspect.signature(instance.forward)
        except (TypeError, ValueError, AttributeError):
            _SIGNATURES[cls] = None
    sig = _SIGNATURES[cls]
    if sig is not None:
        try:
            return _jsonable(dict(sig.bind_partial(*args, **kwargs).arguments))
        except TypeError:
            pass
    return _jsonable({"args": list(args), "kwargs": kwargs})


def _run(scope: _StepScope, wrapped: Callable[..., Any], args: Any, kwargs: Any, extra: Any = None) -> Any:
    ctx = scope.context if extra is None else otel_context.set_value(_IN_MODULE, True, scope.context)
    token = otel_context.attach(ctx)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _finish(scope, None, error)
        raise
    finally:
        otel_context.detach(token)
    _finish(scope, result, None)
    return result


async def _arun(scope: _StepScope, wrapped: Callable[..., Any], args: Any, kwargs: Any, extra: Any = None) -> Any:
    ctx = scope.context if extra is None else otel_context.set_value(_IN_MODULE, True, scope.context)
    token = otel_context.attach(ctx)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        _finish(scope, None, error)
        raise
    finally:
        otel_context.detach(token)
    _finish(scope, result, None)
    return result


def _finish(scope: _StepScope, result: Any, error: BaseException | None) -> None:
    try:
        scope.finish(_jsonable(result), error)
    except Exception as exc:
        log_once("ending a DSPy span", exc)


class _Wrappers:
    """The wrapt wrappers, bound to one instrumentor's tracer, telemetry and content policy."""

    def __init__(self, tracer: trace.Tracer, tel: LLMTelemetry) -> None:
        self.tracer = tracer
        self.tel = tel
        self.policy: ContentPolicy = tel.content

    # --- modules and predictors -------------------------------------------------------------------
    def _module_scope(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _StepScope | None:
        if not is_instrumentation_enabled():
            return None
        name = type(instance).__name__
        nested = otel_context.get_value(_IN_MODULE) is not None
        attributes = None
        signature = getattr(instance, "signature", None)
        if signature is not None and hasattr(instance, "demos"):  # a predictor
            sig_text = getattr(signature, "signature", None)
            if isinstance(sig_text, str):
                attributes = {ext.DSPY_SIGNATURE: sig_text}
        step = Step(StepKind.TASK if nested else StepKind.WORKFLOW, name, attributes=attributes)
        scope = step._start(name, self.tracer, self.policy)
        if self.policy.on_span:
            scope.record_input(_forward_arguments(instance, args, kwargs))
        return scope

    def module_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            scope = self._module_scope(instance, args, kwargs)
        except Exception as exc:
            log_once("starting a DSPy module span", exc)
            scope = None
        if scope is None:
            return wrapped(*args, **kwargs)
        return _run(scope, wrapped, args, kwargs, extra=True)

    async def module_acall(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            scope = self._module_scope(instance, args, kwargs)
        except Exception as exc:
            log_once("starting a DSPy module span", exc)
            scope = None
        if scope is None:
            return await wrapped(*args, **kwargs)
        return await _arun(scope, wrapped, args, kwargs, extra=True)

    # --- retrievers ---------------------------------------------------------------------------------
    def retrieve_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            scope: _StepScope | None = None
            if is_instrumentation_enabled():
                name = type(instance).__name__
                scope = Step(StepKind.RETRIEVAL, name, data_source_id=name)._start(name, self.tracer, self.policy)
                if self.policy.on_span:
                    query = args[0] if args else kwargs.get("query")
                    scope.record_input(
                        {"query": _jsonable(query), **_jsonable({k: v for k, v in kwargs.items() if k != "query"})}
                    )
        except Exception as exc:
            log_once("starting a DSPy retriever span", exc)
            scope = None
        if scope is None:
            return wrapped(*args, **kwargs)
        token = otel_context.attach(scope.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _finish(scope, None, error)
            raise
        finally:
            otel_context.detach(token)
        passages = getattr(result, "passages", result)
        scope.set_output(_jsonable(passages))
        _finish(scope, None, None)
        return result

    # --- tools --------------------------------------------------------------------------------------
    def _tool_scope(self, instance: Any, kwargs: dict[str, Any]) -> _StepScope | None:
        if not is_instrumentation_enabled():
            return None
        name = str(getattr(instance, "name", None) or type(instance).__name__)
        desc = getattr(instance, "desc", None)
        step = Step(StepKind.TOOL, name, description=desc if isinstance(desc, str) else None)
        scope = step._start(name, self.tracer, self.policy)
        if self.policy.on_span:
            scope.record_input(_jsonable(kwargs))
        return scope

    def tool_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            scope = self._tool_scope(instance, kwargs)
        except Exception as exc:
            log_once("starting a DSPy tool span", exc)
            scope = None
        if scope is None:
            return wrapped(*args, **kwargs)
        return _run(scope, wrapped, args, kwargs)

    async def tool_acall(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            scope = self._tool_scope(instance, kwargs)
        except Exception as exc:
            log_once("starting a DSPy tool span", exc)
            scope = None
        if scope is None:
            return await wrapped(*args, **kwargs)
        return await _arun(scope, wrapped, args, kwargs)

    # --- LM calls -----------------------------------------------------------------------------------
    def _lm_start(
        self, lm: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[LLMInvocation, Any, Any] | None:
        if not is_instrumentation_enabled() or llm_span_active():
            return None
        model = str(getattr(lm, "model", "") or "")
        prefix, sep, bare = model.partition("/")
        provider = _PREFIXES.get(prefix, prefix) if sep else ProviderName.OPENAI.value
        if not sep:
            bare = model
        params: dict[str, Any] = {**(getattr(lm, "kwargs", None) or {}), **kwargs}
        base = params.get("api_base") or params.get("base_url")
        host, port = server_of(base) if isinstance(base, str) else (None, None)
        if host is not None and not sep:
            provider = provider_for_host(host, provider, port)
        operation = _OPERATIONS.get(str(getattr(lm, "model_type", "chat")), OperationName.CHAT.value)
        inv = LLMInvocation(operation, provider, request_model=bare or None, server_address=host, server_port=port)
        _openai._request_params(params, inv.attributes)
        tel = self.tel
        span = tel.start(inv)
        if tel.wants_content(span):
            messages = params.get("messages")
            prompt = args[0] if args else params.get("prompt")
            if messages:
                inv.input_messages = list(om.chat_input_messages(messages))
            elif prompt is not None:
                inv.input_messages = [m.message("user", [m.text(str(prompt))])]
        history = getattr(lm, "history", None)
        last = history[-1] if isinstance(history, list) and history else None
        return inv, span, last

    def _lm_finish(self, lm: Any, inv: LLMInvocation, last: Any, result: Any) -> None:
        history = getattr(lm, "history", None)
        entry = history[-1] if isinstance(history, list) and history else None
        if entry is not None and entry is not last and isinstance(entry, dict):
            usage = entry.get("usage")
            if isinstance(usage, dict) and usage:
                _openai._chat_usage(inv, usage)
            if isinstance(entry.get("response_model"), str):
                inv.response_model = entry["response_model"]
            response = entry.get("response")
            rid = getattr(response, "id", None)
            if isinstance(rid, str):
                inv.response_id = rid
            reason = getattr(response, "finish_reason", None)
            if isinstance(reason, str):
                inv.finish_reasons = [reason]
        if inv.input_messages is None or not isinstance(result, list):
            return
        outputs: list[m.OutputMessage] = []
        for item in result:
            parts: list[m.Part] = []
            if isinstance(item, str):
                parts.append(m.text(item))
            elif isinstance(item, dict):
                if isinstance(item.get("reasoning_content"), str):
                    parts.append(m.reasoning(item["reasoning_content"]))
                if isinstance(item.get("text"), str):
                    parts.append(m.text(item["text"]))
                for call in item.get("tool_calls") or ():
                    fn = om.field(call, "function")
                    parts.append(
                        m.tool_call(
                            om.field(fn, "name", ""),
                            om.parse_arguments(om.field(fn, "arguments")),
                            om.field(call, "id"),
                        )
                    )
            reason = inv.finish_reasons[0] if inv.finish_reasons else None
            outputs.append(
                m.output_message("assistant", parts, om.FINISH_REASON_MAP.get(reason, reason) if reason else None)
            )
        inv.output_messages = list(outputs)

    def lm_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            started = self._lm_start(instance, args, kwargs)
        except Exception as exc:
            log_once("starting a DSPy LM span", exc)
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        inv, span, last = started
        tel = self.tel
        result = tel.run(span, lambda exc: tel.finish(inv, span, exc), wrapped, args, kwargs)
        try:
            self._lm_finish(instance, inv, last, result)
        except Exception as exc:
            log_once("reading a DSPy LM result", exc)
        tel.finish(inv, span)
        return result

    async def lm_acall(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            started = self._lm_start(instance, args, kwargs)
        except Exception as exc:
            log_once("starting a DSPy LM span", exc)
            started = None
        if started is None:
            return await wrapped(*args, **kwargs)
        inv, span, last = started
        tel = self.tel
        result = await tel.arun(span, lambda exc: tel.finish(inv, span, exc), wrapped, args, kwargs)
        try:
            self._lm_finish(instance, inv, last, result)
        except Exception as exc:
            log_once("reading a DSPy LM result", exc)
        tel.finish(inv, span)
        return result


_PATCHES: tuple[tuple[str, str, str], ...] = (
    ("dspy.primitives.module", "Module.__call__", "module_call"),
    ("dspy.primitives.module", "Module.acall", "module_acall"),
    ("dspy.clients.base_lm", "BaseLM.__call__", "lm_call"),
    ("dspy.clients.base_lm", "BaseLM.acall", "lm_acall"),
    ("dspy.retrievers.retrieve", "Retrieve.__call__", "retrieve_call"),
    ("dspy.adapters.types.tool", "Tool.__call__", "tool_call"),
    ("dspy.adapters.types.tool", "Tool.acall", "tool_acall"),
)


class DSPyInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces DSPy programs (see the module docstring).

    ``instrument(tracer_provider=, meter_provider=, logger_provider=, capture=, content_max_length=,
    completion_hook=)``; the
    environment is read here, once.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        settings = load_settings(capture=kwargs.get("capture"), content_max_length=kwargs.get("content_max_length"))
        tracer_provider = kwargs.get("tracer_provider")
        tel = LLMTelemetry(
            settings,
            scope="spyglass.instrumentation.dspy",
            tracer_provider=tracer_provider,
            meter_provider=kwargs.get("meter_provider"),
            logger_provider=kwargs.get("logger_provider"),
            completion_hook=kwargs.get("completion_hook"),
        )
        tracer = trace.get_tracer(
            "spyglass.instrumentation.dspy", schema_url=SCHEMA_URL, tracer_provider=tracer_provider
        )
        install_context_processor(tracer_provider or trace.get_tracer_provider())
        wrappers = _Wrappers(tracer, tel)
        self._patched: list[tuple[Any, str, str]] = []
        self._generation = generation = getattr(self, "_generation", 0) + 1

        def patch(_: Any) -> None:
            if self._generation != generation:  # instrumented again, or uninstrumented, since registering
                return
            for module_name, target, method in _PATCHES:
                try:
                    module = importlib.import_module(module_name)
                    wrapt.wrap_function_wrapper(module, target, getattr(wrappers, method))
                except (ImportError, AttributeError) as exc:  # a DSPy version without this seam
                    logger.debug("spyglass: cannot patch %s.%s: %s", module_name, target, exc)
                    continue
                cls_name, _, attr = target.partition(".")
                self._patched.append((getattr(module, cls_name), attr, target))

        # Patch when the application imports dspy (at once if it already has): importing DSPy costs seconds,
        # which an app that never uses it should not pay at startup under opentelemetry-instrument.
        wrapt.register_post_import_hook(patch, "dspy")

    def _uninstrument(self, **kwargs: Any) -> None:
        self._generation = getattr(self, "_generation", 0) + 1
        for cls, attr, _ in getattr(self, "_patched", []):
            unwrap(cls, attr)
        self._patched = []
