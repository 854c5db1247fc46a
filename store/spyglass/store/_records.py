"""The normalised request record, and the readers that build it from every dialect senders use.

A span arrives in one of several conventions; :func:`normalise` reads all of them into one
:class:`Record` (the row of ``spans``, see :mod:`spyglass.store._schema`):

- current ``gen_ai.*``: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``
  JSON attributes (also inside a ``gen_ai.client.inference.operation.details`` event);
- the deprecated per-message events ``gen_ai.{system,user,assistant,tool}.message`` and ``gen_ai.choice``;
- OpenLLMetry's indexed ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (and ``gen_ai.usage.prompt_tokens``);
- OpenInference's ``llm.input_messages.N.message.*``, ``llm.token_count.*``, ``input.value``/``output.value``;
- the anthropic SDK's own ``anthropic.messages.create`` spans (``gen_ai.*`` metadata, no content);
- references to content a completion hook stored elsewhere (``gen_ai.input.messages_ref`` ...), kept as
  :attr:`Record.content_refs` (:func:`content_refs`); the store never fetches them (they are untrusted URLs).

Each message and each part is read on its own: a part that cannot be read becomes an ``unparsed`` part
holding its text, and the rest of the message survives. Messages use the semconv shape
(``{"role", "parts": [...], "finish_reason"?}``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spyglass.semconv import events as ev
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai as ga
from spyglass.store._json import dumps, loads

log = logging.getLogger(__name__)

Attributes = dict[str, Any]
Message = dict[str, Any]

# OpenInference and OpenLLMetry names (peers' conventions; read only).
OI_SPAN_KIND = "openinference.span.kind"
OI_MODEL = "llm.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_INPUT_MESSAGES = "llm.input_messages."
OI_OUTPUT_MESSAGES = "llm.output_messages."
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OI_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
OI_REASONING = "llm.token_count.completion_details.reasoning"
OI_COST_TOTAL = "llm.cost.total"
OI_INPUT_VALUE = "input.value"
OI_OUTPUT_VALUE = "output.value"
OI_METADATA = "metadata"
OI_TOOL_NAME = "tool.name"
OI_TOOL_PARAMETERS = "tool.parameters"
TRACELOOP_PROPERTIES = "traceloop.association.properties."
TRACELOOP_REQUEST_TYPE = "llm.request.type"
ANTHROPIC_STOP_REASON = "anthropic.message.stop_reason"
SERVICE_NAME = "service.name"

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings", "completion"})
TIMEOUT_PATTERN = re.compile(r"timeout|timed ?out|deadline", re.I)

CONTENT_REF_KEYS: dict[str, str] = {
    ga.INPUT_MESSAGES_REF: "input_messages_ref",
    ga.OUTPUT_MESSAGES_REF: "output_messages_ref",
    ga.SYSTEM_INSTRUCTIONS_REF: "system_instructions_ref",
    ga.TOOL_DEFINITIONS_REF: "tool_definitions_ref",
}
"""The JSON field of each content reference attribute (API items and the span detail)."""

STATUS_SUCCESS = "success"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"


@dataclass(slots=True)
class Record:
    """One stored span: identity, timing, the normalised LM-call fields and the span kept whole."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    tenant: str = ""
    service: str | None = None
    scope_name: str | None = None
    status: str = STATUS_SUCCESS
    status_message: str | None = None
    is_llm: bool = False
    operation: str | None = None
    provider: str | None = None
    model: str | None = None
    request_model: str | None = None
    alias: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None
    cost_source: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    input_messages: list[Message] = field(default_factory=list)
    output_messages: list[Message] = field(default_factory=list)
    input_text: str | None = None
    output_text: str | None = None
    tool_args: str | None = None
    content_refs: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    attributes: Attributes = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    resource: Attributes = field(default_factory=dict)
    resource_json: str | None = None
    """The stored JSON of :attr:`resource`, made once per resource of a request (``None``: not made yet)."""

    @property
    def duration_ms(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e6


def resource_json(attributes: Attributes) -> str:
    """The stored JSON of a resource's attributes (keys sorted: equal resources share one stored row)."""
    return dumps(dict(sorted(attributes.items())))


Pricer = Callable[[Record], "tuple[float, str] | None"]
"""Prices a record without a cost: ``(usd, source)`` or ``None`` when it cannot."""


def content_refs(attributes: Mapping[str, Any]) -> dict[str, str]:
    """The content references a span carries, by :data:`CONTENT_REF_KEYS` field (only those present)."""
    refs: dict[str, str] = {}
    for name, key in CONTENT_REF_KEYS.items():
        value = attributes.get(name)
        if value is not None and value != "":
            refs[key] = value if isinstance(value, str) else str(value)
    return refs


# --- small readers -------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json(value: Any) -> Any:
    """A JSON attribute: strings are parsed, structured values (OTLP kvlist/array) pass through."""
    if isinstance(value, str):
        try:
            return loads(value)
        except ValueError:
            return None
    return value


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


_TEXT_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)  # json.dumps(value, ensure_ascii=False, default=str)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return _TEXT_ENCODER.encode(value)
    except (TypeError, ValueError):
        return str(value)


