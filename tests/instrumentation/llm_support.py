"""Helpers for the LM-call instrumentation tests: instrumented SDK clients against the replay server, and the
expected values read straight from a recording (independently of the instrumentation's own parsing)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from spyglass.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor
from spyglass.semconv import gen_ai
from spyglass.testing.replay import Recording, ReplayServer
from tests.conftest import Telemetry

AZURE_API_VERSION = "2024-10-21"


@pytest.fixture
def instrumented(telemetry: Telemetry) -> Iterator[Telemetry]:
    """Both instrumentors on, exporting to the in-memory telemetry; off again afterwards."""
    OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    AnthropicInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    yield telemetry
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()


def openai_client(server: ReplayServer, rec: Recording | None = None, aio: bool = False) -> Any:
    if rec is not None and rec.provider == "azure_openai":
        cls = openai.AsyncAzureOpenAI if aio else openai.AzureOpenAI
        deployment = rec.route.split("/deployments/", 1)[1].split("/", 1)[0]
        return cls(
            azure_endpoint=server.url,
            azure_deployment=deployment,
            api_key="test",
            api_version=AZURE_API_VERSION,
            max_retries=0,
        )
    cls = openai.AsyncOpenAI if aio else openai.OpenAI
    return cls(base_url=server.url + "/v1", api_key="test", max_retries=0)


def anthropic_client(server: ReplayServer, aio: bool = False) -> Any:
    cls = anthropic.AsyncAnthropic if aio else anthropic.Anthropic
    return cls(base_url=server.url, api_key="test", max_retries=0)


def split_kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as keyword arguments of an SDK method; keys it does not take go through ``extra_body``."""
    params = inspect.signature(method).parameters
    kwargs = {k: v for k, v in body.items() if k in params}
    extra = {k: v for k, v in body.items() if k not in params}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def sdk_call(rec: Recording, oai: Any, ant: Any) -> Any:
    """The SDK method a recording's request came from (the generic ``post`` for retired endpoints)."""
    route = rec.route
    body = dict(rec.request_body or {})
    beta = "beta=true" in rec.path
    if rec.provider in ("openai", "azure_openai"):
        if route.endswith("/chat/completions"):
            fn = oai.chat.completions.create
        elif route.endswith("/completions"):
            fn = oai.completions.create
        elif route.endswith("/embeddings"):
            fn = oai.embeddings.create
        elif route.endswith("/responses"):
            fn = oai.responses.create
        else:
            raise AssertionError(route)
        return lambda: fn(**split_kwargs(fn, body))
    if route.endswith("/v1/complete"):
        stream = bool(body.get("stream"))
        return lambda: ant.post(
            "/v1/complete",
            body=body,
            cast_to=object,
            stream=stream,
            stream_cls=anthropic.Stream[object] if stream else None,
        )
    messages = ant.beta.messages if beta else ant.messages
    fn = messages.count_tokens if route.endswith("/count_tokens") else messages.create
    return lambda: fn(**split_kwargs(fn, body))


def sse_data(rec: Recording) -> list[Any]:
    out = []
    for event in rec.events():
        for line in event.splitlines():
            if line.startswith("data:"):
                payload = line[5:].strip()
                if payload and payload != "[DONE]":
                    out.append(json.loads(payload))
    return out


def expected(rec: Recording) -> dict[str, Any]:
    """Span attributes a recording implies (response id/model, finish reasons, usage), computed from its body."""
    exp: dict[str, Any] = {}
    if rec.status >= 400:
        return exp
    if rec.provider == "anthropic":
        return _expected_anthropic(rec)
    route = rec.route
    if not rec.streaming:
        body = rec.json
        if route.endswith("/embeddings"):
            exp[gen_ai.RESPONSE_MODEL] = body["model"]
            exp[gen_ai.USAGE_INPUT_TOKENS] = body["usage"]["prompt_tokens"]
            return exp
        if route.endswith("/responses"):
            return _expected_response(body)
        if "error" in body and "id" not in body:  # Azure content filter recorded as a 200 with an error body
            return {gen_ai.ERROR_TYPE: body["error"]["code"]}
        exp[gen_ai.RESPONSE_ID] = body["id"]
        exp[gen_ai.RESPONSE_MODEL] = body["model"]
        exp[gen_ai.RESPONSE_FINISH_REASONS] = tuple(c["finish_reason"] for c in body["choices"])
        _chat_usage(exp, body.get("usage"))
        return exp
    chunks = sse_data(rec)
    if route.endswith("/responses"):
        final = [c["response"] for c in chunks if c.get("type") in ("response.completed", "response.incomplete")]
        return _expected_response(final[-1]) if final else exp
    reasons: dict[int, str] = {}
    for c in chunks:
        if c.get("id") and gen_ai.RESPONSE_ID not in exp:
            exp[gen_ai.RESPONSE_ID] = c["id"]
            exp[gen_ai.RESPONSE_MODEL] = c["model"]
        for ch in c.get("choices") or ():
            reasons.setdefault(ch["index"], None)  # type: ignore[arg-type]
            if ch.get("finish_reason"):
                reasons[ch["index"]] = ch["finish_reason"]
        if c.get("usage"):
            _chat_usage(exp, c["usage"])
    exp[gen_ai.RESPONSE_FINISH_REASONS] = tuple(reasons[i] or "error" for i in sorted(reasons))
    return exp


