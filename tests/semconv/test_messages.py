from __future__ import annotations

import json

import pytest

from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.semconv.validation import MessageValidationError, validate, validate_span_content


def test_every_part_kind_serializes_to_schema_valid_json() -> None:
    msgs = [
        m.message("system", [m.text("Be brief.")]),
        m.message(
            "user",
            [
                m.text("What is in this picture?"),
                m.uri("https://example.com/cat.png", "image", "image/png"),
                m.blob(b"RIFF....WAVE", "audio", "audio/wav"),
                m.file("file-abc123", "document", "application/pdf"),
            ],
        ),
        m.message(
            "assistant",
            [
                m.reasoning("The user wants..."),
                m.tool_call("get_weather", {"location": "Paris"}, id="call_1"),
                m.server_tool_call("web_search", {"type": "web_search", "query": "cats"}, id="ws_1"),
                m.server_tool_call_response({"type": "web_search", "results": []}, id="ws_1"),
            ],
        ),
        m.message("tool", [m.tool_call_response("rainy, 57°F", id="call_1")]),
    ]
    encoded = m.dumps(msgs)
    assert json.loads(encoded) == msgs
    assert encoded.startswith('[{"role":"system","parts":[{"type":"text"')  # compact separators
    assert "°" in encoded  # UTF-8 text kept, not \\u-escaped
    validate(encoded, "InputMessages")
    validate([m.output_message("assistant", [m.text("hi")], finish_reason="stop")], "OutputMessages")
    validate([m.text("You are a translator.")], "SystemInstructions")
    validate([m.function_tool("f", "does f", {"type": "object"})], "ToolDefinitions")


def test_blob_size_and_bytes_encoding() -> None:
    part = m.blob(b"\x00\x01\x02\x03", "image", "image/png")
    assert part["content"] == "AAECAw==" and part["byte_size"] == 4
    assert m.blob("AAECAw==", "image")["byte_size"] == 4
    assert m.dumps({"b": b"hi"}) == '{"b":"aGk="}'


@pytest.mark.parametrize(
    ("value", "kind", "fragment"),
    [
        ('[{"role": "user"}]', "InputMessages", "'parts' is a required property"),
        ('[{"parts": []}]', "InputMessages", "'role' is a required property"),
        ('{"role": "user", "parts": []}', "InputMessages", "is not of type 'array'"),
        ('[{"role": "user", "parts": [{"content": "x"}]}]', "InputMessages", "'type' is a required property"),
        ('[{"role": "user", "parts": [{"type": "text"}]}]', "InputMessages", "'content' is a required property"),
        ('[{"role": "user", "parts": [{"type": "text", "content": 3}]}]', "InputMessages", "not of type 'string'"),
        ('[{"role": "assistant", "parts": [{"type": "tool_call", "id": "1"}]}]', "OutputMessages", "'name'"),
        ('[{"role": "tool", "parts": [{"type": "tool_call_response", "id": "1"}]}]', "InputMessages", "'response'"),
        ('[{"role": "user", "parts": [{"type": "blob", "modality": "image"}]}]', "InputMessages", "'content'"),
        (
            '[{"role": "user", "parts": [{"type": "uri", "modality": "image", "uri": "data:image/png;base64,AA"}]}]',
            "InputMessages",
            "should not be valid",
        ),
        ('[{"type": "function"}]', "ToolDefinitions", "'name' is a required property"),
        ("[{not json", "InputMessages", "not valid JSON"),
    ],
)
def test_validator_rejects_malformed_messages(value: str, kind: str, fragment: str) -> None:
    with pytest.raises(MessageValidationError) as info:
        validate(value, kind)
    assert fragment in str(info.value)


def test_unknown_part_types_stay_allowed() -> None:
    # The spec's GenericPart: custom part types with any fields are valid.
    validate('[{"role": "user", "parts": [{"type": "x-custom", "anything": 1}]}]', "InputMessages")


def test_validate_span_content_checks_each_content_attribute() -> None:
    good = m.dumps([m.message("user", [m.text("hi")])])
    assert validate_span_content({gen_ai.INPUT_MESSAGES: good, gen_ai.OUTPUT_MESSAGES: "[]"}) == 2
    with pytest.raises(MessageValidationError, match="OutputMessages"):
        validate_span_content({gen_ai.OUTPUT_MESSAGES: '[{"parts": []}]'})
