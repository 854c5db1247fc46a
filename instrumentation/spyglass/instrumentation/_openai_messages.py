"""OpenAI request/response shapes -> GenAI message model (Chat Completions, Completions, Responses).

Pure functions over plain dicts or the SDK's pydantic models (both are read through :func:`field`). Inline
base64 media never reaches a span: it becomes an omitted ``blob`` part (``_content.blob_part``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from spyglass.semconv import messages as m
from spyglass.semconv.values import FinishReason

from ._content import blob_part, data_url_part

_MISSING: Any = object()
_PYDANTIC: dict[type, bool] = {}


def _extra_field(extra: Any, name: str) -> Any:
    return extra.get(name) if extra else None


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for dicts, ``obj.name`` for models; ``default`` when missing or None.

    Pydantic models are read from their ``__dict__`` and extras: ``getattr`` of a field a model does not
    have raises inside pydantic, which costs microseconds, and this runs on every call.
    """
    if obj is None:
        return default
    if isinstance(obj, dict):
        v = obj.get(name)
    else:
        cls = type(obj)
        pydantic_model = _PYDANTIC.get(cls)
        if pydantic_model is None:
            pydantic_model = _PYDANTIC[cls] = hasattr(cls, "__pydantic_fields__")
        if pydantic_model:
            v = obj.__dict__.get(name, _MISSING)
            if v is _MISSING:
                v = _extra_field(obj.__pydantic_extra__, name)
        else:  # a plain object or an attribute view: properties, slots, __getattr__
            v = getattr(obj, name, None)
    return default if v is None else v


def reader(obj: Any) -> Callable[[str], Any]:
    """``get(name)``, the same as ``field(obj, name)`` with ``None`` for the default, for several fields of one
    object: a dict's or a pydantic model's own ``get`` (its fields, over its extras, as :func:`field` reads
    them), so each read is one dict lookup."""
    if isinstance(obj, dict):
        return obj.get
    cls = type(obj)
    pydantic_model = _PYDANTIC.get(cls)
    if pydantic_model is None:
        pydantic_model = _PYDANTIC[cls] = hasattr(cls, "__pydantic_fields__")
    if pydantic_model:
        extra = obj.__pydantic_extra__
        return {**extra, **obj.__dict__}.get if extra else obj.__dict__.get
    return lambda name: field(obj, name)


