"""Read one span into what the detail page shows: a conversation, not a bag of keys.

:func:`conversation` takes the messages the store's normaliser read from whichever dialect the sender
used (semconv shape, see :mod:`spyglass.store._records`) and turns them into display parts; it collects
parameters, tool definitions, tokens, cost and stream facts from the attributes. Long texts are cut at
:data:`INLINE_LIMIT` characters and flagged, so a 2 MB prompt never reaches the browser until someone asks
for it: the page then fetches :func:`full_text` of that one part. A part of an unknown shape is shown as
its JSON: one odd part never hides the rest.
"""

from __future__ import annotations

import json
from typing import Any

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.store._errors import BadRequest, NotFound

INLINE_LIMIT = 4000
"""Characters of one text shown inline; the rest loads on demand."""

_PARAMS: tuple[tuple[str, str], ...] = (
    ("temperature", gen_ai.REQUEST_TEMPERATURE),
    ("max tokens", gen_ai.REQUEST_MAX_TOKENS),
    ("top p", gen_ai.REQUEST_TOP_P),
    ("top k", gen_ai.REQUEST_TOP_K),
    ("frequency penalty", gen_ai.REQUEST_FREQUENCY_PENALTY),
    ("presence penalty", gen_ai.REQUEST_PRESENCE_PENALTY),
    ("stop", gen_ai.REQUEST_STOP_SEQUENCES),
    ("seed", gen_ai.REQUEST_SEED),
    ("choices", gen_ai.REQUEST_CHOICE_COUNT),
    ("reasoning", gen_ai.REQUEST_REASONING_LEVEL),
    ("output type", gen_ai.OUTPUT_TYPE),
    ("service tier", gen_ai.OPENAI_REQUEST_SERVICE_TIER),
    ("api", gen_ai.OPENAI_API_TYPE),
    ("server", gen_ai.SERVER_ADDRESS),
)

_TOKENS: tuple[tuple[str, str, str], ...] = (
    ("input", "Input", gen_ai.USAGE_INPUT_TOKENS),
    ("output", "Output", gen_ai.USAGE_OUTPUT_TOKENS),
    ("cache_read", "Cache read", gen_ai.USAGE_CACHE_READ_INPUT_TOKENS),
    ("cache_write", "Cache created", gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS),
    ("reasoning", "Reasoning", gen_ai.USAGE_REASONING_OUTPUT_TOKENS),
)

TOKEN_KEYS = tuple(key for key, _label, _name in _TOKENS)
"""``input``, ``output``, ``cache_read``, ``cache_write``, ``reasoning``: the store's ``<key>_tokens`` columns."""

_COSTS: tuple[tuple[str, str, str], ...] = (
    ("input", "Input", ext.COST_INPUT),
    ("output", "Output", ext.COST_OUTPUT),
    ("cache_read", "Cache read", ext.COST_CACHE_READ),
    ("cache_write", "Cache write", ext.COST_CACHE_WRITE),
    ("reasoning", "Reasoning", ext.COST_REASONING),
)

_STEP_FIELDS: tuple[tuple[str, str], ...] = (
    ("Input", ext.STEP_INPUT),
    ("Output", ext.STEP_OUTPUT),
    ("Tool arguments", gen_ai.TOOL_CALL_ARGUMENTS),
    ("Tool result", gen_ai.TOOL_CALL_RESULT),
    ("Query", gen_ai.RETRIEVAL_QUERY_TEXT),
    ("Documents", gen_ai.RETRIEVAL_DOCUMENTS),
)


