"""The GenAI message model: typed parts and messages with fast JSON serialization.

The shapes are those of ``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions``
and ``gen_ai.tool.definitions`` at ``SEMCONV_GENAI_REF``. They are :class:`~typing.TypedDict` s, so
building one costs a dict literal and :func:`dumps` hands them straight to the C JSON encoder: this code
runs on every LM call.

Usage::

    from spyglass.semconv import messages as m

    msgs = [m.message("user", [m.text("Weather in Paris?")])]
    span.set_attribute(gen_ai.INPUT_MESSAGES, m.dumps(msgs))
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any, Literal, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired


class TextPart(TypedDict):
    type: Literal["text"]
    content: str


class ToolCallPart(TypedDict):
    type: Literal["tool_call"]
    id: str | None
    name: str
    arguments: NotRequired[Any]


class ToolCallResponsePart(TypedDict):
    type: Literal["tool_call_response"]
    id: str | None
    response: Any


class ServerToolCallPart(TypedDict):
    type: Literal["server_tool_call"]
    id: str | None
    name: str
    server_tool_call: dict[str, Any]
    """``{"type": <tool type>, ...}``."""


class ServerToolCallResponsePart(TypedDict):
    type: Literal["server_tool_call_response"]
    id: str | None
    server_tool_call_response: dict[str, Any]
    """``{"type": <tool type>, ...}``."""


class BlobPart(TypedDict):
    type: Literal["blob"]
    modality: str
    mime_type: str | None
    content: str
    """base64."""
    byte_size: NotRequired[int]


class FilePart(TypedDict):
    type: Literal["file"]
    modality: str
    mime_type: str | None
    file_id: str


class UriPart(TypedDict):
    type: Literal["uri"]
    modality: str
    mime_type: str | None
    uri: str


class ReasoningPart(TypedDict):
    type: Literal["reasoning"]
    content: str


Part = (
    TextPart
    | ToolCallPart
    | ToolCallResponsePart
    | ServerToolCallPart
    | ServerToolCallResponsePart
    | BlobPart
    | FilePart
    | UriPart
    | ReasoningPart
)


class ChatMessage(TypedDict):
    role: str
    parts: list[Part]
    name: NotRequired[str | None]


InputMessage = ChatMessage


class OutputMessage(TypedDict):
    role: str
    parts: list[Part]
    name: NotRequired[str | None]
    finish_reason: NotRequired[str | None]
    """Deprecated in the spec in favour of ``gen_ai.response.finish_reasons``; still written because
    readers (Phoenix, Langfuse) use it."""


class ToolDefinition(TypedDict):
    type: str
    name: str
    description: NotRequired[str | None]
    parameters: NotRequired[Any]


# --- constructors (plain functions: a dict literal each) --------------------------------------


def text(content: str) -> TextPart:
    return {"type": "text", "content": content}


def reasoning(content: str) -> ReasoningPart:
    return {"type": "reasoning", "content": content}


def tool_call(name: str, arguments: Any = None, id: str | None = None) -> ToolCallPart:
    return {"type": "tool_call", "id": id, "name": name, "arguments": arguments}


def tool_call_response(response: Any, id: str | None = None) -> ToolCallResponsePart:
    return {"type": "tool_call_response", "id": id, "response": response}


def server_tool_call(
    name: str,
    details: dict[str, Any],
    id: str | None = None,
) -> ServerToolCallPart:
    return {"type": "server_tool_call", "id": id, "name": name, "server_tool_call": details}


def server_tool_call_response(
    details: dict[str, Any],
    id: str | None = None,
) -> ServerToolCallResponsePart:
    return {"type": "server_tool_call_response", "id": id, "server_tool_call_response": details}


def blob(content: str | bytes, modality: str, mime_type: str | None = None) -> BlobPart:
    """A base64 blob; ``bytes`` are encoded here. ``byte_size`` is the decoded size."""
    if isinstance(content, bytes):
        size = len(content)
        content = base64.b64encode(content).decode("ascii")
    else:
        size = base64_decoded_size(content)
    return {"type": "blob", "modality": modality, "mime_type": mime_type, "content": content, "byte_size": size}


def file(file_id: str, modality: str, mime_type: str | None = None) -> FilePart:
    return {"type": "file", "modality": modality, "mime_type": mime_type, "file_id": file_id}


def uri(uri: str, modality: str, mime_type: str | None = None) -> UriPart:
    return {"type": "uri", "modality": modality, "mime_type": mime_type, "uri": uri}


def message(role: str, parts: list[Part], name: str | None = None) -> ChatMessage:
    msg: ChatMessage = {"role": role, "parts": parts}
    if name is not None:
        msg["name"] = name
    return msg


def output_message(role: str, parts: list[Part], finish_reason: str | None = None) -> OutputMessage:
    msg: OutputMessage = {"role": role, "parts": parts}
    if finish_reason is not None:
        msg["finish_reason"] = finish_reason
    return msg


def function_tool(name: str, description: str | None = None, parameters: Any = None) -> ToolDefinition:
    tool: ToolDefinition = {"type": "function", "name": name}
    if description is not None:
        tool["description"] = description
    if parameters is not None:
        tool["parameters"] = parameters
    return tool


def base64_decoded_size(b64: str) -> int:
    """Decoded byte size of a base64 string, without decoding it."""
    n = len(b64)
    if n == 0:
        return 0
    pad = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return (n * 3) // 4 - pad


# --- serialization ------------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    dump = getattr(obj, "model_dump", None)  # pydantic models (SDK types)
    if callable(dump):
        return dump(mode="json", exclude_unset=True)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(value: Any) -> str:
    """Compact JSON (``","``/``":"`` separators, UTF-8 text), as the official instrumentation writes it.

    ``bytes`` become base64, pydantic models their JSON dump, anything else unknown its ``str``.
    """
    return _ENCODER.encode(value)


def loads(value: str | bytes) -> Any:
    return json.loads(value)
