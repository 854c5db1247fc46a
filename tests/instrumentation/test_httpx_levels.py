"""One recorded SDK call traced at the SDK level and at the HTTP level alone gives the same response side.

The HTTP level reads OpenAI and Anthropic events from their decoded dicts with its own ``accumulate`` (the
adapters' read SDK objects); this keeps the two readings in step over every recording the SDKs replay.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from spyglass.instrumentation import AnthropicInstrumentor, HttpxInstrumentor, OpenAIInstrumentor
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.testing.replay import Recording
from tests.conftest import Telemetry, recordings

from .llm_support import anthropic_client, llm_spans, openai_client, sdk_call

_ROUTES = ("/chat/completions", "/completions", "/responses", "/v1/messages", "/v1/complete")
CALLS = [
    r
    for r in recordings("openai__") + recordings("azure_openai__") + recordings("anthropic__")
    if r.status < 400 and r.route.endswith(_ROUTES)
]
_SAME = (
    gen_ai.RESPONSE_ID,
    gen_ai.RESPONSE_MODEL,
    gen_ai.RESPONSE_FINISH_REASONS,
    gen_ai.USAGE_INPUT_TOKENS,
    gen_ai.USAGE_OUTPUT_TOKENS,
    gen_ai.USAGE_CACHE_READ_INPUT_TOKENS,
    gen_ai.USAGE_CACHE_WRITE_INPUT_TOKENS,
    gen_ai.USAGE_REASONING_OUTPUT_TOKENS,
    gen_ai.INPUT_MESSAGES,
    gen_ai.SYSTEM_INSTRUCTIONS,
    gen_ai.TOOL_DEFINITIONS,
    gen_ai.OUTPUT_MESSAGES,
    gen_ai.ERROR_TYPE,
)


def _traced(rec: Recording, replay: Any, inst: Any) -> dict[str, Any]:
    tel = Telemetry()
    inst.instrument(tracer_provider=tel.tracer_provider)
    try:
        replay.expect(rec)
        result = sdk_call(rec, openai_client(replay, rec), anthropic_client(replay))()
        if hasattr(result, "__next__"):
            for _ in result:
                pass
        (span,) = llm_spans(tel)
        return dict(span.attributes or {})
    finally:
        inst.uninstrument()
        tel.shutdown()


def test_every_kind_of_call_is_compared() -> None:
    kinds = {(r.provider, r.route.rsplit("/", 1)[-1], r.streaming) for r in CALLS}
    for provider in ("openai", "anthropic"):
        assert (provider, "messages" if provider == "anthropic" else "completions", True) in kinds
        assert (provider, "messages" if provider == "anthropic" else "completions", False) in kinds
    assert ("openai", "responses", True) in kinds


@pytest.mark.parametrize("rec", CALLS, ids=lambda r: r.name)
def test_sdk_level_and_http_level_record_the_same_response(rec: Recording, replay: Any) -> None:
    sdk = _traced(rec, replay, AnthropicInstrumentor() if rec.provider == "anthropic" else OpenAIInstrumentor())
    http = _traced(rec, replay, HttpxInstrumentor())
    assert http[ext.HTTP_RAW] is True and ext.HTTP_RAW not in sdk
    # Content compared as JSON values: a block the SDK returns as a model is dumped in its fields' order.
    assert _values(http) == _values(sdk)


def _values(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(attrs[k]) if k in gen_ai.CONTENT_ATTRIBUTES and k in attrs else attrs.get(k) for k in _SAME}