# --- message parts -------------------------------------------------------------------------------


def _part(raw: Any) -> dict[str, Any]:
    """One semconv part (or a peer's content block) as a semconv part; never raises."""
    try:
        if isinstance(raw, str):
            return {"type": "text", "content": raw}
        if type(raw) is dict and raw.get("type") == "text" and type(content := raw.get("content")) is str:
            return {"type": "text", "content": content}  # the common part, as the general case below reads it
        if not isinstance(raw, dict):
            return {"type": "unparsed", "content": _text_of(raw)}
        kind = raw.get("type")
        if kind == "text" or (kind is None and "content" in raw and isinstance(raw["content"], str)):
            return {"type": "text", "content": _text_of(raw.get("content", raw.get("text", "")))}
        if kind in ("text", "input_text", "output_text") or (kind is None and "text" in raw):
            return {"type": "text", "content": _text_of(raw.get("text", ""))}
        if kind == "tool_call":
            return {
                "type": "tool_call",
                "id": raw.get("id"),
                "name": _text_of(raw.get("name", "")),
                "arguments": raw.get("arguments"),
            }
        if kind in ("tool_call_response", "tool_result"):
            return {
                "type": "tool_call_response",
                "id": raw.get("id"),
                "response": raw.get("response", raw.get("content")),
            }
        if kind in ("reasoning", "thinking"):
            return {"type": "reasoning", "content": _text_of(raw.get("content", raw.get("thinking", "")))}
        if isinstance(kind, str):
            return dict(raw)  # blob, uri, file, server tool parts: kept as sent
        return {"type": "unparsed", "content": _text_of(raw)}
    except Exception:  # a bad part must not drop the message
        return {"type": "unparsed", "content": _text_of(raw)}


def _message(raw: Any, default_role: str = "user") -> Message:
    """One semconv message (``{"role", "parts"}``) or a chat-style ``{"role", "content"}``."""
    if not isinstance(raw, dict):
        return {"role": default_role, "parts": [_part(raw)]}
    role = _text_of(raw.get("role") or default_role)
    parts_raw = raw.get("parts")
    parts: list[dict[str, Any]] = []
    if isinstance(parts_raw, list):
        parts = [_part(p) for p in parts_raw]
    else:
        content = raw.get("content")
        if isinstance(content, list):
            parts = [_part(p) for p in content]
        elif content is not None and content != "":
            parts = [_part(content if isinstance(content, str) else _text_of(content))]
        for call in raw.get("tool_calls") or ():
            parts.append(_tool_call_from_chat(call))
    msg: Message = {"role": role, "parts": parts}
    if raw.get("finish_reason"):
        msg["finish_reason"] = _text_of(raw["finish_reason"])
    if raw.get("name"):
        msg["name"] = _text_of(raw["name"])
    return msg


