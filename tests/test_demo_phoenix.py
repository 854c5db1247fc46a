"""The demo's traffic in Phoenix: the same sample app, zero-code through the Spyglass exporter, sent to Arize
Phoenix (from PyPI, on 127.0.0.1) instead of the store; Phoenix's REST API must show every LM call as an LLM
span with the recorded token counts and the messages."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from opentelemetry.sdk.environment_variables import OTEL_RESOURCE_ATTRIBUTES

from spyglass.store._demo import run_app
from spyglass.testing import sample_app
from tests.phoenix import Phoenix
from tests.test_demo_app import expected_calls

PROJECT = "spyglass-demo"
PHOENIX_PROJECT_ATTRIBUTE = "openinference.project.name"
"""Phoenix's own resource attribute for the project a span belongs to (not a Spyglass name)."""


def _flattened(attrs: dict[str, Any], prefix: str) -> str:
    """Every value under ``prefix`` (Phoenix stores messages as ``llm.input_messages.0.message.content``...)."""
    return json.dumps({k: v for k, v in attrs.items() if k.startswith(prefix)})


@pytest.mark.phoenix
@pytest.mark.timeout(400)
def test_phoenix_shows_every_demo_call_as_an_llm_span_with_tokens_and_messages(
    phoenix: Phoenix,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OTEL_RESOURCE_ATTRIBUTES, f"{PHOENIX_PROJECT_ATTRIBUTE}={PROJECT}")
    output: list[str] = []
    assert run_app(phoenix.otlp_http_endpoint, echo=output.append) == 0, "\n".join(output)

    expected = expected_calls()
    # The app exits after its exporter flushed; Phoenix writes what it accepted in the background.
    deadline = time.monotonic() + 60
    llm: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        llm = [s for s in phoenix.spans(PROJECT, limit=500) if s["span_kind"] == "LLM"]
        if len(llm) >= len(expected):
            break
        time.sleep(0.5)
    assert len(llm) == len(expected) == sample_app.CALLS, [s["name"] for s in llm]
    llm.sort(key=lambda s: s["start_time"])
    for span, want in zip(llm, expected, strict=True):
        attrs = span["attributes"]
        where = want.recording
        assert attrs["llm.model_name"] in {want.request_model, want.response_model}, where
        inputs = _flattened(attrs, "llm.input_messages.")
        if want.question:
            assert json.dumps(want.question)[1:-1] in inputs, where
        if not want.ok:
            assert span["status_code"] == "ERROR", where
            continue
        assert attrs["llm.token_count.prompt"] == want.input_tokens, where
        assert attrs["llm.token_count.completion"] == want.output_tokens, where
        assert json.dumps(want.answer)[1:-1] in _flattened(attrs, "llm.output_messages."), where
    # The steps arrive as Phoenix's own kinds too.
    kinds = {s["name"]: s["span_kind"] for s in phoenix.spans(PROJECT, limit=500)}
    assert kinds["invoke_agent weather_agent"] == "AGENT"
    assert kinds["execute_tool get_current_weather"] == "TOOL"
    assert kinds["retrieval demo-corpus"] == "RETRIEVER"
