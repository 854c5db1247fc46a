"""``AnthropicInstrumentor``: every call an ``anthropic`` client makes, as GenAI spans and metrics.

Usage::

    from spyglass.instrumentation import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)

Covered: ``messages.create`` and ``messages.stream`` (sync and async, ``beta`` too), tool use, extended
thinking (``reasoning`` parts), server tools (``server_tool_call``/``_response`` parts), prompt caching
(``gen_ai.usage.input_tokens`` = input + cache read + cache creation; the last two also as
``cache_read``/``cache_write``), ``count_tokens`` (a basic span), the legacy ``/v1/complete`` endpoint
(``text_completion``), and a basic span for every other endpoint. Same seam as OpenAI (:mod:`._sdk`).

anthropic >= 2 starts its own ``gen_ai`` CLIENT span per API call (``anthropic/_tracing.py``, metadata
only). While a Spyglass span covers the call, that span is not started (:mod:`._wrapping`), so there is
exactly one LLM span per call, with content.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.util.types import AttributeValue

from spyglass.instrumentation._params import first_number, set_float, set_int, set_stop_sequences
from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.semconv.values import FinishReason, OperationName, ProviderName

from ._config import load_settings
from ._content import blob_part
from ._openai import _raw_types, _version
from ._openai_messages import absent, or_default, parse_arguments, reader
from ._openai_messages import field as f
from ._providers import provider_for_host, server_of
from ._sdk import Call, GenericCall, full_path, route_template
from ._telemetry import LLMInvocation, LLMTelemetry
from ._wrapping import SDKPatch

_instruments = ("anthropic >= 0.40, < 3",)

_CHAT = OperationName.CHAT.value
_TEXT_COMPLETION = OperationName.TEXT_COMPLETION.value

FINISH_REASON_MAP = {
    "end_turn": FinishReason.STOP.value,
    "stop_sequence": FinishReason.STOP.value,
    "max_tokens": FinishReason.LENGTH.value,
    "model_context_window_exceeded": FinishReason.LENGTH.value,
    "tool_use": FinishReason.TOOL_CALL.value,
    "refusal": FinishReason.CONTENT_FILTER.value,
}


def _finish(reason: Any) -> str:
    """The output message ``finish_reason`` for an Anthropic ``stop_reason`` (``error`` when none arrived)."""
    if not reason:
        return FinishReason.ERROR.value
    return FINISH_REASON_MAP.get(reason, str(reason))


def _request_params(body: dict[str, Any], attrs: dict[str, AttributeValue]) -> None:
    set_int(attrs, gen_ai.REQUEST_MAX_TOKENS, first_number(body.get("max_tokens"), body.get("max_tokens_to_sample")))
    set_float(attrs, gen_ai.REQUEST_TEMPERATURE, body.get("temperature"))
    set_float(attrs, gen_ai.REQUEST_TOP_P, body.get("top_p"))
    set_int(attrs, gen_ai.REQUEST_TOP_K, body.get("top_k"))
    v = body.get("stop_sequences")
    if isinstance(v, (list, tuple)):
        set_stop_sequences(attrs, v)
    effort = f(body.get("output_config"), "effort")
    if isinstance(effort, str):
        attrs[gen_ai.REQUEST_REASONING_LEVEL] = effort
    fmt = f(body.get("output_config"), "format")
    if fmt is not None:
        attrs[gen_ai.OUTPUT_TYPE] = "json"


# --- content ---------------------------------------------------------------------------------------


def _source_part(block: Any, modality: str) -> m.Part:
    src = f(block, "source", {})
    kind = f(src, "type")
    if kind == "base64":
        return blob_part(f(src, "data", ""), modality, f(src, "media_type"))
    if kind == "url":
        return m.uri(f(src, "url", ""), modality, f(src, "media_type"))
    if kind == "file":
        return m.file(f(src, "file_id", ""), modality, f(src, "media_type"))
    if kind == "text":
        return m.text(f(src, "data", ""))
    return m.uri(str(kind), modality)


def _block_parts(content: Any) -> list[m.Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [m.text(content)]
    parts: list[m.Part] = []
    for block in content:
        if isinstance(block, str):
            parts.append(m.text(block))
            continue
        kind = f(block, "type")
        if kind == "text":
            parts.append(m.text(f(block, "text", "")))
        elif kind == "image":
            parts.append(_source_part(block, "image"))
        elif kind == "document":
            parts.append(_source_part(block, "document"))
        elif kind == "tool_use":
            parts.append(m.tool_call(f(block, "name", ""), f(block, "input"), f(block, "id")))
        elif kind == "tool_result":
            parts.append(m.tool_call_response(_tool_result(f(block, "content")), f(block, "tool_use_id")))
        elif kind == "thinking":
            parts.append(m.reasoning(f(block, "thinking", "")))
        elif kind == "redacted_thinking":
            parts.append(m.reasoning(""))
        elif kind in ("server_tool_use", "mcp_tool_use"):
            parts.append(
                m.server_tool_call(
                    f(block, "name", ""), {"type": f(block, "name", kind), "input": f(block, "input")}, f(block, "id")
                )
            )
        elif isinstance(kind, str) and kind.endswith("_tool_result"):
            parts.append(
                m.server_tool_call_response(
                    {"type": kind, "content": _dump(f(block, "content"))}, f(block, "tool_use_id")
                )
            )
        else:
            parts.append({"type": str(kind or "unknown")})  # type: ignore[arg-type]
    return parts


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_unset=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _tool_result(content: Any) -> Any:
    if isinstance(content, list):
        texts = [f(b, "text") for b in content if f(b, "type") == "text"]
        if len(texts) == len(content):
            return "".join(t or "" for t in texts)
        return _dump(content)
    return content


def _system_parts(system: Any) -> list[m.Part]:
    return _block_parts(system)


def _tool_definitions(tools: Any) -> list[m.ToolDefinition]:
    out: list[m.ToolDefinition] = []
    for tool in tools or ():
        kind = f(tool, "type")
        if kind in (None, "custom"):
            out.append(m.function_tool(f(tool, "name", ""), f(tool, "description"), f(tool, "input_schema")))
        else:
            out.append({"type": str(kind), "name": str(f(tool, "name", kind))})
    return out


def _content(inv: LLMInvocation, body: dict[str, Any]) -> None:
    msgs = []
    for msg in body.get("messages") or ():
        msgs.append(m.message(str(f(msg, "role", "user")), _block_parts(f(msg, "content"))))
    inv.input_messages = msgs
    system = body.get("system")
    if system:
        inv.system_instructions = list(_system_parts(system))
    tools = body.get("tools")
    if tools:
        inv.tool_definitions = list(_tool_definitions(tools))


def _usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    get = reader(usage)
    base = get("input_tokens")
    read = get("cache_read_input_tokens")
    write = get("cache_creation_input_tokens")
    if base is not None or read is not None or write is not None:
        inv.input_tokens = (base or 0) + (read or 0) + (write or 0)
    if read is not None:
        inv.cache_read_tokens = read
    if write is not None:
        inv.cache_write_tokens = write
    out = get("output_tokens")
    if out is not None:
        inv.output_tokens = out
    thinking = f(get("output_tokens_details"), "thinking_tokens")
    if thinking:
        inv.reasoning_tokens = thinking


def _on_message(inv: LLMInvocation, msg: Any) -> None:
    get = reader(msg) if msg is not None else absent
    rid = get("id")
    if isinstance(rid, str):
        inv.response_id = rid
    model = get("model")
    if isinstance(model, str):
        inv.response_model = model
    reason = get("stop_reason")
    inv.finish_reasons = [reason or "error"]
    _usage(inv, get("usage"))
    if inv.input_messages is not None:
        inv.output_messages = [
            m.output_message(
                or_default(get("role"), "assistant"),
                _block_parts(or_default(get("content"), ())),
                _finish(reason),
            )
        ]


def _on_complete(inv: LLMInvocation, resp: Any) -> None:
    data = resp if isinstance(resp, dict) else _dump(resp)
    if not isinstance(data, dict):
        return
    if isinstance(data.get("id"), str):
        inv.response_id = data["id"]
    if isinstance(data.get("model"), str):
        inv.response_model = data["model"]
    reason = data.get("stop_reason")
    inv.finish_reasons = [reason or "error"]
    if inv.input_messages is not None:
        inv.output_messages = [m.output_message("assistant", [m.text(data.get("completion") or "")], _finish(reason))]


class MessagesAccumulator:
    """Raw Messages stream events: content blocks by index, deltas joined, usage from start and delta."""

    __slots__ = ("blocks", "inv", "reason")

    def __init__(self, inv: LLMInvocation) -> None:
        self.inv = inv
        self.blocks: dict[int, list[Any]] = {}  # index -> [block, [text/json deltas]]
        self.reason: str | None = None

    def accumulate(self, event: Any) -> bool:
        kind = event.type
        if kind == "content_block_delta":
            slot = self.blocks.get(event.index)
            if slot is not None:
                d = event.delta
                dk = d.type
                if dk == "text_delta":
                    slot[1].append(d.text)
                elif dk == "input_json_delta":
                    slot[1].append(d.partial_json)
                elif dk == "thinking_delta":
                    slot[1].append(d.thinking)
        elif kind == "content_block_start":
            self.blocks[event.index] = [event.content_block, []]
        elif kind == "message_start":
            msg = event.message
            inv = self.inv
            inv.response_id = msg.id
            inv.response_model = msg.model
            _usage(inv, msg.usage)
        elif kind == "message_delta":
            self.reason = getattr(event.delta, "stop_reason", None) or self.reason
            usage = getattr(event, "usage", None)
            if usage is not None:
                # message_delta usage is cumulative; input counts appear there on newer APIs only.
                self._delta_usage(usage)
        return True

    def _delta_usage(self, usage: Any) -> None:
        inv = self.inv
        out = f(usage, "output_tokens")
        if out is not None:
            inv.output_tokens = out
        if f(usage, "input_tokens") is not None or f(usage, "cache_read_input_tokens") is not None:
            _usage(inv, usage)

    def finish(self, inv: LLMInvocation) -> None:
        inv.finish_reasons = [self.reason or "error"]
        if inv.input_messages is None:
            return
        parts: list[m.Part] = []
        for i in sorted(self.blocks):
            block, deltas = self.blocks[i]
            kind = f(block, "type")
            joined = "".join(deltas)
            if kind == "text":
                parts.append(m.text(f(block, "text", "") + joined))
            elif kind == "thinking":
                parts.append(m.reasoning(f(block, "thinking", "") + joined))
            elif kind == "redacted_thinking":
                parts.append(m.reasoning(""))
            elif kind == "tool_use":
                parts.append(
                    m.tool_call(
                        f(block, "name", ""), parse_arguments(joined) if joined else f(block, "input"), f(block, "id")
                    )
                )
            elif kind in ("server_tool_use", "mcp_tool_use"):
                args = parse_arguments(joined) if joined else f(block, "input")
                parts.append(
                    m.server_tool_call(
                        f(block, "name", ""), {"type": f(block, "name", kind), "input": _dump(args)}, f(block, "id")
                    )
                )
            else:
                parts.extend(_block_parts([block]))
        reason = self.reason
        inv.output_messages = [m.output_message("assistant", parts, _finish(reason))]


class CompletionAccumulator:
    """Legacy ``/v1/complete`` stream events."""

    __slots__ = ("inv", "reason", "text")

    def __init__(self, inv: LLMInvocation) -> None:
        self.inv = inv
        self.text: list[str] = []
        self.reason: str | None = None

    def accumulate(self, event: Any) -> bool:
        data = event if isinstance(event, dict) else _dump(event)
        if isinstance(data, dict):
            if isinstance(data.get("completion"), str):
                self.text.append(data["completion"])
            if data.get("stop_reason"):
                self.reason = data["stop_reason"]
            if self.inv.response_id is None and isinstance(data.get("id"), str):
                self.inv.response_id = data["id"]
            if self.inv.response_model is None and isinstance(data.get("model"), str):
                self.inv.response_model = data["model"]
        return True

    def finish(self, inv: LLMInvocation) -> None:
        inv.finish_reasons = [self.reason or "error"]
        if inv.input_messages is not None:
            inv.output_messages = [
                m.output_message(
                    "assistant",
                    [m.text("".join(self.text))],
                    _finish(self.reason),
                )
            ]


class AnthropicAdapter:
    """Plans spans for ``anthropic`` client requests (see :mod:`._sdk`)."""

    def __init__(self, tel: LLMTelemetry) -> None:
        self.tel = tel

    def plan(self, client: Any, options: Any, stream: bool) -> Call | GenericCall | None:
        path = str(options.url).split("?", 1)[0]
        method = str(options.method).upper()
        body = options.json_data if isinstance(options.json_data, dict) else {}
        host, port = server_of(getattr(client, "base_url", None))
        provider = provider_for_host(host, ProviderName.ANTHROPIC.value, port)
        if provider == ProviderName.OPENAI.value:
            provider = ProviderName.ANTHROPIC.value
        model = body.get("model")
        if method == "POST" and path.endswith("/v1/messages"):
            op = _CHAT
        elif method == "POST" and path.endswith("/v1/complete"):
            op = _TEXT_COMPLETION
        else:
            attrs: dict[str, AttributeValue] = {gen_ai.PROVIDER_NAME: provider}
            if host:
                attrs[gen_ai.SERVER_ADDRESS] = host
                if port:
                    attrs[gen_ai.SERVER_PORT] = port
            if isinstance(model, str):
                attrs[gen_ai.REQUEST_MODEL] = model
            route = route_template(full_path(client, path))
            name = (
                f"count_tokens {model}" if path.endswith("/count_tokens") and model else f"anthropic {method} {route}"
            )
            return GenericCall(name, attrs)
        streaming = bool(stream or body.get("stream"))
        inv = LLMInvocation(
            op,
            provider,
            request_model=model if isinstance(model, str) else None,
            server_address=host,
            server_port=port,
            streaming=streaming,
        )
        _request_params(body, inv.attributes)
        # The conversation id the application gave the client (anthropic >= 2 ``open_telemetry`` option):
        # really known, never synthesised.
        otel_option = getattr(client, "_open_telemetry", None)
        conv = otel_option.get("conversation_id") if isinstance(otel_option, dict) else None
        if isinstance(conv, str) and conv:
            inv.conversation_id = conv
        if op == _TEXT_COMPLETION:

            def completion_content(i: LLMInvocation) -> None:
                prompt = body.get("prompt")
                i.input_messages = [m.message("user", [m.text(prompt if isinstance(prompt, str) else str(prompt))])]

            return Call(
                inv,
                _on_complete,
                (lambda: CompletionAccumulator(inv)) if streaming else None,
                content=completion_content,
            )
        return Call(
            inv,
            _on_message,
            (lambda: MessagesAccumulator(inv)) if streaming else None,
            content=lambda i: _content(i, body),
        )


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """GenAI spans and metrics for the ``anthropic`` SDK. See the module docstring."""

    _patch: SDKPatch | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        settings = load_settings(
            capture=kwargs.get("capture_content"), content_max_length=kwargs.get("content_max_length")
        )
        tel = LLMTelemetry(
            settings,
            scope="spyglass.instrumentation.anthropic",
            version=_version(),
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            logger_provider=kwargs.get("logger_provider"),
            completion_hook=kwargs.get("completion_hook"),
        )
        self._patch = SDKPatch("anthropic", AnthropicAdapter(tel), _raw_types("anthropic"))
        self._patch.apply(kwargs.get("tracer_provider"))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patch is not None:
            self._patch.remove()
            self._patch = None
