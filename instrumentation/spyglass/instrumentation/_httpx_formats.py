"""Wire formats of LLM HTTP APIs: request bodies, JSON responses and server-sent events into an invocation.

Contract
--------
Each :class:`Format` reads plain JSON (``dict``/``list``, as decoded from the wire) and fills an
:class:`~spyglass.instrumentation._telemetry.LLMInvocation`:

- ``request(body, inv, content)``: model, request parameters (semconv names), and when ``content`` is true
  the input messages, system instructions and tool definitions in the GenAI message shapes;
- ``response(body, inv, content)``: response id/model, finish reasons, usage (``input_tokens`` includes
  cache reads and writes), output messages;
- ``stream()``: a fresh :class:`~spyglass.instrumentation._stream.Accumulator` taking ``(event, data)``
  pairs (the SSE ``event:`` name, or ``""``, and the decoded ``data:`` JSON).

Formats: OpenAI chat completions, completions, embeddings and responses (also every OpenAI-compatible
service: Azure OpenAI, Groq, DeepSeek, Mistral, OpenRouter, Ollama, vLLM...), Anthropic messages and legacy
complete, Gemini / Vertex AI ``generateContent``/``streamGenerateContent`` and ``embedContent``, Cohere v2
chat and embed. Unknown fields are ignored; a missing field leaves the attribute unset. Inline base64 data
(images, audio, documents) is never recorded (see :func:`~spyglass.instrumentation._content.blob_part`).

One reading of each format: OpenAI and Anthropic bodies go through the SDK adapters' own readers
(:mod:`._openai`, :mod:`._anthropic`, which accept plain dicts), and their events through the adapters' own
stream accumulators (their state and ``finish``). Only ``accumulate`` is written again here: it reads from
each event's decoded dict the fields the adapter's reads from an SDK object, the same fields in the same
order, because turning every event into attribute objects for the adapter's ``accumulate`` cost more than
all the rest of the event's handling. So a raw call and an SDK call produce the same span. Gemini and Cohere
have no SDK adapter; their readers live here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spyglass.instrumentation._params import set_int, set_sampling, set_stop_sequences
from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.semconv.values import OperationName, OutputType

from . import _anthropic, _openai
from . import _openai_messages as om
from ._content import blob_part
from ._stream import Accumulator
from ._telemetry import LLMInvocation

_CHAT = OperationName.CHAT.value
_COMPLETION = OperationName.TEXT_COMPLETION.value
_EMBEDDINGS = OperationName.EMBEDDINGS.value
_GENERATE = OperationName.GENERATE_CONTENT.value


@dataclass(frozen=True)
class Format:
    name: str
    operation: str
    request: Callable[[Any, LLMInvocation, bool], None]
    response: Callable[[Any, LLMInvocation, bool], None]
    stream: Callable[[LLMInvocation], Accumulator] | None = None
    """A fresh accumulator for one streamed call; content is captured iff ``inv.input_messages`` is set."""


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finish(reason: Any, table: dict[str, str]) -> str:
    text = str(reason) if reason is not None else "stop"
    return table.get(text, text)


def _json_args(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --- OpenAI and OpenAI-compatible: the OpenAI SDK adapter's own readers, fed the wire JSON -----------


def _openai_chat_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    _openai._request_params(body, inv.attributes)
    if content:
        _openai._chat_content(inv, body)


def _openai_completion_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    _openai._request_params(body, inv.attributes)
    if content:
        _openai._completion_content(inv, body)


def _openai_responses_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    _openai._request_params(body, inv.attributes)
    if isinstance(body.get("previous_response_id"), str):
        inv.attributes[gen_ai.REQUEST_PREVIOUS_RESPONSE_ID] = body["previous_response_id"]
    if content:
        _openai._responses_content(inv, body)


def _openai_embeddings_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    if isinstance(body.get("encoding_format"), str):
        inv.attributes[gen_ai.REQUEST_ENCODING_FORMATS] = [body["encoding_format"]]
    set_int(inv.attributes, gen_ai.EMBEDDINGS_DIMENSION_COUNT, body.get("dimensions"))


def _reader(read: Callable[[LLMInvocation, Any], None]) -> Callable[[Any, LLMInvocation, bool], None]:
    def response(body: Any, inv: LLMInvocation, content: bool) -> None:
        read(inv, _d(body))

    return response


class _ChatEvents(_openai.ChatAccumulator):
    """:class:`~._openai.ChatAccumulator` (chat and legacy completions) reading each event's decoded dict."""

    __slots__ = ()

    def accumulate(self, chunk: Any) -> bool:
        data = chunk[1]
        if not isinstance(data, dict):
            return True
        get = data.get
        inv = self.inv
        if not inv.response_id:
            _openai._common_response(inv, data)
        usage = get("usage")
        choices: Any = get("choices")
        if usage is not None:
            _openai._chat_usage(inv, usage)
        if choices is None and get("type") is None:
            return True  # an error or keep-alive object: nothing more to accumulate
        states = self.choices
        for c in choices:  # what is not a list of objects fails here, as it does on the SDK's objects
            cget = c.get
            index = cget("index")
            st = states.get(index)
            if st is None:
                st = states[index] = _openai._Choice()
            if self.legacy:
                v = cget("text")
                if v:
                    st.text.append(v)
            else:
                d = cget("delta")
                if d is not None:
                    dget = d.get
                    v = dget("content")
                    if v:
                        st.text.append(v)
                    v = dget("refusal")
                    if v:
                        st.refusal.append(v)
                    v = dget("reasoning_content")  # DeepSeek's reasoning deltas (a pydantic extra on the SDK's)
                    if v:
                        st.reasoning.append(v)
                    calls = dget("tool_calls")
                    if calls:
                        for tc in calls:
                            tget = tc.get
                            ti = tget("index")
                            slot = st.tools.get(ti)
                            if slot is None:
                                slot = st.tools[ti] = [None, "", []]
                            v = tget("id")
                            if v:
                                slot[0] = v
                            fn = tget("function")
                            if fn is not None:
                                v = fn.get("name")
                                if v:
                                    slot[1] = v
                                v = fn.get("arguments")
                                if v:
                                    slot[2].append(v)
            v = cget("finish_reason")
            if v:
                st.finish = v
        return True