def _tool_call_from_chat(call: Any) -> dict[str, Any]:
    try:
        fn = call.get("function") or {}
        return {
            "type": "tool_call",
            "id": call.get("id"),
            "name": _text_of(fn.get("name", call.get("name", ""))),
            "arguments": fn.get("arguments", call.get("arguments")),
        }
    except Exception:
        return {"type": "unparsed", "content": _text_of(call)}


def _messages(value: Any, default_role: str) -> list[Message]:
    data = _json(value)
    if data is None:
        return [] if value in (None, "") else [{"role": default_role, "parts": [_part(_text_of(value))]}]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return [{"role": default_role, "parts": [_part(_text_of(data))]}]
    out: list[Message] = []
    for item in data:
        try:
            out.append(_message(item, default_role))
        except Exception:
            out.append({"role": default_role, "parts": [{"type": "unparsed", "content": _text_of(item)}]})
    return out


# --- dialects ------------------------------------------------------------------------------------


def _current(attrs: Mapping[str, Any]) -> tuple[list[Message], list[Message]]:
    inputs: list[Message] = []
    system = attrs.get(ga.SYSTEM_INSTRUCTIONS)
    if system is not None:
        data = _json(system)
        parts = data if isinstance(data, list) else [data if data is not None else system]
        inputs.append({"role": "system", "parts": [_part(p) for p in parts]})
    inputs.extend(_messages(attrs.get(ga.INPUT_MESSAGES), "user"))
    return inputs, _messages(attrs.get(ga.OUTPUT_MESSAGES), "assistant")


