"""Completion hooks: the official util-genai mechanism for sending LM-call content somewhere else.

Contract
--------
A completion hook is any object with the util-genai method::

    hook.on_completion(*, inputs, outputs, system_instruction, tool_definitions=None, span=None, log_record=None)

It is chosen once, at ``instrument()`` time: the ``completion_hook=`` argument wins; otherwise
``OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK`` names an entry point in the group
``opentelemetry_genai_completion_hook`` whose object is a zero-argument factory returning the hook (the
util-genai convention, so ``upload`` from ``opentelemetry-util-genai`` and Spyglass's ``spyglass_upload``
load the same way). A name that does not resolve, or a factory that fails, is logged and means "no hook".
Every instrumentor of the process shares the hook loaded for one name (one upload pool, not four).

:class:`HookCaller` calls the hook once per LM call, from
:meth:`~spyglass.instrumentation._telemetry.LLMTelemetry.finish`, before the span ends and before the
content attributes and the ``gen_ai.client.inference.operation.details`` event are recorded, whatever the
sampling decision and the capture mode. Its errors are logged once and never raised.

Messages reach the hook in one of two shapes:

- a hook whose class sets ``spyglass_message_dicts = True`` (Spyglass's own upload hook) gets Spyglass's
  message lists as they are: plain dicts in the semconv shapes (:mod:`spyglass.semconv.messages`), not
  truncated, binary payloads already replaced by placeholders. It may change them in place; the span then
  records what it left.
- any other hook gets util-genai's dataclasses (``InputMessage``, ``OutputMessage``, ``TextPart``, ...),
  converted from the dicts, so third-party hooks written for util-genai work unchanged (Spyglass's own part
  markers such as ``spyglass.truncated`` are not carried over). Without ``opentelemetry-util-genai``
  installed they get the dicts.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from opentelemetry.trace import Span

from spyglass.semconv import environment as env

_log = logging.getLogger("spyglass.instrumentation")

HOOK_GROUP = "opentelemetry_genai_completion_hook"
"""The entry-point group util-genai defines for completion hooks."""


@runtime_checkable
class CompletionHook(Protocol):
    """util-genai's hook protocol (``opentelemetry.util.genai.completion_hook.CompletionHook``)."""

    def on_completion(
        self,
        *,
        inputs: list[Any],
        outputs: list[Any],
        system_instruction: list[Any],
        tool_definitions: list[Any] | None = None,
        span: Span | None = None,
        log_record: Any = None,
    ) -> None: ...


_loaded: dict[str, CompletionHook | None] = {}
_load_lock = threading.Lock()


def load_hook(name: str) -> CompletionHook | None:
    """The hook registered under ``name`` in :data:`HOOK_GROUP`, loaded once per process; ``None`` if unusable."""
    with _load_lock:
        if name in _loaded:
            return _loaded[name]
        hook = _load(name)
        _loaded[name] = hook
        return hook


def _load(name: str) -> CompletionHook | None:
    from importlib.metadata import entry_points

    names: list[str] = []
    for ep in entry_points(group=HOOK_GROUP):
        names.append(ep.name)
        if ep.name != name:
            continue
        try:
            hook = ep.load()()
        except Exception:
            _log.exception("completion hook %r could not be set up; no hook is used", name)
            return None
        if hook is None:  # the factory found itself unconfigured (and said so)
            return None
        if not isinstance(hook, CompletionHook):
            _log.warning("completion hook %r is not a CompletionHook (no on_completion); no hook is used", name)
            return None
        # util-genai's loader returns a no-op when its upload hook has no base path: treat it as "no hook", so
        # content is not gathered for nothing.
        if type(hook).__name__ == "_NoOpCompletionHook":
            return None
        return hook
    _log.warning(
        "%s=%r is not a registered completion hook (%s); no hook is used",
        env.OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK,
        name,
        ", ".join(sorted(names)) or "none installed",
    )
    return None


def resolve_hook(argument: Any, name: str | None) -> HookCaller | None:
    """The hook for one instrumentor: the ``completion_hook=`` argument, else the configured entry point."""
    hook = argument if argument is not None else (load_hook(name) if name else None)
    if hook is None:
        return None
    if not isinstance(hook, CompletionHook):
        raise ValueError(f"completion_hook must have an on_completion(...) method, got {type(hook).__name__}")
    return HookCaller(hook)


