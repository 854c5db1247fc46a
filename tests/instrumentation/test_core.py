"""The provider-neutral core: settings, provider detection, the content size policy."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spyglass.instrumentation._config import DEFAULT_CONTENT_MAX_LENGTH, load_settings, parse_capture
from spyglass.instrumentation._content import blob_part, data_url_part, truncate_json
from spyglass.instrumentation._providers import provider_for_host, server_of
from spyglass.instrumentation._telemetry import error_type_of
from spyglass.semconv import extensions as ext
from spyglass.semconv.validation import validate
from spyglass.semconv.values import ContentCapture


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, ContentCapture.SPAN_ONLY),
        ("", ContentCapture.SPAN_ONLY),
        ("NO_CONTENT", ContentCapture.NO_CONTENT),
        ("span_and_event", ContentCapture.SPAN_AND_EVENT),
        ("EVENT_ONLY", ContentCapture.EVENT_ONLY),
        ("true", ContentCapture.SPAN_ONLY),
        ("False", ContentCapture.NO_CONTENT),
    ],
)
def test_capture_mode_values(value: str | None, mode: ContentCapture) -> None:
    assert parse_capture(value) is mode


def test_bad_values_warn_and_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        s = load_settings(
            {
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "everything",
                "OTEL_SPYGLASS_CONTENT_MAX_LENGTH": "-3",
                "OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE": "maybe",
            }
        )
    assert s.capture is ContentCapture.SPAN_ONLY
    assert s.content_max_length == DEFAULT_CONTENT_MAX_LENGTH
    assert s.openai_stream_include_usage is False
    assert len(caplog.records) == 3


def test_precedence() -> None:
    env = {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "1000", "OTEL_SPYGLASS_CONTENT_MAX_LENGTH": "50"}
    assert load_settings(env).content_max_length == 1000  # the official limit wins over ours
    assert load_settings({"OTEL_SPYGLASS_CONTENT_MAX_LENGTH": "50"}).content_max_length == 50
    assert load_settings(env, content_max_length=77).content_max_length == 77  # arguments win
    s = load_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"})
    assert s.emit_event is True
    s = load_settings(
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
            "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT": "false",
        }
    )
    assert s.emit_event is False
    with pytest.raises(ValueError, match="content_max_length"):
        load_settings({}, content_max_length=0)
    assert load_settings({}, capture=False).capture is ContentCapture.NO_CONTENT
    assert load_settings({}, capture="span_and_event").emit_event is True
    with pytest.raises(ValueError, match="SOMETIMES"):
        load_settings({}, capture="sometimes")


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("api.openai.com", "openai"),
        ("my-resource.openai.azure.com", "azure.ai.openai"),
        ("api.groq.com", "groq"),
        ("api.deepseek.com", "deepseek"),
        ("api.mistral.ai", "mistral_ai"),
        ("api.x.ai", "x_ai"),
        ("openrouter.ai", "openrouter"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("us-east5-aiplatform.googleapis.com", "gcp.vertex_ai"),  # AnthropicVertex
        ("bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock"),  # AnthropicBedrock
        ("api.anthropic.com", "anthropic"),
        ("llm.internal.example", "openai"),
        (None, "openai"),
    ],
)
def test_provider_from_host(host: str | None, provider: str) -> None:
    assert provider_for_host(host) == provider


def test_server_of() -> None:
    assert server_of("https://api.openai.com/v1") == ("api.openai.com", 443)
    assert server_of("http://127.0.0.1:8080/v1") == ("127.0.0.1", 8080)
    assert provider_for_host("localhost", "openai", 11434) == "ollama"
    assert server_of(None) == (None, None)


def test_error_type_names() -> None:
    import openai

    assert error_type_of(ValueError("x")) == "ValueError"
    err = openai.APIConnectionError(request=None)  # type: ignore[arg-type]
    assert error_type_of(err) == "openai.APIConnectionError"


def test_blob_placeholders() -> None:
    payload = base64.b64encode(b"\x89PNG" + b"\0" * 100).decode()
    part = data_url_part(f"data:image/png;base64,{payload}")
    assert part == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/png",
        "content": "",
        "byte_size": 104,
        ext.PART_OMITTED: True,
    }
    assert data_url_part("https://example.com/cat.png")["type"] == "uri"
    assert blob_part(b"abc", "audio", "audio/wav")["byte_size"] == 3
    validate([{"role": "user", "parts": [part]}], "InputMessages")


def test_truncation_keeps_valid_json_and_marks_the_part() -> None:
    msgs = [
        {"role": "system", "parts": [{"type": "text", "content": "short"}]},
        {"role": "user", "parts": [{"type": "text", "content": "é" * 5000}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "f", "arguments": {"q": "x" * 3000}}]},
    ]
    text, cut = truncate_json(msgs, 1000)
    assert cut and len(text) <= 1000
    out = json.loads(text)
    validate(out, "InputMessages")
    assert out[0]["parts"][0]["content"] == "short"  # short strings are left alone
    assert out[1]["parts"][0][ext.PART_TRUNCATED] is True
    assert out[1]["parts"][0][ext.PART_ORIGINAL_SIZE] == 5000
    assert msgs[1]["parts"][0]["content"] == "é" * 5000  # the caller's objects are never touched
    assert truncate_json(msgs[:1], 1000) == (json.dumps(msgs[:1], separators=(",", ":")), False)


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
_part = st.one_of(
    st.builds(lambda c: {"type": "text", "content": c}, _text),
    st.builds(lambda c: {"type": "reasoning", "content": c}, _text),
    st.builds(lambda a: {"type": "tool_call", "id": None, "name": "f", "arguments": {"a": a}}, _text),
)
_messages = st.lists(
    st.builds(
        lambda role, parts: {"role": role, "parts": parts},
        st.sampled_from(["user", "assistant"]),
        st.lists(_part, max_size=6),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(msgs=_messages, limit=st.integers(min_value=120, max_value=3000))
def test_truncation_property(msgs: list[Any], limit: int) -> None:
    text, cut = truncate_json(msgs, limit)
    assert len(text) <= limit
    out = json.loads(text)
    validate(out, "InputMessages")
    if not cut:
        assert out == msgs