def _openai_stream(legacy: bool) -> Callable[[LLMInvocation], Accumulator]:
    return lambda inv: _ChatEvents(inv, False, legacy)


class _ResponsesEvents(_openai.ResponsesAccumulator):
    """:class:`~._openai.ResponsesAccumulator` reading each event's decoded dict."""

    __slots__ = ()

    def accumulate(self, chunk: Any) -> bool:
        event = chunk[1]
        if not isinstance(event, dict):
            return True
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta: Any = event.get("delta")
            self.text.append(delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.get("response")
        elif kind == "response.created":
            _openai._common_response(self.inv, event.get("response"))
        return True


def _openai_tool_calls(calls: Any) -> list[m.Part]:
    parts: list[m.Part] = []
    for call in _l(calls):
        fn = _d(_d(call).get("function"))
        parts.append(m.tool_call(str(fn.get("name") or ""), _json_args(fn.get("arguments")), _d(call).get("id")))
    return parts


# --- Anthropic: the Anthropic SDK adapter's own readers, fed the wire JSON ----------------------------------


def _anthropic_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    _anthropic._request_params(body, inv.attributes)
    if "max_tokens_to_sample" in body:  # legacy /v1/complete
        set_int(inv.attributes, gen_ai.REQUEST_MAX_TOKENS, body["max_tokens_to_sample"])
        if content:
            inv.input_messages = [m.message("user", [m.text(str(body.get("prompt") or ""))])]
        return
    if content:
        _anthropic._content(inv, body)


def _anthropic_response(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    if body.get("type") == "completion":
        _anthropic._on_complete(inv, body)
    else:
        _anthropic._on_message(inv, body)


class _MessagesEvents(_anthropic.MessagesAccumulator):
    """:class:`~._anthropic.MessagesAccumulator` reading each event's decoded dict."""

    __slots__ = ()

    def accumulate(self, event: Any) -> bool:
        get = event.get
        kind = get("type")
        if kind == "content_block_delta":
            slot = self.blocks.get(get("index"))
            if slot is not None:
                d = get("delta")
                dk = d.get("type")
                if dk == "text_delta":
                    slot[1].append(d.get("text"))
                elif dk == "input_json_delta":
                    slot[1].append(d.get("partial_json"))
                elif dk == "thinking_delta":
                    slot[1].append(d.get("thinking"))
        elif kind == "content_block_start":
            self.blocks[get("index")] = [get("content_block"), []]
        elif kind == "message_start":
            msg = get("message")
            inv = self.inv
            inv.response_id = msg.get("id")
            inv.response_model = msg.get("model")
            _anthropic._usage(inv, msg.get("usage"))
        elif kind == "message_delta":
            d = get("delta")
            self.reason = (d.get("stop_reason") if isinstance(d, dict) else None) or self.reason
            usage = get("usage")
            if usage is not None:
                # message_delta usage is cumulative; input counts appear there on newer APIs only.
                self._delta_usage(usage)
        return True


class _AnthropicStream:
    """Messages events (or legacy ``completion`` events), handed to the adapter's accumulators."""

    __slots__ = ("_acc", "_inv")

    def __init__(self, inv: LLMInvocation) -> None:
        self._inv = inv
        self._acc: Any = None

    def accumulate(self, chunk: Any) -> bool:
        data = chunk[1]
        if not isinstance(data, dict):
            return True
        if self._acc is None:
            legacy = data.get("type") == "completion"
            self._acc = (_anthropic.CompletionAccumulator if legacy else _MessagesEvents)(self._inv)
        if isinstance(self._acc, _anthropic.CompletionAccumulator) or isinstance(data.get("type"), str):
            self._acc.accumulate(data)
        return True

    def finish(self, inv: LLMInvocation) -> None:
        if self._acc is not None:
            self._acc.finish(inv)


# --- Gemini / Vertex AI -------------------------------------------------------------------------------

_GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}


def _gemini_parts(parts: Any) -> list[m.Part]:
    out: list[m.Part] = []
    for part in _l(parts):
        part = _d(part)
        if isinstance(part.get("text"), str):
            out.append(m.reasoning(part["text"]) if part.get("thought") else m.text(part["text"]))
        elif isinstance(part.get("inlineData"), dict):
            data = part["inlineData"]
            mime = data.get("mimeType")
            modality = str(mime).split("/", 1)[0] if isinstance(mime, str) else "image"
            out.append(blob_part(str(data.get("data") or ""), modality, mime))
        elif isinstance(part.get("fileData"), dict):
            data = part["fileData"]
            mime = data.get("mimeType")
            modality = str(mime).split("/", 1)[0] if isinstance(mime, str) else "image"
            out.append(m.uri(str(data.get("fileUri") or ""), modality, mime))
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            out.append(m.tool_call(str(call.get("name") or ""), call.get("args"), call.get("id")))
        elif isinstance(part.get("functionResponse"), dict):
            resp = part["functionResponse"]
            out.append(m.tool_call_response(resp.get("response"), resp.get("id")))
    return out


def _gemini_role(role: Any) -> str:
    return "assistant" if role == "model" else str(role or "user")


_GEMINI_SAMPLING = ("temperature", "topP", "topK", "maxOutputTokens", "seed", "frequencyPenalty", "presencePenalty")


def _gemini_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    cfg = _d(body.get("generationConfig") or body.get("generation_config"))
    a = gen_ai
    set_sampling(inv.attributes, cfg, _GEMINI_SAMPLING)
    count = _int(cfg.get("candidateCount"))
    if count is not None and count != 1:
        inv.attributes[a.REQUEST_CHOICE_COUNT] = count
    set_stop_sequences(inv.attributes, cfg.get("stopSequences"))
    if cfg.get("responseMimeType") == "application/json":
        inv.attributes[a.OUTPUT_TYPE] = OutputType.JSON.value
    level = _d(cfg.get("thinkingConfig")).get("thinking_level") or _d(cfg.get("thinkingConfig")).get("thinkingLevel")
    if isinstance(level, str):
        inv.attributes[a.REQUEST_REASONING_LEVEL] = level.lower()
    if not content:
        return
    inv.input_messages = [
        m.message(_gemini_role(_d(c).get("role")), _gemini_parts(_d(c).get("parts"))) for c in _l(body.get("contents"))
    ]
    system = _d(body.get("systemInstruction") or body.get("system_instruction"))
    if system:
        inv.system_instructions = list(_gemini_parts(system.get("parts")))
    tools: list[m.ToolDefinition] = []
    for tool in map(_d, _l(body.get("tools"))):
        for fn in map(_d, _l(tool.get("functionDeclarations") or tool.get("function_declarations"))):
            tools.append(m.function_tool(str(fn.get("name") or ""), fn.get("description"), fn.get("parameters")))
        for key in tool:
            if key not in ("functionDeclarations", "function_declarations"):
                tools.append({"type": key, "name": key})
    if tools:
        inv.tool_definitions = tools


def _gemini_usage(inv: LLMInvocation, usage: Any) -> None:
    usage = _d(usage)
    prompt = _int(usage.get("promptTokenCount"))
    if prompt is not None:
        inv.input_tokens = prompt + (_int(usage.get("toolUsePromptTokenCount")) or 0)
    thoughts = _int(usage.get("thoughtsTokenCount")) or 0
    candidates = _int(usage.get("candidatesTokenCount"))
    if candidates is not None or thoughts:
        inv.output_tokens = (candidates or 0) + thoughts  # Gemini counts thoughts apart; semconv includes them
    inv.reasoning_tokens = thoughts or None
    inv.cache_read_tokens = _int(usage.get("cachedContentTokenCount")) or None


def _gemini_response(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    if isinstance(body.get("responseId"), str):
        inv.response_id = body["responseId"]
    if isinstance(body.get("modelVersion"), str):
        inv.response_model = body["modelVersion"]
    _gemini_usage(inv, body.get("usageMetadata"))
    reasons: list[str] = []
    outputs: list[m.OutputMessage] = []
    for cand in map(_d, _l(body.get("candidates"))):
        parts = _gemini_parts(_d(cand.get("content")).get("parts"))
        reason = _finish(cand.get("finishReason"), _GEMINI_FINISH)
        if any(p["type"] == "tool_call" for p in parts) and reason == "stop":
            reason = "tool_call"
        reasons.append(reason)
        outputs.append(m.output_message("assistant", parts, reason))
    inv.finish_reasons = reasons or None
    if content and outputs:
        inv.output_messages = list(outputs)


class _GeminiStream:
    """``streamGenerateContent?alt=sse``: each event is a partial response; parts are concatenated."""

    def __init__(self, inv: LLMInvocation) -> None:
        self.content = inv.input_messages is not None
        self.meta: dict[str, Any] = {}
        self.parts: dict[int, list[Any]] = {}
        self.reasons: dict[int, Any] = {}

    def accumulate(self, chunk: Any) -> bool:
        data = chunk[1]
        for item in data if isinstance(data, list) else [data]:  # without alt=sse the body is one JSON array
            item = _d(item)
            for key in ("responseId", "modelVersion", "usageMetadata"):
                if key in item:
                    self.meta[key] = item[key]
            for cand in map(_d, _l(item.get("candidates"))):
                i = _int(cand.get("index")) or 0
                if cand.get("finishReason"):
                    self.reasons[i] = cand["finishReason"]
                if self.content:
                    self.parts.setdefault(i, []).extend(_l(_d(cand.get("content")).get("parts")))
        return True

    def finish(self, inv: LLMInvocation) -> None:
        candidates = []
        for i in sorted(set(self.parts) | set(self.reasons)):
            merged: list[dict[str, Any]] = []
            for part in map(_d, self.parts.get(i, [])):
                last = merged[-1] if merged else None
                if (
                    last is not None
                    and isinstance(part.get("text"), str)
                    and isinstance(last.get("text"), str)
                    and bool(part.get("thought")) == bool(last.get("thought"))
                ):
                    last["text"] += part["text"]
                else:
                    merged.append(dict(part))
            candidates.append({"index": i, "content": {"parts": merged}, "finishReason": self.reasons.get(i)})
        _gemini_response({**self.meta, "candidates": candidates}, inv, self.content)


def _gemini_embed_response(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    first = _d(body.get("embedding")) or _d(next(iter(_l(body.get("embeddings"))), None))
    values = first.get("values")
    if isinstance(values, list):
        inv.attributes[gen_ai.EMBEDDINGS_DIMENSION_COUNT] = len(values)


def _nothing(body: Any, inv: LLMInvocation, content: bool) -> None:
    return None


# --- Cohere v2 ---------------------------------------------------------------------------------------------

_COHERE_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_call",
    "ERROR": "error",
    "TIMEOUT": "error",
}


def _cohere_message(msg: Any, output: bool = False) -> list[m.Part]:
    msg = _d(msg)
    parts: list[m.Part] = []
    if isinstance(msg.get("tool_plan"), str) and msg["tool_plan"]:
        parts.append(m.reasoning(msg["tool_plan"]))
    parts += om.content_parts(msg.get("content"))
    parts += _openai_tool_calls(msg.get("tool_calls"))
    return parts


_COHERE_SAMPLING = ("temperature", "p", "k", "max_tokens", "seed", "frequency_penalty", "presence_penalty")


def _cohere_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    set_sampling(inv.attributes, body, _COHERE_SAMPLING)
    set_stop_sequences(inv.attributes, body.get("stop_sequences"))
    if not content:
        return
    msgs: list[m.ChatMessage] = []
    for msg in map(_d, _l(body.get("messages"))):
        role = str(msg.get("role") or "user")
        if role == "tool":
            msgs.append(m.message("tool", [m.tool_call_response(msg.get("content"), msg.get("tool_call_id"))]))
        else:
            msgs.append(m.message(role, _cohere_message(msg)))
    inv.input_messages = msgs
    tools = om.tool_definitions(body.get("tools"))
    if tools:
        inv.tool_definitions = list(tools)


def _cohere_usage(inv: LLMInvocation, usage: Any) -> None:
    usage = _d(usage)
    tokens = _d(usage.get("tokens")) or _d(usage.get("billed_units"))
    inv.input_tokens = _int(tokens.get("input_tokens"))
    inv.output_tokens = _int(tokens.get("output_tokens"))


def _cohere_response(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    if isinstance(body.get("id"), str):
        inv.response_id = body["id"]
    reason = _finish(body.get("finish_reason"), _COHERE_FINISH)
    inv.finish_reasons = [reason]
    _cohere_usage(inv, body.get("usage"))
    if content:
        inv.output_messages = [m.output_message("assistant", _cohere_message(body.get("message"), True), reason)]


class _CohereStream:
    """v2 chat events: text and tool-plan deltas, tool calls by index, finish and usage at ``message-end``."""

    def __init__(self, inv: LLMInvocation) -> None:
        self.content = inv.input_messages is not None
        self.id: Any = None
        self.text: list[str] = []
        self.plan: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.end: dict[str, Any] = {}

    def accumulate(self, chunk: Any) -> bool:
        data = _d(chunk[1])
        kind = data.get("type")
        message = _d(_d(data.get("delta")).get("message"))
        if kind == "message-start":
            self.id = data.get("id")
        elif kind == "content-delta" and self.content:
            text = _d(message.get("content")).get("text")
            if isinstance(text, str):
                self.text.append(text)
        elif kind == "tool-plan-delta" and self.content:
            if isinstance(message.get("tool_plan"), str):
                self.plan.append(message["tool_plan"])
        elif kind in ("tool-call-start", "tool-call-delta") and self.content:
            call = _d(message.get("tool_calls"))
            slot = self.calls.setdefault(_int(data.get("index")) or 0, {"args": []})
            if call.get("id"):
                slot["id"] = call["id"]
            fn = _d(call.get("function"))
            if fn.get("name"):
                slot["name"] = fn["name"]
            if isinstance(fn.get("arguments"), str):
                slot["args"].append(fn["arguments"])
        elif kind == "message-end":
            self.end = _d(data.get("delta"))
        return True

    def finish(self, inv: LLMInvocation) -> None:
        message: dict[str, Any] = {"tool_plan": "".join(self.plan)}
        if self.text:
            message["content"] = [{"type": "text", "text": "".join(self.text)}]
        message["tool_calls"] = [
            {"id": c.get("id"), "function": {"name": c.get("name"), "arguments": "".join(c["args"])}}
            for _, c in sorted(self.calls.items())
        ]
        body = {
            "id": self.id,
            "finish_reason": self.end.get("finish_reason"),
            "usage": self.end.get("usage"),
            "message": message,
        }
        _cohere_response(body, inv, self.content)


def _cohere_embed_request(body: Any, inv: LLMInvocation, content: bool) -> None:
    types = _d(body).get("embedding_types")
    if isinstance(types, list) and all(isinstance(t, str) for t in types):
        inv.attributes[gen_ai.REQUEST_ENCODING_FORMATS] = list(types)


def _cohere_embed_response(body: Any, inv: LLMInvocation, content: bool) -> None:
    body = _d(body)
    if isinstance(body.get("id"), str):
        inv.response_id = body["id"]
    billed = _d(_d(body.get("meta")).get("billed_units"))
    inv.input_tokens = _int(billed.get("input_tokens"))
    for values in _d(body.get("embeddings")).values():
        if isinstance(values, list) and values and isinstance(values[0], list):
            inv.attributes[gen_ai.EMBEDDINGS_DIMENSION_COUNT] = len(values[0])
            break


OPENAI_CHAT = Format(
    "openai.chat_completions",
    _CHAT,
    _openai_chat_request,
    _reader(_openai._on_chat),
    _openai_stream(False),
)
OPENAI_COMPLETIONS = Format(
    "openai.completions",
    _COMPLETION,
    _openai_completion_request,
    _reader(_openai._on_completion),
    _openai_stream(True),
)
OPENAI_EMBEDDINGS = Format(
    "openai.embeddings", _EMBEDDINGS, _openai_embeddings_request, _reader(_openai._on_embeddings)
)
OPENAI_RESPONSES = Format(
    "openai.responses", _CHAT, _openai_responses_request, _reader(_openai._on_response), _ResponsesEvents
)
ANTHROPIC_MESSAGES = Format("anthropic.messages", _CHAT, _anthropic_request, _anthropic_response, _AnthropicStream)
ANTHROPIC_COMPLETE = Format(
    "anthropic.complete", _COMPLETION, _anthropic_request, _anthropic_response, _AnthropicStream
)
GEMINI_GENERATE = Format("gemini.generate_content", _GENERATE, _gemini_request, _gemini_response, _GeminiStream)
GEMINI_EMBED = Format("gemini.embed_content", _EMBEDDINGS, _nothing, _gemini_embed_response)
COHERE_CHAT = Format("cohere.chat", _CHAT, _cohere_request, _cohere_response, _CohereStream)
COHERE_EMBED = Format("cohere.embed", _EMBEDDINGS, _cohere_embed_request, _cohere_embed_response)