def parse_json(value: Any) -> Any:
    """A JSON attribute's value: parsed when it is a JSON string, else as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def pretty(value: Any) -> str:
    """Indented JSON for structured values; strings stay as they are."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _part_text(raw: Any) -> tuple[str, dict[str, Any]]:
    """The kind, the text and the labels of one semconv part."""
    if not isinstance(raw, dict):
        return pretty(raw), {"kind": "text"}
    kind = raw.get("type")
    if kind in ("text", "reasoning", "unparsed") and isinstance(raw.get("content"), str):
        return raw["content"], {
            "kind": "reasoning" if kind == "reasoning" else "text",
            "sender_truncated": bool(raw.get(ext.PART_TRUNCATED)),
        }
    if kind == "tool_call":
        return pretty(parse_json(raw.get("arguments"))), {
            "kind": "tool_call",
            "name": str(raw.get("name") or "?"),
            "call_id": raw.get("id"),
        }
    if kind == "tool_call_response":
        return pretty(parse_json(raw.get("response"))), {"kind": "tool_response", "call_id": raw.get("id")}
    if kind == "server_tool_call":
        return pretty(raw.get("server_tool_call")), {
            "kind": "tool_call",
            "name": str(raw.get("name") or "server tool"),
            "call_id": raw.get("id"),
        }
    if kind == "server_tool_call_response":
        return pretty(raw.get("server_tool_call_response")), {"kind": "tool_response", "call_id": raw.get("id")}
    if kind in ("blob", "file", "uri"):
        where = raw.get("uri") or raw.get("file_id") or f"{raw.get('byte_size', '?')} bytes"
        return f"{raw.get('modality', 'media')} · {raw.get('mime_type') or kind} · {where}", {"kind": "media"}
    return pretty(raw), {"kind": "other"}


def _display(text: str, path: str, labels: dict[str, Any], limit: int | None) -> dict[str, Any]:
    cut = limit is not None and len(text) > limit
    return {"text": text[:limit] if cut else text, "cut": cut, "size": len(text), "path": path, **labels}


def _messages(messages: list[Any], prefix: str, limit: int | None) -> list[dict[str, Any]]:
    out = []
    for i, msg in enumerate(messages if isinstance(messages, list) else [messages]):
        if not isinstance(msg, dict):
            msg = {"role": "unknown", "parts": [msg]}
        parts = msg.get("parts")
        if not isinstance(parts, list):
            parts = [] if parts is None else [parts]
        shown = []
        for j, raw in enumerate(parts):
            text, labels = _part_text(raw)
            shown.append(_display(text, f"{prefix}.{i}.{j}", labels, limit))
        out.append(
            {
                "role": str(msg.get("role") or "unknown"),
                "name": msg.get("name"),
                "parts": shown,
                "finish_reason": msg.get("finish_reason"),
                "in_system_block": False,
            }
        )
    return out


def _tools(value: Any) -> list[dict[str, Any]]:
    parsed = parse_json(value)
    if parsed is None:
        return []
    tools = []
    for tool in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(tool, dict):
            tools.append({"name": "?", "type": "", "description": "", "parameters": pretty(tool)})
            continue
        tools.append(
            {
                "name": str(tool.get("name") or "?"),
                "type": str(tool.get("type") or ""),
                "description": str(tool.get("description") or ""),
                "parameters": pretty(tool.get("parameters")) if tool.get("parameters") is not None else "",
            }
        )
    return tools


def _plain(messages: list[dict[str, Any]]) -> str:
    """What the copy buttons copy: the texts and tool calls of the messages, in order."""
    return "\n\n".join(p["text"] for m in messages for p in m["parts"] if p["kind"] in ("text", "tool_call"))