def parse_arguments(arguments: Any) -> Any:
    """Tool-call arguments as an object when they are a JSON string, else unchanged."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


FINISH_REASON_MAP = {
    "stop": FinishReason.STOP.value,
    "length": FinishReason.LENGTH.value,
    "content_filter": FinishReason.CONTENT_FILTER.value,
    "tool_calls": FinishReason.TOOL_CALL.value,
    "function_call": FinishReason.TOOL_CALL.value,
}


def _text_content(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    return None


def content_parts(content: Any) -> list[m.Part]:
    """Chat Completions message ``content`` (str or list of content parts) -> parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [m.text(content)]
    parts: list[m.Part] = []
    for item in content if isinstance(content, Iterable) else [content]:
        if isinstance(item, str):
            parts.append(m.text(item))
            continue
        kind = field(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(m.text(field(item, "text", "")))
        elif kind == "refusal":
            parts.append(m.text(field(item, "refusal", "")))
        elif kind == "image_url":
            url = field(field(item, "image_url"), "url", "")
            parts.append(data_url_part(url, "image"))
        elif kind == "input_image":
            url = field(item, "image_url")
            if url:
                parts.append(data_url_part(url, "image"))
            elif field(item, "file_id"):
                parts.append(m.file(field(item, "file_id"), "image"))
        elif kind == "input_audio":
            audio = field(item, "input_audio")
            fmt = field(audio, "format")
            parts.append(blob_part(field(audio, "data", ""), "audio", f"audio/{fmt}" if fmt else None))
        elif kind in ("file", "input_file"):
            f = field(item, "file", item)
            if field(f, "file_id"):
                parts.append(m.file(field(f, "file_id"), "document"))
            elif field(f, "file_data"):
                parts.append(data_url_part(field(f, "file_data"), "document"))
            elif field(f, "file_url"):
                parts.append(m.uri(field(f, "file_url"), "document"))
        else:
            parts.append({"type": str(kind or "unknown")})  # type: ignore[arg-type]
    return parts


def chat_input_messages(messages: Any) -> list[m.ChatMessage]:
    out: list[m.ChatMessage] = []
    for msg in messages or ():
        if isinstance(msg, dict) and len(msg) == 2 and isinstance(msg.get("content"), str) and "role" in msg:
            # The common case, a plain {"role", "content": str} dict: no generic field lookups.
            role = msg["role"]
            if role not in ("tool", "function"):
                out.append({"role": role, "parts": [{"type": "text", "content": msg["content"]}]})
                continue
        role = field(msg, "role", "user")
        if role in ("tool", "function"):
            out.append(
                m.message(
                    "tool",
                    [m.tool_call_response(_response_value(field(msg, "content")), field(msg, "tool_call_id"))],
                )
            )
            continue
        parts = content_parts(field(msg, "content"))
        if field(msg, "refusal"):
            parts.append(m.text(field(msg, "refusal")))
        for call in field(msg, "tool_calls", ()) or ():
            fn = field(call, "function")
            parts.append(m.tool_call(field(fn, "name", ""), parse_arguments(field(fn, "arguments")), field(call, "id")))
        fc = field(msg, "function_call")
        if fc:
            parts.append(m.tool_call(field(fc, "name", ""), parse_arguments(field(fc, "arguments")), None))
        out.append(m.message(str(role), parts, field(msg, "name")))
    return out


def _response_value(content: Any) -> Any:
    text = _text_content(content)
    if text is not None:
        return text
    if isinstance(content, list):
        texts = [field(p, "text") for p in content if field(p, "type") == "text"]
        if len(texts) == len(content):
            return "".join(t or "" for t in texts)
    return content


def tool_definitions(tools: Any) -> list[m.ToolDefinition]:
    out: list[m.ToolDefinition] = []
    for tool in tools or ():
        kind = field(tool, "type", "function")
        fn = field(tool, "function")
        if fn is not None:  # chat completions: {"type": "function", "function": {...}}
            out.append(m.function_tool(field(fn, "name", ""), field(fn, "description"), field(fn, "parameters")))
        elif kind == "function":  # responses: flat
            out.append(m.function_tool(field(tool, "name", ""), field(tool, "description"), field(tool, "parameters")))
        else:
            out.append({"type": str(kind), "name": str(field(tool, "name", kind))})
    return out


def chat_output_messages(choices: Any) -> list[m.OutputMessage]:
    out: list[m.OutputMessage] = []
    for choice in choices or ():
        msg = field(choice, "message")
        get = reader(msg) if msg is not None else absent
        parts: list[m.Part] = []
        reasoning = get("reasoning_content")
        if reasoning:
            parts.append(m.reasoning(reasoning))
        content = get("content")
        if content:
            parts.append(m.text(content))
        refusal = get("refusal")
        if refusal:
            parts.append(m.text(refusal))
        for call in get("tool_calls") or ():
            fn = field(call, "function")
            parts.append(m.tool_call(field(fn, "name", ""), parse_arguments(field(fn, "arguments")), field(call, "id")))
        fc = get("function_call")
        if fc:
            parts.append(m.tool_call(field(fc, "name", ""), parse_arguments(field(fc, "arguments")), None))
        reason = field(choice, "finish_reason")
        out.append(
            m.output_message(
                or_default(get("role"), "assistant"),
                parts,
                FINISH_REASON_MAP.get(reason, reason) if reason else FinishReason.ERROR.value,
            )
        )
    return out


def or_default(value: Any, default: Any) -> Any:
    """:func:`field`'s default for a :func:`reader`'s value: only instead of ``None`` (an empty string stays)."""
    return default if value is None else value


def absent(name: str) -> Any:
    """The :func:`reader` of ``None``: every field missing."""
    return None


def completion_output_messages(choices: Any) -> list[m.OutputMessage]:
    out: list[m.OutputMessage] = []
    for choice in choices or ():
        reason = field(choice, "finish_reason")
        out.append(
            m.output_message(
                "assistant",
                [m.text(field(choice, "text", ""))],
                FINISH_REASON_MAP.get(reason, reason) if reason else FinishReason.ERROR.value,
            )
        )
    return out


def completion_input_messages(prompt: Any) -> list[m.ChatMessage]:
    if isinstance(prompt, str):
        return [m.message("user", [m.text(prompt)])]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return [m.message("user", [m.text(p)]) for p in prompt]
    return [m.message("user", [m.text(json.dumps(prompt))])]


# --- Responses API ---------------------------------------------------------------------------------


def responses_input_messages(value: Any) -> list[m.ChatMessage]:
    if isinstance(value, str):
        return [m.message("user", [m.text(value)])]
    out: list[m.ChatMessage] = []
    for item in value or ():
        kind = field(item, "type", "message")
        if kind == "message" or (kind is None and field(item, "role")):
            role = field(item, "role", "user")
            out.append(m.message(str(role), content_parts(field(item, "content"))))
        elif kind == "function_call":
            out.append(
                m.message(
                    "assistant",
                    [
                        m.tool_call(
                            field(item, "name", ""), parse_arguments(field(item, "arguments")), field(item, "call_id")
                        )
                    ],
                )
            )
        elif kind == "function_call_output":
            out.append(m.message("tool", [m.tool_call_response(field(item, "output"), field(item, "call_id"))]))
        elif kind == "reasoning":
            texts = [field(s, "text", "") for s in field(item, "summary", ()) or ()]
            if texts:
                out.append(m.message("assistant", [m.reasoning("\n".join(texts))]))
        elif kind == "item_reference":
            continue
        else:
            out.append(m.message("assistant", [m.server_tool_call(str(kind), {"type": str(kind)}, field(item, "id"))]))
    return out


def responses_output(response: Any) -> tuple[list[m.OutputMessage], str]:
    """Output messages (one assistant message) and the finish reason of a Response."""
    parts: list[m.Part] = []
    has_tool_call = False
    for item in field(response, "output", ()) or ():
        kind = field(item, "type")
        if kind == "message":
            for c in field(item, "content", ()) or ():
                ck = field(c, "type")
                if ck == "output_text":
                    parts.append(m.text(field(c, "text", "")))
                elif ck == "refusal":
                    parts.append(m.text(field(c, "refusal", "")))
        elif kind == "function_call":
            has_tool_call = True
            parts.append(
                m.tool_call(field(item, "name", ""), parse_arguments(field(item, "arguments")), field(item, "call_id"))
            )
        elif kind == "reasoning":
            texts = [field(s, "text", "") for s in field(item, "summary", ()) or ()]
            texts += [field(s, "text", "") for s in field(item, "content", ()) or ()]
            if texts:
                parts.append(m.reasoning("\n".join(texts)))
        elif kind:
            details: dict[str, Any] = {"type": str(kind)}
            action = field(item, "action")
            if action is not None:
                details["action"] = action
            parts.append(m.server_tool_call(str(kind), details, field(item, "id")))
    reason = responses_finish_reason(response, has_tool_call)
    return [m.output_message("assistant", parts, FINISH_REASON_MAP.get(reason, reason))], reason


def responses_finish_reason(response: Any, has_tool_call: bool) -> str:
    status = field(response, "status")
    if status == "incomplete":
        why = field(field(response, "incomplete_details"), "reason")
        return (
            FinishReason.LENGTH.value
            if why == "max_output_tokens"
            else FinishReason.CONTENT_FILTER.value
            if why == "content_filter"
            else str(why or "incomplete")
        )
    if status == "failed":
        return FinishReason.ERROR.value
    if has_tool_call:
        return "tool_calls"  # the Chat Completions spelling, as the official instrumentation reports it
    return FinishReason.STOP.value
