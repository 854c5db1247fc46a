"""``OpenAIInstrumentor``: every call an ``openai`` client makes, as GenAI spans and metrics.

Usage::

    from spyglass.instrumentation import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)   # or opentelemetry-instrument

Covered: ``chat.completions.create``/``.parse``/``.stream()``, legacy ``completions.create``,
``responses.create``/``.stream``/``.parse`` (``chat``, ``openai.api.type=responses``) and
``responses.retrieve`` (``fetch_response``, no usage), ``embeddings.create``; sync and async;
``with_raw_response`` and ``with_streaming_response``; ``AzureOpenAI`` (``azure.ai.openai``) and
OpenAI-compatible hosts through ``base_url`` (provider from the host). Any other endpoint gets a basic
CLIENT span named ``openai {METHOD} {route}``. All through one seam, ``openai._base_client``'s
``{Sync,Async}APIClient.request`` (see :mod:`._sdk`).

Configuration: ``instrument(capture_content=..., content_max_length=..., stream_include_usage=...,
completion_hook=...)`` arguments win over the environment (:mod:`._config`, :mod:`._hooks`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.util.types import AttributeValue

from spyglass.instrumentation._params import first_number, is_number, set_float, set_int, set_stop_sequences
from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.semconv.messages import base64_decoded_size
from spyglass.semconv.values import OperationName, ProviderName

from . import _openai_messages as om
from ._config import Settings, load_settings
from ._providers import provider_for_host, server_of
from ._sdk import Call, GenericCall, full_path, route_template
from ._telemetry import LLMInvocation, LLMTelemetry
from ._wrapping import SDKPatch

_instruments = ("openai >= 1.26.0, < 4",)

_CHAT = OperationName.CHAT.value
_TEXT_COMPLETION = OperationName.TEXT_COMPLETION.value
_EMBEDDINGS = OperationName.EMBEDDINGS.value
_FETCH_RESPONSE = OperationName.FETCH_RESPONSE.value
_OPENAI = ProviderName.OPENAI.value
_AZURE = ProviderName.AZURE_AI_OPENAI.value
_SERVERS_KEPT = 256
"""(client class, base URL) pairs whose provider and server are kept per instrumentor."""

_OUTPUT_TYPES = {"text": "text", "json_object": "json", "json_schema": "json"}

f = om.field


def _request_params(body: dict[str, Any], attrs: dict[str, AttributeValue]) -> None:
    """Request parameters common to the OpenAI inference APIs, by semconv name."""
    # A request sets few of these: the setters run only for a value that is there (each is a call or two).
    get = body.get
    v = get("temperature")
    if v is not None:
        set_float(attrs, gen_ai.REQUEST_TEMPERATURE, v)
    v = get("top_p")
    if v is not None:
        set_float(attrs, gen_ai.REQUEST_TOP_P, v)
    a, b, c = get("max_completion_tokens"), get("max_tokens"), get("max_output_tokens")
    if a is not None or b is not None or c is not None:
        set_int(attrs, gen_ai.REQUEST_MAX_TOKENS, first_number(a, b, c))
    v = get("frequency_penalty")
    if v is not None:
        set_float(attrs, gen_ai.REQUEST_FREQUENCY_PENALTY, v)
    v = get("presence_penalty")
    if v is not None:
        set_float(attrs, gen_ai.REQUEST_PRESENCE_PENALTY, v)
    v = get("seed")
    if v is not None:
        set_int(attrs, gen_ai.REQUEST_SEED, v)
    v = get("n")
    if v is not None and is_number(v) and v != 1:
        attrs[gen_ai.REQUEST_CHOICE_COUNT] = int(v)
    v = get("stop")
    if v is not None:
        set_stop_sequences(attrs, v)
    v = get("reasoning_effort")
    if v is None:
        v = f(get("reasoning"), "effort")
    if isinstance(v, str):
        attrs[gen_ai.REQUEST_REASONING_LEVEL] = v
    v = get("service_tier")
    if isinstance(v, str) and v != "auto":
        attrs[gen_ai.OPENAI_REQUEST_SERVICE_TIER] = v
    fmt = get("response_format")
    if fmt is None:
        fmt = f(get("text"), "format")
    if fmt is not None:
        kind = "json" if isinstance(fmt, type) else f(fmt, "type")
        if isinstance(kind, str):
            attrs[gen_ai.OUTPUT_TYPE] = _OUTPUT_TYPES.get(kind, kind)


def _chat_usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    get = om.reader(usage)
    inv.input_tokens = get("prompt_tokens")
    inv.output_tokens = get("completion_tokens")
    details = get("prompt_tokens_details")
    inv.cache_read_tokens = f(details, "cached_tokens")
    inv.cache_write_tokens = f(details, "cache_write_tokens")
    inv.reasoning_tokens = f(get("completion_tokens_details"), "reasoning_tokens")


def _responses_usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    inv.input_tokens = f(usage, "input_tokens")
    inv.output_tokens = f(usage, "output_tokens")
    details = f(usage, "input_tokens_details")
    inv.cache_read_tokens = f(details, "cached_tokens")
    inv.cache_write_tokens = f(details, "cache_write_tokens") or f(details, "cache_creation_input_tokens")
    inv.reasoning_tokens = f(f(usage, "output_tokens_details"), "reasoning_tokens")


def _common_response(inv: LLMInvocation, resp: Any) -> None:
    if resp is None:
        return
    get = om.reader(resp)
    rid = get("id")
    if rid and isinstance(rid, str):
        inv.response_id = rid
    model = get("model")
    if model and isinstance(model, str):
        inv.response_model = model
    tier = get("service_tier")
    if isinstance(tier, str):
        inv.attributes[gen_ai.OPENAI_RESPONSE_SERVICE_TIER] = tier
    fp = get("system_fingerprint")
    if isinstance(fp, str):
        inv.attributes[gen_ai.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fp


# --- response readers (non-streamed) ---------------------------------------------------------------


def _on_chat(inv: LLMInvocation, resp: Any) -> None:
    _common_response(inv, resp)
    get = om.reader(resp) if resp is not None else om.absent
    err = get("error")
    if err is not None:
        _body_error(inv, resp)
    choices = get("choices") or ()
    inv.finish_reasons = [f(c, "finish_reason") or "error" for c in choices]
    _chat_usage(inv, get("usage"))
    if inv.input_messages is not None:  # content is being captured
        inv.output_messages = list(om.chat_output_messages(choices))


def _on_completion(inv: LLMInvocation, resp: Any) -> None:
    _common_response(inv, resp)
    choices = f(resp, "choices", ())
    inv.finish_reasons = [f(c, "finish_reason") or "error" for c in choices]
    _chat_usage(inv, f(resp, "usage"))
    if inv.input_messages is not None:
        inv.output_messages = list(om.completion_output_messages(choices))


def _on_embeddings(inv: LLMInvocation, resp: Any) -> None:
    model = f(resp, "model")
    if isinstance(model, str):
        inv.response_model = model
    usage = f(resp, "usage")
    if usage is not None:
        inv.input_tokens = f(usage, "prompt_tokens")
    data = f(resp, "data", ())
    if data:
        emb = f(data[0], "embedding")
        if isinstance(emb, list):
            inv.attributes[gen_ai.EMBEDDINGS_DIMENSION_COUNT] = len(emb)
        elif isinstance(emb, str):  # encoding_format=base64: little-endian float32s
            inv.attributes[gen_ai.EMBEDDINGS_DIMENSION_COUNT] = base64_decoded_size(emb) // 4


def _on_response(inv: LLMInvocation, resp: Any) -> None:
    _common_response(inv, resp)
    conv = f(f(resp, "conversation"), "id")
    if isinstance(conv, str):
        inv.conversation_id = conv
    if inv.operation != _FETCH_RESPONSE:
        _responses_usage(inv, f(resp, "usage"))
    messages, reason = om.responses_output(resp)
    inv.finish_reasons = [reason]
    if inv.input_messages is not None or inv.operation == _FETCH_RESPONSE:
        inv.output_messages = list(messages)
    _body_error(inv, resp)


def _body_error(inv: LLMInvocation, resp: Any) -> None:
    """A response that reports an error in its body (Responses ``error``, Azure's filtered 200s)."""
    err = f(resp, "error")
    if err is not None:
        inv.error_type = str(f(err, "code") or f(err, "type") or gen_ai.ERROR_TYPE_OTHER)


# --- stream accumulators ---------------------------------------------------------------------------


class _Choice:
    __slots__ = ("finish", "reasoning", "refusal", "role", "text", "tools")

    def __init__(self) -> None:
        self.role = "assistant"
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.tools: dict[int, list[Any]] = {}
        self.finish: str | None = None


class ChatAccumulator:
    """Chat Completions (and legacy Completions) chunks, by choice index and tool-call index."""

    __slots__ = ("choices", "hide_usage", "inv", "legacy")

    def __init__(self, inv: LLMInvocation, hide_usage: bool, legacy: bool) -> None:
        self.inv = inv
        self.hide_usage = hide_usage
        self.legacy = legacy
        self.choices: dict[int, _Choice] = {}

    def accumulate(self, chunk: Any) -> bool:
        inv = self.inv
        if not inv.response_id:
            _common_response(inv, chunk)
        usage = getattr(chunk, "usage", None)
        choices = chunk.choices
        if usage is not None:
            _chat_usage(inv, usage)
            if self.hide_usage and not choices:
                return False
        for c in choices:
            st = self.choices.get(c.index)
            if st is None:
                st = self.choices[c.index] = _Choice()
            if self.legacy:
                if c.text:
                    st.text.append(c.text)
            else:
                d = c.delta
                if d is not None:
                    if d.content:
                        st.text.append(d.content)
                    if d.refusal:
                        st.refusal.append(d.refusal)
                    # DeepSeek-style reasoning deltas arrive as a pydantic extra field; a plain getattr of a
                    # missing field raises inside pydantic, which costs microseconds on every chunk.
                    extra = getattr(d, "__pydantic_extra__", None)
                    if extra:
                        r = extra.get("reasoning_content")
                        if r:
                            st.reasoning.append(r)
                    if d.tool_calls:
                        for tc in d.tool_calls:
                            slot = st.tools.get(tc.index)
                            if slot is None:
                                slot = st.tools[tc.index] = [None, "", []]
                            if tc.id:
                                slot[0] = tc.id
                            fn = tc.function
                            if fn is not None:
                                if fn.name:
                                    slot[1] = fn.name
                                if fn.arguments:
                                    slot[2].append(fn.arguments)
            if c.finish_reason:
                st.finish = c.finish_reason
        return True

    def finish(self, inv: LLMInvocation) -> None:
        order = sorted(self.choices)
        inv.finish_reasons = [self.choices[i].finish or "error" for i in order]
        if inv.input_messages is None:
            return
        out = []
        for i in order:
            st = self.choices[i]
            parts: list[Any] = []
            if st.reasoning:
                parts.append(m.reasoning("".join(st.reasoning)))
            if st.text:
                parts.append(m.text("".join(st.text)))
            if st.refusal:
                parts.append(m.text("".join(st.refusal)))
            for ti in sorted(st.tools):
                tid, name, args = st.tools[ti]
                parts.append(m.tool_call(name, om.parse_arguments("".join(args)), tid))
            reason = om.FINISH_REASON_MAP.get(st.finish, st.finish) if st.finish else "error"
            out.append(m.output_message("assistant", parts, reason))
        inv.output_messages = out


class ResponsesAccumulator:
    """Responses API events: the terminal event carries the whole Response; deltas cover a cut stream."""

    __slots__ = ("final", "inv", "text")

    def __init__(self, inv: LLMInvocation) -> None:
        self.inv = inv
        self.final: Any = None
        self.text: list[str] = []

    def accumulate(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            self.text.append(event.delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.response
        elif kind == "response.created":
            _common_response(self.inv, event.response)
        return True

    def finish(self, inv: LLMInvocation) -> None:
        if self.final is not None:
            _on_response(inv, self.final)
            return
        inv.finish_reasons = ["error"]
        if inv.input_messages is not None and self.text:
            inv.output_messages = [m.output_message("assistant", [m.text("".join(self.text))], "error")]


# --- the adapter -----------------------------------------------------------------------------------


class OpenAIAdapter:
    """Plans spans for ``openai`` client requests (see :mod:`._sdk`)."""

    def __init__(self, tel: LLMTelemetry, settings: Settings) -> None:
        self.tel = tel
        self.include_usage = settings.openai_stream_include_usage
        self._azure: type | None = None
        self._servers: dict[tuple[type, int], tuple[Any, tuple[str, str | None, int | None]]] = {}
        try:
            from openai import AsyncAzureOpenAI, AzureOpenAI

            self._azure = (AzureOpenAI, AsyncAzureOpenAI)  # type: ignore[assignment]
        except Exception:
            self._azure = None

    def _provider(self, client: Any) -> tuple[str, str | None, int | None]:
        # Worked out once per client class and base URL (an immutable URL object, kept so its id stays its own).
        url = getattr(client, "base_url", None)
        key = (type(client), id(url))
        kept = self._servers.get(key)
        if kept is not None and kept[0] is url:
            return kept[1]
        host, port = server_of(url)
        if self._azure is not None and isinstance(client, self._azure):
            found = _AZURE, host, port
        else:
            found = provider_for_host(host, _OPENAI, port), host, port
        if len(self._servers) >= _SERVERS_KEPT:
            self._servers.clear()
        self._servers[key] = (url, found)
        return found

    def plan(self, client: Any, options: Any, stream: bool) -> Call | GenericCall | None:
        url: str = options.url
        path = url.split("?", 1)[0]
        method = str(options.method).upper()
        body = options.json_data if isinstance(options.json_data, dict) else {}
        provider, host, port = self._provider(client)

        if method == "POST" and path.endswith("/chat/completions"):
            op, api = _CHAT, "chat_completions"
        elif method == "POST" and path.endswith("/completions"):
            op, api = _TEXT_COMPLETION, None
        elif method == "POST" and path.endswith("/embeddings"):
            op, api = _EMBEDDINGS, None
        elif method == "POST" and path.endswith("/responses"):
            op, api = _CHAT, "responses"
        elif method == "GET" and _is_response_retrieve(path):
            op, api = _FETCH_RESPONSE, "responses"
        else:
            attrs: dict[str, AttributeValue] = {gen_ai.PROVIDER_NAME: provider}
            if host:
                attrs[gen_ai.SERVER_ADDRESS] = host
                if port:
                    attrs[gen_ai.SERVER_PORT] = port
            model = body.get("model")
            if isinstance(model, str):
                attrs[gen_ai.REQUEST_MODEL] = model
            return GenericCall(f"openai {method} {route_template(full_path(client, path))}", attrs)

        model = body.get("model")
        streaming = bool(stream or body.get("stream"))
        inv = LLMInvocation(
            op,
            provider,
            request_model=model if isinstance(model, str) else None,
            server_address=host,
            server_port=port,
            streaming=streaming,
        )
        attrs = inv.attributes
        if api is not None and provider in (_OPENAI, _AZURE):
            attrs[gen_ai.OPENAI_API_TYPE] = api
        new_options = None
        if op == _EMBEDDINGS:
            enc = body.get("encoding_format")
            if isinstance(enc, str):
                attrs[gen_ai.REQUEST_ENCODING_FORMATS] = [enc]
            return Call(inv, _on_embeddings)
        if op == _FETCH_RESPONSE:
            return Call(inv, _on_response, (lambda: ResponsesAccumulator(inv)) if streaming else None)
        _request_params(body, attrs)
        if api == "responses":
            prev = body.get("previous_response_id")
            if isinstance(prev, str):
                attrs[gen_ai.REQUEST_PREVIOUS_RESPONSE_ID] = prev
            conv = body.get("conversation")
            conv_id = conv if isinstance(conv, str) else f(conv, "id")
            if isinstance(conv_id, str):
                inv.conversation_id = conv_id
            return Call(
                inv,
                _on_response,
                (lambda: ResponsesAccumulator(inv)) if streaming else None,
                content=lambda i: _responses_content(i, body),
            )
        hide_usage = False
        if streaming and self.include_usage and not f(body.get("stream_options"), "include_usage"):
            new_body = dict(body)
            new_body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
            new_options = options.model_copy(update={"json_data": new_body})
            hide_usage = True
        legacy = op == _TEXT_COMPLETION
        return Call(
            inv,
            _on_completion if legacy else _on_chat,
            (lambda: ChatAccumulator(inv, hide_usage, legacy)) if streaming else None,
            options=new_options,
            content=lambda i: _completion_content(i, body) if legacy else _chat_content(i, body),
        )


def _is_response_retrieve(path: str) -> bool:
    """``GET .../responses/{id}`` (not ``.../responses/{id}/input_items``)."""
    _, sep, tail = path.rstrip("/").rpartition("/responses/")
    return bool(sep) and bool(tail) and "/" not in tail


def _chat_content(inv: LLMInvocation, body: dict[str, Any]) -> None:
    inv.input_messages = list(om.chat_input_messages(body.get("messages")))
    tools = body.get("tools") or body.get("functions")
    if tools:
        if body.get("functions") and not body.get("tools"):
            tools = [{"type": "function", "function": t} for t in tools]
        inv.tool_definitions = list(om.tool_definitions(tools))


def _completion_content(inv: LLMInvocation, body: dict[str, Any]) -> None:
    inv.input_messages = list(om.completion_input_messages(body.get("prompt")))


def _responses_content(inv: LLMInvocation, body: dict[str, Any]) -> None:
    inv.input_messages = list(om.responses_input_messages(body.get("input")))
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        inv.system_instructions = [m.text(instructions)]
    tools = body.get("tools")
    if tools:
        inv.tool_definitions = list(om.tool_definitions(tools))


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """GenAI spans and metrics for the ``openai`` SDK (1.x-3.x). See the module docstring."""

    _patch: SDKPatch | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        settings = load_settings(
            capture=kwargs.get("capture_content"),
            content_max_length=kwargs.get("content_max_length"),
            openai_stream_include_usage=kwargs.get("stream_include_usage"),
        )
        tel = LLMTelemetry(
            settings,
            scope="spyglass.instrumentation.openai",
            version=_version(),
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            logger_provider=kwargs.get("logger_provider"),
            completion_hook=kwargs.get("completion_hook"),
        )
        self._patch = SDKPatch("openai", OpenAIAdapter(tel, settings), _raw_types("openai"))
        self._patch.apply(kwargs.get("tracer_provider"))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patch is not None:
            self._patch.remove()
            self._patch = None


def _raw_types(sdk: str) -> tuple[type, ...]:
    import importlib

    out: list[type] = []
    for module, name in (
        (f"{sdk}._legacy_response", "LegacyAPIResponse"),
        (f"{sdk}._response", "APIResponse"),
        (f"{sdk}._response", "AsyncAPIResponse"),
    ):
        try:
            out.append(getattr(importlib.import_module(module), name))
        except Exception:  # noqa: S112 - an SDK version without that class
            continue
    return tuple(out)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("spyglass")
    except Exception:
        return ""