class HookCaller:
    """Calls one hook with an LM call's content, in the shape it takes; never raises."""

    __slots__ = ("_convert", "hook")

    def __init__(self, hook: CompletionHook) -> None:
        self.hook = hook
        self._convert: Callable[[str, list[Any]], list[Any]] | None = None
        if not getattr(hook, "spyglass_message_dicts", False):
            self._convert = _util_genai_converter()

    def __call__(
        self,
        inputs: list[Any] | None,
        outputs: list[Any] | None,
        system_instructions: list[Any] | None,
        tool_definitions: list[Any] | None,
        span: Span,
        log_record: Any,
    ) -> None:
        try:
            convert = self._convert
            lists = (inputs or [], outputs or [], system_instructions or [], tool_definitions or [])
            if convert is not None:
                lists = (
                    convert("input", lists[0]),
                    convert("output", lists[1]),
                    convert("parts", lists[2]),
                    convert("tools", lists[3]),
                )
            self.hook.on_completion(
                inputs=lists[0],
                outputs=lists[1],
                system_instruction=lists[2],
                tool_definitions=lists[3] or None,
                span=span,
                log_record=log_record,
            )
        except Exception as exc:
            from ._telemetry import log_once

            log_once(f"the completion hook {type(self.hook).__name__}", exc)


# --- util-genai dataclasses ------------------------------------------------------------------------


def _util_genai_converter() -> Callable[[str, list[Any]], list[Any]] | None:
    """A converter from Spyglass's message dicts to util-genai's dataclasses, or ``None`` without util-genai."""
    try:
        from opentelemetry.util.genai import types as t
    except Exception:
        return None

    def part(p: Any) -> Any:
        if not isinstance(p, Mapping):
            return t.TextPart(content=str(p))
        kind = p.get("type")
        if kind == "text":
            return t.TextPart(content=p.get("content") or "")
        if kind == "reasoning":
            return t.ReasoningPart(content=p.get("content") or "")
        if kind == "tool_call":
            return t.ToolCallRequestPart(arguments=p.get("arguments"), name=p.get("name") or "", id=p.get("id"))
        if kind == "tool_call_response":
            return t.ToolCallResponsePart(response=p.get("response"), id=p.get("id"))
        if kind == "server_tool_call":
            return t.ServerToolCallPart(
                name=p.get("name") or "", server_tool_call=p.get("server_tool_call"), id=p.get("id")
            )
        if kind == "server_tool_call_response":
            return t.ServerToolCallResponsePart(
                server_tool_call_response=p.get("server_tool_call_response"), id=p.get("id")
            )
        if kind == "blob":
            return t.BlobPart(mime_type=p.get("mime_type"), modality=p.get("modality") or "", content=_bytes(p))
        if kind == "uri":
            return t.UriPart(mime_type=p.get("mime_type"), modality=p.get("modality") or "", uri=p.get("uri") or "")
        if kind == "file":
            return t.FilePart(
                mime_type=p.get("mime_type"), modality=p.get("modality") or "", file_id=p.get("file_id") or ""
            )
        return t.GenericPart(type=str(kind))

    def tool(d: Any) -> Any:
        if isinstance(d, Mapping) and d.get("type", "function") == "function":
            return t.FunctionToolDefinition(
                name=d.get("name") or "", description=d.get("description"), parameters=d.get("parameters")
            )
        return t.GenericToolDefinition(
            name=str(d.get("name") if isinstance(d, Mapping) else d), type=str(d.get("type"))
        )

    def convert(kind: str, items: list[Any]) -> list[Any]:
        if kind == "parts":
            return [part(p) for p in items]
        if kind == "tools":
            return [tool(d) for d in items]
        out: list[Any] = []
        for msg in items:
            parts = [part(p) for p in msg.get("parts") or ()]
            if kind == "output":
                out.append(
                    t.OutputMessage(
                        role=msg.get("role") or "assistant", parts=parts, finish_reason=msg.get("finish_reason")
                    )
                )
            else:
                out.append(t.InputMessage(role=msg.get("role") or "user", parts=parts, name=msg.get("name")))
        return out

    return convert


def _bytes(p: Mapping[str, Any]) -> bytes:
    # Spyglass never keeps a binary payload (content "" plus a placeholder marker); decode anything else.
    content = p.get("content")
    if isinstance(content, (bytes, bytearray)):
        return bytes(content)
    if isinstance(content, str) and content:
        try:
            return base64.b64decode(content, validate=True)
        except ValueError:
            return content.encode()
    return b""


__all__ = ["HOOK_GROUP", "CompletionHook", "HookCaller", "load_hook", "resolve_hook"]