def _indexed(attrs: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``prefix.N.rest`` keys grouped by N: ``{N: {rest: value}}`` in index order."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    return dict(sorted(groups.items()))


def _openllmetry(attrs: Mapping[str, Any]) -> tuple[list[Message], list[Message]]:
    def read(prefix: str, role: str) -> list[Message]:
        out: list[Message] = []
        for fields in _indexed(attrs, prefix).values():
            try:
                msg = _message({"role": fields.get("role") or role, "content": fields.get("content")}, role)
                for call in _indexed(fields, "tool_calls.").values():
                    msg["parts"].append(
                        {
                            "type": "tool_call",
                            "id": call.get("id"),
                            "name": call.get("name", ""),
                            "arguments": call.get("arguments"),
                        }
                    )
                if fields.get("finish_reason"):
                    msg["finish_reason"] = _text_of(fields["finish_reason"])
                out.append(msg)
            except Exception:
                out.append({"role": role, "parts": [{"type": "unparsed", "content": _text_of(fields)}]})
        return out

    return read(ga.DEPRECATED_PROMPT_PREFIX, "user"), read(ga.DEPRECATED_COMPLETION_PREFIX, "assistant")


def _openinference(attrs: Mapping[str, Any]) -> tuple[list[Message], list[Message]]:
    def read(prefix: str, role: str) -> list[Message]:
        out: list[Message] = []
        for fields in _indexed(attrs, prefix).values():
            try:
                parts: list[dict[str, Any]] = []
                if fields.get("message.content") not in (None, ""):
                    parts.append(_part(_text_of(fields["message.content"])))
                for content in _indexed(fields, "message.contents.").values():
                    if content.get("message_content.type", "text") == "text":
                        parts.append(_part(_text_of(content.get("message_content.text", ""))))
                    else:
                        parts.append(
                            {
                                "type": "uri",
                                "modality": "image",
                                "uri": _text_of(content.get("message_content.image.image.url", "")),
                            }
                        )
                for call in _indexed(fields, "message.tool_calls.").values():
                    parts.append(
                        {
                            "type": "tool_call",
                            "id": call.get("tool_call.id"),
                            "name": _text_of(call.get("tool_call.function.name", "")),
                            "arguments": call.get("tool_call.function.arguments"),
                        }
                    )
                out.append({"role": _text_of(fields.get("message.role") or role), "parts": parts})
            except Exception:
                out.append({"role": role, "parts": [{"type": "unparsed", "content": _text_of(fields)}]})
        return out

    inputs, outputs = read(OI_INPUT_MESSAGES, "user"), read(OI_OUTPUT_MESSAGES, "assistant")
    if not inputs and attrs.get(OI_INPUT_VALUE) is not None:
        inputs = [{"role": "user", "parts": [_part(_text_of(attrs[OI_INPUT_VALUE]))]}]
    if not outputs and attrs.get(OI_OUTPUT_VALUE) is not None:
        outputs = [{"role": "assistant", "parts": [_part(_text_of(attrs[OI_OUTPUT_VALUE]))]}]
    return inputs, outputs


_EVENT_ROLES = {
    ev.DEPRECATED_SYSTEM_MESSAGE: "system",
    ev.DEPRECATED_USER_MESSAGE: "user",
    ev.DEPRECATED_ASSISTANT_MESSAGE: "assistant",
    ev.DEPRECATED_TOOL_MESSAGE: "tool",
}
_PROMPT_KEY = ga.DEPRECATED_PROMPT_PREFIX[:-1]  # "gen_ai.prompt"
_COMPLETION_KEY = ga.DEPRECATED_COMPLETION_PREFIX[:-1]  # "gen_ai.completion"
_CONTENT_EVENTS = {
    "gen_ai.content.prompt": (_PROMPT_KEY, True),
    "gen_ai.content.completion": (_COMPLETION_KEY, False),
    _PROMPT_KEY: (_PROMPT_KEY, True),
    _COMPLETION_KEY: (_COMPLETION_KEY, False),
}
EVENT_BODY = "event.body"
"""Where span-event bridges put a log body (JSON); read along with plain ``content``/``message``."""


def _events(events: Iterable[Mapping[str, Any]]) -> tuple[list[Message], list[Message], Attributes]:
    """The deprecated per-message events and the operation-details event; returns its attributes too."""
    inputs: list[Message] = []
    outputs: list[Message] = []
    details: Attributes = {}
    for event in events:
        name = event.get("name")
        attrs = event.get("attributes") or {}
        try:
            if name == ev.INFERENCE_OPERATION_DETAILS:
                details.update(attrs)
            elif name in _EVENT_ROLES:
                body = _json(attrs.get(EVENT_BODY)) or {}
                fields = {**(body if isinstance(body, dict) else {}), **attrs}
                fields.setdefault("role", _EVENT_ROLES[name])
                content = fields.get("content")
                if isinstance(content, str) and content[:1] in "[{":
                    parsed = _json(content)
                    fields["content"] = parsed if parsed is not None else content
                tool_calls = _json(fields.get("tool_calls"))
                fields["tool_calls"] = tool_calls if isinstance(tool_calls, list) else []
                msg = _message(fields, _EVENT_ROLES[name])
                if name == ev.DEPRECATED_TOOL_MESSAGE and fields.get("id"):
                    msg["parts"] = [
                        {"type": "tool_call_response", "id": fields.get("id"), "response": fields.get("content")}
                    ]
                inputs.append(msg)
            elif name == ev.DEPRECATED_CHOICE:
                body = _json(attrs.get(EVENT_BODY)) or {}
                fields = {**(body if isinstance(body, dict) else {}), **attrs}
                message = _json(fields.get("message")) or {}
                if not isinstance(message, dict):
                    message = {"content": message}
                message.setdefault("role", "assistant")
                if fields.get("finish_reason"):
                    message["finish_reason"] = fields["finish_reason"]
                outputs.append(_message(message, "assistant"))
            elif name in _CONTENT_EVENTS:
                # semconv 1.26-1.27 (gen_ai.content.prompt/completion) and Langtrace (gen_ai.prompt/completion):
                # one event carrying the whole conversation as a JSON attribute.
                key, is_input = _CONTENT_EVENTS[name]
                value = attrs.get(key)
                if is_input:
                    inputs.extend(_messages(value, "user"))
                else:
                    outputs.extend(_messages(value, "assistant"))
        except Exception:
            log.debug("unreadable event %r", name, exc_info=True)
    return inputs, outputs, details


# --- text for search and display -----------------------------------------------------------------


def _part_text(part: Mapping[str, Any]) -> str:
    kind = part.get("type")
    if kind in ("text", "unparsed"):
        return _text_of(part.get("content", ""))
    if kind == "reasoning":
        return "[reasoning] " + _text_of(part.get("content", ""))
    if kind == "tool_call":
        return f"[tool_call {part.get('name', '')}] {_text_of(part.get('arguments'))}"
    if kind == "tool_call_response":
        return "[tool_result] " + _text_of(part.get("response"))
    if kind in ("blob", "file", "uri"):
        return f"[{kind} {part.get('mime_type') or part.get('modality') or ''}]".replace(" ]", "]")
    return _text_of(part)


def messages_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """Readable transcript: ``role: text`` per message, one line each (text keeps its own newlines)."""
    lines = []
    for msg in messages:
        parts = msg.get("parts") or []
        # type() first: an isinstance check against the Mapping ABC costs a microsecond per part.
        body = "\n".join([_part_text(p) for p in parts if type(p) is dict or isinstance(p, Mapping)])
        lines.append(f"{msg.get('role', '')}: {body}")
    return "\n".join(lines)


def _tool_args(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    out = []
    for msg in messages:
        for part in msg.get("parts") or []:
            if (
                (type(part) is dict or isinstance(part, Mapping))
                and part.get("type") == "tool_call"
                and part.get("arguments") is not None
            ):
                out.append(_text_of(part.get("arguments")))
    return out


# --- the record ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Resource:
    """What every span of one OTLP ``ResourceSpans`` shares: read once per resource, not once per span."""

    attributes: Attributes
    service: str | None
    tenant: str | None
    """The tenant given by the request (header or token), else the resource's, else ``None``."""
    json: str | None = None
    """The stored JSON of the attributes (see :attr:`Record.resource_json`)."""

    @classmethod
    def of(cls, attributes: Attributes, tenant: str | None = None, json_text: str | None = None) -> Resource:
        return cls(
            attributes, _str(attributes.get(SERVICE_NAME)), tenant or _str(_first(attributes, ext.TENANT_ID)), json_text
        )


def normalise(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: Attributes,
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
    resource: Attributes,
    scope_name: str | None,
    status_code: int,
    status_message: str | None,
    tenant: str | None = None,
    pricer: Pricer | None = None,
) -> Record:
    """Build the record of one span. Every dialect is tried; each reader's failure is contained."""
    return record(
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        start_ns,
        end_ns,
        attributes,
        events,
        links,
        Resource.of(resource, tenant),
        scope_name,
        status_code,
        status_message,
        pricer,
    )


# The names each field is read from, the first set one wins: on the span and the operation-details event
# (_FIELD_NAMES), on the span only (_SPAN_FIELD_NAMES). Current names first, then the peers'.
_FIELD_NAMES: tuple[tuple[str, ...], ...] = (
    (ga.OPERATION_NAME, TRACELOOP_REQUEST_TYPE),
    (ga.PROVIDER_NAME, ga.DEPRECATED_SYSTEM, OI_PROVIDER, OI_SYSTEM),
    (ga.REQUEST_MODEL, OI_MODEL),
    (ga.USAGE_INPUT_TOKENS, ga.DEPRECATED_USAGE_PROMPT_TOKENS, OI_PROMPT_TOKENS),
    (ga.USAGE_OUTPUT_TOKENS, ga.DEPRECATED_USAGE_COMPLETION_TOKENS, OI_COMPLETION_TOKENS),
    (ga.USAGE_CACHE_READ_INPUT_TOKENS, OI_CACHE_READ),
    (ga.USAGE_CACHE_WRITE_INPUT_TOKENS, ga.DEPRECATED_USAGE_CACHE_CREATION_INPUT_TOKENS, OI_CACHE_WRITE),
    (ga.USAGE_REASONING_OUTPUT_TOKENS, OI_REASONING),
    (ext.USAGE_COST, OI_COST_TOTAL),
)
_SPAN_FIELD_NAMES: tuple[tuple[str, ...], ...] = (
    (ext.USER_ID, TRACELOOP_PROPERTIES + "user_id"),
    (ext.SESSION_ID, ga.CONVERSATION_ID, TRACELOOP_PROPERTIES + "session_id"),
)
# A span with none of the peers' names (the common case) reads each field with one dict lookup.
_CURRENT_NAMES = tuple(names[0] for names in _FIELD_NAMES)
_SPAN_CURRENT_NAMES = tuple(names[0] for names in _SPAN_FIELD_NAMES)
_PEER_KEYS = frozenset(name for names in (*_FIELD_NAMES, *_SPAN_FIELD_NAMES) for name in names[1:])

# Messages: the first dialect that has any wins, in order of how current it is.
_FIRST_PEER_READER = 2
_READERS: tuple[Callable[[Mapping[str, Any], Attributes, tuple[list[Message], list[Message]]], Any], ...] = (
    lambda g, a, events: _current(g),
    lambda g, a, events: events,
    lambda g, a, events: _openinference(a),
    lambda g, a, events: _openllmetry(a),
    lambda g, a, events: (_messages(a.get(_PROMPT_KEY), "user"), _messages(a.get(_COMPLETION_KEY), "assistant")),
)


_PEER_MESSAGE_PREFIXES = (
    OI_INPUT_MESSAGES,
    OI_OUTPUT_MESSAGES,
    ga.DEPRECATED_PROMPT_PREFIX,
    ga.DEPRECATED_COMPLETION_PREFIX,
)
_PEER_MESSAGE_KEYS = frozenset({OI_INPUT_VALUE, OI_OUTPUT_VALUE, _PROMPT_KEY, _COMPLETION_KEY})


def has_peer_messages(attributes: Attributes) -> bool:
    """Whether ``attributes`` has a name the OpenInference or OpenLLMetry message readers read."""
    return not _PEER_MESSAGE_KEYS.isdisjoint(attributes) or any(
        key.startswith(_PEER_MESSAGE_PREFIXES) for key in attributes
    )


def record(
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: Attributes,
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
    resource: Resource,
    scope_name: str | None,
    status_code: int,
    status_message: str | None,
    pricer: Pricer | None,
) -> Record:
    """:func:`normalise` with the resource read already (ingest calls this once per span)."""
    rec = Record(trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns)
    rec.attributes, rec.events, rec.links = attributes, events, links
    rec.resource, rec.resource_json, rec.scope_name = resource.attributes, resource.json, scope_name
    a = attributes
    rec.service = resource.service
    rec.tenant = resource.tenant or _str(a.get(ext.TENANT_ID)) or ""

    ev_in: list[Message] = []
    ev_out: list[Message] = []
    details: Attributes = {}
    if events:
        ev_in, ev_out, details = _events(events)
    # Attributes of the operation-details event fill what the span itself lacks.
    g: Mapping[str, Any] = {**details, **a} if details else a

    fields: Iterable[Any]
    if _PEER_KEYS.isdisjoint(g):
        fields = map(g.get, _CURRENT_NAMES)
        user_id, session_id = map(a.get, _SPAN_CURRENT_NAMES)
    else:
        fields = (_first(g, *names) for names in _FIELD_NAMES)
        user_id, session_id = (_first(a, *names) for names in _SPAN_FIELD_NAMES)
    operation, provider, request_model, input_tokens, output_tokens, cache_read, cache_write, reasoning, cost = fields
    rec.operation = _str(operation)
    oi_kind = _str(a.get(OI_SPAN_KIND))
    rec.provider = _str(provider)
    rec.request_model = _str(request_model)
    response_model = _str(g.get(ga.RESPONSE_MODEL))
    rec.model = response_model or rec.request_model
    if rec.request_model and response_model and rec.request_model != response_model:
        rec.alias = rec.request_model

    rec.input_tokens = _int(input_tokens)
    rec.output_tokens = _int(output_tokens)
    rec.cache_read_tokens = _int(cache_read)
    rec.cache_write_tokens = _int(cache_write)
    rec.reasoning_tokens = _int(reasoning)

    rec.user_id = _str(user_id)
    rec.session_id = _str(session_id)

    from_events = (ev_in, ev_out)
    for i, reader in enumerate(_READERS):
        if i == _FIRST_PEER_READER and not has_peer_messages(a):
            break  # the peers' readers find nothing without their names (one pass over the keys, not four)
        try:
            inputs, outputs = reader(g, a, from_events)
        except Exception:
            log.debug("message reader failed on span %s", span_id, exc_info=True)
            continue
        if not rec.input_messages and inputs:
            rec.input_messages = inputs
        if not rec.output_messages and outputs:
            rec.output_messages = outputs
        if rec.input_messages and rec.output_messages:
            break
    stop = _str(a.get(ANTHROPIC_STOP_REASON))
    if stop and rec.output_messages and "finish_reason" not in rec.output_messages[-1]:
        rec.output_messages[-1]["finish_reason"] = stop

    rec.is_llm = bool(
        (rec.operation in LLM_OPERATIONS)
        or oi_kind in ("LLM", "EMBEDDING")
        or (rec.model and (rec.input_messages or rec.output_messages or rec.input_tokens is not None))
    )
    if rec.input_messages:
        rec.input_text = messages_text(rec.input_messages)
    if rec.output_messages:
        rec.output_text = messages_text(rec.output_messages)
    args = _tool_args(rec.input_messages) + _tool_args(rec.output_messages)
    for key in (ga.TOOL_CALL_ARGUMENTS, OI_TOOL_PARAMETERS):
        if a.get(key) is not None:
            args.append(_text_of(a[key]))
    if rec.operation == "execute_tool" or oi_kind == "TOOL":
        if rec.input_text is None and (step_in := _first(a, ext.STEP_INPUT, OI_INPUT_VALUE)) is not None:
            rec.input_text = _text_of(step_in)
        if rec.output_text is None and (res := _first(a, ga.TOOL_CALL_RESULT, ext.STEP_OUTPUT, OI_OUTPUT_VALUE)):
            rec.output_text = _text_of(res)
    elif not rec.is_llm:
        # Pipeline steps: their inputs and outputs are searchable too.
        if (step_in := _first(a, ext.STEP_INPUT, OI_INPUT_VALUE)) is not None:
            rec.input_text = _text_of(step_in)
        if (step_out := _first(a, ext.STEP_OUTPUT, OI_OUTPUT_VALUE)) is not None:
            rec.output_text = _text_of(step_out)
    rec.tool_args = "\n".join(args) if args else None

    rec.metadata = _metadata(a)
    rec.content_refs = content_refs(a)

    # Status: OTel ERROR, or error.type set, is a failure; timeouts are told apart by name.
    error_type = _str(a.get(ga.ERROR_TYPE))
    if status_code == 2 or error_type:
        text = " ".join(x for x in (error_type, status_message) if x)
        rec.status = STATUS_TIMEOUT if TIMEOUT_PATTERN.search(text) else STATUS_ERROR
        rec.status_message = status_message or error_type
    elif status_message:
        rec.status_message = status_message

    cost_usd = _float(cost)
    if cost_usd is not None:
        rec.cost, rec.cost_source = cost_usd, "span"
    elif rec.is_llm and pricer is not None:
        try:
            priced = pricer(rec)
        except Exception:
            log.debug("pricing failed for span %s", span_id, exc_info=True)
            priced = None
        if priced is not None:
            rec.cost, rec.cost_source = priced
    return rec


_META_PREFIXES = (ext.METADATA_PREFIX, TRACELOOP_PROPERTIES)


def _metadata(a: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    raw = a.get(OI_METADATA)
    if raw is not None:
        data = _json(raw)
        if isinstance(data, dict):
            meta.update(data)
    for key, value in a.items():
        if not key.startswith(_META_PREFIXES):
            continue
        if key.startswith(ext.METADATA_PREFIX):
            meta[key[len(ext.METADATA_PREFIX) :]] = value
        else:
            meta.setdefault(key[len(TRACELOOP_PROPERTIES) :], value)
    tags = a.get(ext.TAGS, a.get("tag.tags"))
    if tags is not None:
        meta.setdefault("tags", tags)
    return meta
