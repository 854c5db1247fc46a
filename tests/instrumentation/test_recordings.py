"""Every OpenAI, Azure OpenAI and Anthropic recording, replayed through the official SDK with the instrumentors
on: exactly one span per call, attributes equal to what the recording says, messages valid per the schema."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from spyglass.semconv import gen_ai
from spyglass.semconv.validation import validate_span_content
from tests.conftest import recordings

from .llm_support import anthropic_client, expected, openai_client, sdk_call

RECORDINGS = recordings("openai__") + recordings("azure_openai__") + recordings("anthropic__")
_OPS = {
    "/chat/completions": "chat",
    "/responses": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
    "/v1/messages": "chat",
    "/v1/complete": "text_completion",
}


def _operation(route: str) -> str | None:
    for suffix, op in _OPS.items():
        if route.endswith(suffix):
            return op
    return None


def _consume(result: Any) -> None:
    if hasattr(result, "__next__"):
        for _ in result:
            pass


@pytest.mark.parametrize("rec", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_recording_replayed_through_sdk(rec: Any, replay: Any, instrumented: Any) -> None:
    replay.expect(rec)
    oai = openai_client(replay, rec)
    ant = anthropic_client(replay)
    error: BaseException | None = None
    try:
        _consume(sdk_call(rec, oai, ant)())
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        error = exc
    assert not replay.pending, "the SDK never sent the recorded request"

    spans = [s for s in instrumented.spans() if gen_ai.PROVIDER_NAME in (s.attributes or {})]
    assert len(spans) == 1, [s.name for s in instrumented.spans()]
    span = spans[0]
    attrs = dict(span.attributes or {})
    assert span.kind is SpanKind.CLIENT
    provider = {"openai": "openai", "azure_openai": "azure.ai.openai", "anthropic": "anthropic"}[rec.provider]
    assert attrs[gen_ai.PROVIDER_NAME] == provider
    assert attrs[gen_ai.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[gen_ai.SERVER_PORT] == replay.port
    assert "gen_ai.system" not in attrs

    op = _operation(rec.route)
    model = (rec.request_body or {}).get("model")
    if op is not None:
        assert attrs[gen_ai.OPERATION_NAME] == op
        assert span.name == f"{op} {model}"
        assert attrs[gen_ai.REQUEST_MODEL] == model
        assert bool(attrs.get(gen_ai.REQUEST_STREAM)) == bool((rec.request_body or {}).get("stream"))
    else:  # count_tokens: a basic span for a non-inference endpoint
        assert gen_ai.OPERATION_NAME not in attrs

    if rec.status >= 400:
        assert error is not None and error.status_code == rec.status
        assert span.status.status_code is StatusCode.ERROR
        module = "openai" if rec.provider != "anthropic" else "anthropic"
        assert attrs[gen_ai.ERROR_TYPE] == f"{module}.{type(error).__name__}"
        assert any(e.name == "exception" for e in span.events)
        return
    assert error is None
    exp = expected(rec)
    assert span.status.status_code is (StatusCode.ERROR if gen_ai.ERROR_TYPE in exp else StatusCode.UNSET)
    for key, value in exp.items():
        assert attrs.get(key) == value, key
    if gen_ai.ERROR_TYPE in exp:
        return
    if op in ("chat", "text_completion"):
        assert validate_span_content(attrs) >= 2  # input and output messages at least
        assert gen_ai.INPUT_MESSAGES in attrs and gen_ai.OUTPUT_MESSAGES in attrs