def conversation(
    attributes: dict[str, Any],
    input_messages: list[Any],
    output_messages: list[Any],
    *,
    limit: int | None = INLINE_LIMIT,
    stored_cost: float | None = None,
    stored_cost_source: str | None = None,
    stored_tokens: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the LLM panel of one span shows.

    ``stored_cost`` is the store's price for a span that arrived without one (``cost`` column);
    ``stored_tokens`` the store's token counts by :data:`_TOKENS` key, read from whichever dialect the
    sender used (they win over the current ``gen_ai.usage.*`` attributes, which they include).
    """
    counts = {key: (stored_tokens or {}).get(key, attributes.get(name)) for key, _label, name in _TOKENS}
    inputs = _messages(input_messages, "input", limit)
    outputs = _messages(output_messages, "output", limit)
    system: list[dict[str, Any]] = []
    # The system prompt (separate instructions or a system message) goes in the collapsible block.
    for message in inputs:
        if message["role"] in ("system", "developer") and not system:
            system = message["parts"]
            message["in_system_block"] = True
    finish = attributes.get(gen_ai.RESPONSE_FINISH_REASONS)
    if isinstance(finish, str):
        finish = [finish]
    ttft = attributes.get(gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK)
    return {
        "operation": attributes.get(gen_ai.OPERATION_NAME),
        "provider": attributes.get(gen_ai.PROVIDER_NAME) or attributes.get(gen_ai.DEPRECATED_SYSTEM),
        "request_model": attributes.get(gen_ai.REQUEST_MODEL),
        "response_model": attributes.get(gen_ai.RESPONSE_MODEL),
        "response_id": attributes.get(gen_ai.RESPONSE_ID),
        "params": [
            {
                "label": label,
                "value": pretty(attributes[name]) if isinstance(attributes[name], (list, dict)) else attributes[name],
            }
            for label, name in _PARAMS
            if attributes.get(name) is not None
        ],
        "system": system,
        "system_text": "\n\n".join(p["text"] for p in system),
        "tools": _tools(attributes.get(gen_ai.TOOL_DEFINITIONS)),
        "input": inputs,
        "output": outputs,
        "input_text": _plain([m for m in inputs if not m["in_system_block"]]),
        "output_text": _plain(outputs),
        "finish_reasons": [str(f) for f in finish] if isinstance(finish, list) else [],
        "tokens": [
            {"key": key, "label": label, "value": counts[key]}
            for key, label, _name in _TOKENS
            if counts[key] is not None or key in ("input", "output")
        ],
        "cost": {
            "total": attributes.get(ext.USAGE_COST, stored_cost),
            "rows": [
                {"key": key, "label": label, "value": attributes.get(name)}
                for key, label, name in _COSTS
                if attributes.get(name) is not None
            ],
            "source": attributes.get(ext.COST_SOURCE) or stored_cost_source,
            "unpriced": bool(attributes.get(ext.COST_UNPRICED)),
            "unpriced_reason": attributes.get(ext.COST_UNPRICED_REASON),
        },
        "stream": {
            "streamed": bool(attributes.get(gen_ai.REQUEST_STREAM)),
            "chunk_count": attributes.get(ext.STREAM_CHUNK_COUNT),
            "ttft_ms": float(ttft) * 1000 if isinstance(ttft, (int, float)) and not isinstance(ttft, bool) else None,
        },
        "content_truncated": attributes.get(ext.CONTENT_TRUNCATED) or [],
        "redactions": attributes.get(ext.REDACTION_COUNT),
    }


def step(attributes: dict[str, Any], *, limit: int | None = INLINE_LIMIT) -> dict[str, Any]:
    """A pipeline step or tool span: its kind, input and output, as text."""
    return {
        "kind": attributes.get(ext.STEP_KIND),
        "tool": attributes.get(gen_ai.TOOL_NAME),
        "fields": [
            _step_field(label, name, attributes[name], limit) for label, name in _STEP_FIELDS if name in attributes
        ],
    }


def _step_field(label: str, name: str, raw: Any, limit: int | None) -> dict[str, Any]:
    value = parse_json(raw)
    kind = "text" if isinstance(value, str) else "other"  # structured values read better as code
    return _display(pretty(value), f"attr.{name}", {"kind": kind, "label": label}, limit)


def full_text(attributes: dict[str, Any], input_messages: list[Any], output_messages: list[Any], path: str) -> str:
    """The uncut text of the part at ``path`` (``input.<i>.<j>``, ``output.<i>.<j>`` or ``attr.<name>``)."""
    if path.startswith("attr."):
        for field in step(attributes, limit=None)["fields"]:
            if field["path"] == path:
                return str(field["text"])
        raise NotFound(f"no value at {path!r}")
    section, _, rest = path.partition(".")
    if section not in ("input", "output"):
        raise BadRequest("path: expected input.<i>.<j>, output.<i>.<j> or attr.<name>")
    conv = conversation(attributes, input_messages, output_messages, limit=None)
    try:
        i, j = (int(n) for n in rest.split("."))
        return str(conv[section][i]["parts"][j]["text"])
    except (ValueError, IndexError):
        raise NotFound(f"no value at {path!r}") from None