def _chat_usage(exp: dict[str, Any], usage: Any) -> None:
    if not usage:
        return
    exp[gen_ai.USAGE_INPUT_TOKENS] = usage["prompt_tokens"]
    if "completion_tokens" in usage:
        exp[gen_ai.USAGE_OUTPUT_TOKENS] = usage["completion_tokens"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached:
        exp[gen_ai.USAGE_CACHE_READ_INPUT_TOKENS] = cached
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        exp[gen_ai.USAGE_REASONING_OUTPUT_TOKENS] = reasoning


def _expected_response(body: dict[str, Any]) -> dict[str, Any]:
    exp: dict[str, Any] = {gen_ai.RESPONSE_ID: body["id"], gen_ai.RESPONSE_MODEL: body["model"]}
    if body.get("error"):
        exp[gen_ai.ERROR_TYPE] = body["error"]["code"]
    usage = body.get("usage")
    if usage:
        exp[gen_ai.USAGE_INPUT_TOKENS] = usage["input_tokens"]
        exp[gen_ai.USAGE_OUTPUT_TOKENS] = usage["output_tokens"]
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
        if cached:
            exp[gen_ai.USAGE_CACHE_READ_INPUT_TOKENS] = cached
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
        if reasoning:
            exp[gen_ai.USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    return exp


def _anthropic_usage(exp: dict[str, Any], usage: dict[str, Any]) -> None:
    keys = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    if any(usage.get(k) is not None for k in keys):
        exp[gen_ai.USAGE_INPUT_TOKENS] = sum(usage.get(k) or 0 for k in keys)
    if usage.get("cache_read_input_tokens"):
        exp[gen_ai.USAGE_CACHE_READ_INPUT_TOKENS] = usage["cache_read_input_tokens"]
    if usage.get("cache_creation_input_tokens"):
        exp[gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS] = usage["cache_creation_input_tokens"]
    if usage.get("output_tokens") is not None:
        exp[gen_ai.USAGE_OUTPUT_TOKENS] = usage["output_tokens"]


def _expected_anthropic(rec: Recording) -> dict[str, Any]:
    exp: dict[str, Any] = {}
    if rec.route.endswith("/count_tokens"):
        return exp
    if not rec.streaming:
        body = rec.json
        exp[gen_ai.RESPONSE_ID] = body["id"]
        exp[gen_ai.RESPONSE_MODEL] = body["model"]
        exp[gen_ai.RESPONSE_FINISH_REASONS] = (body["stop_reason"],)
        if body.get("usage"):
            _anthropic_usage(exp, body["usage"])
        return exp
    stop = None
    for ev in sse_data(rec):
        kind = ev.get("type")
        if kind == "message_start":
            exp[gen_ai.RESPONSE_ID] = ev["message"]["id"]
            exp[gen_ai.RESPONSE_MODEL] = ev["message"]["model"]
            _anthropic_usage(exp, ev["message"].get("usage") or {})
        elif kind == "message_delta":
            stop = (ev.get("delta") or {}).get("stop_reason") or stop
            usage = ev.get("usage") or {}
            if any(usage.get(k) is not None for k in ("input_tokens", "cache_read_input_tokens")):
                _anthropic_usage(exp, usage)
            elif usage.get("output_tokens") is not None:
                exp[gen_ai.USAGE_OUTPUT_TOKENS] = usage["output_tokens"]
        elif kind == "completion":
            exp[gen_ai.RESPONSE_ID] = ev["id"]
            exp[gen_ai.RESPONSE_MODEL] = ev["model"]
            stop = ev.get("stop_reason") or stop
    exp[gen_ai.RESPONSE_FINISH_REASONS] = (stop or "error",)
    return exp


def llm_spans(telemetry: Telemetry) -> list[Any]:
    """Finished spans that are LM calls or other calls through an SDK client (any provider attribute)."""
    return [s for s in telemetry.spans() if gen_ai.PROVIDER_NAME in (s.attributes or {})]
