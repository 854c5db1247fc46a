"""The gateway's OTTL ``replace_pattern`` statements redact PII inside gen_ai.* content and keep the JSON valid.

The statements are parsed out of gateway.yaml and run here with Python's ``re``: for patterns without
look-around or backreferences (checked), Go's RE2 and Python pick the same leftmost-first matches.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from tests.collector_config._otelcol import load
from tests.collector_config.test_configs import _assert_re2_compatible

_OTTL_STRING = r'"((?:[^"\\]|\\.)*)"'
_STATEMENT = re.compile(
    rf"replace_pattern\(attributes\[{_OTTL_STRING}\], {_OTTL_STRING}, {_OTTL_STRING}\)",
)
KINDS = ("SECRET", "EMAIL", "IBAN", "CARD", "SSN", "PHONE", "IP")


@dataclass(frozen=True)
class Statement:
    context: str
    attribute: str
    pattern: re.Pattern[str]
    replacement: str


def _ottl_unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _statements() -> list[Statement]:
    transform = load("gateway.yaml")["processors"]["transform/genai_pii"]
    out = []
    for group in transform["trace_statements"]:
        for raw in group["statements"]:
            match = _STATEMENT.fullmatch(raw)
            assert match, f"not a replace_pattern statement: {raw}"
            attribute, pattern, replacement = (_ottl_unquote(g) for g in match.groups())
            _assert_re2_compatible(pattern)
            out.append(Statement(group["context"], attribute, re.compile(pattern), replacement))
    return out


STATEMENTS = _statements()


def redact(text: str, attribute: str = gen_ai.INPUT_MESSAGES, context: str = "span") -> str:
    for s in STATEMENTS:
        if s.context == context and s.attribute == attribute:
            text = s.pattern.sub(s.replacement, text)
    return text


def test_every_content_attribute_gets_every_pii_class() -> None:
    span_content = {
        gen_ai.INPUT_MESSAGES,
        gen_ai.OUTPUT_MESSAGES,
        gen_ai.SYSTEM_INSTRUCTIONS,
        gen_ai.TOOL_CALL_ARGUMENTS,
        gen_ai.TOOL_CALL_RESULT,
        ext.STEP_INPUT,
        ext.STEP_OUTPUT,
    }
    event_content = {gen_ai.INPUT_MESSAGES, gen_ai.OUTPUT_MESSAGES, gen_ai.SYSTEM_INSTRUCTIONS, "exception.message"}
    for context, attributes in (("span", span_content), ("spanevent", event_content)):
        for attribute in attributes:
            kinds = [s.replacement for s in STATEMENTS if s.context == context and s.attribute == attribute]
            assert kinds == [f"[REDACTED:{k}]" for k in KINDS], (context, attribute)
        assert {s.attribute for s in STATEMENTS if s.context == context} == attributes
    # One pattern per class, the same for every attribute.
    for kind in KINDS:
        assert len({s.pattern.pattern for s in STATEMENTS if s.replacement == f"[REDACTED:{kind}]"}) == 1


POSITIVES = [
    ("EMAIL", "jane.doe@example.com"),
    ("EMAIL", "ops+alerts@mail.example.co.uk"),
    ("PHONE", "+1 415 555 0132"),
    ("PHONE", "+44 20 7946 0958"),
    ("PHONE", "+49 (30) 1234 5678"),
    ("PHONE", "(415) 555-0132"),
    ("PHONE", "415.555.0132"),
    ("CARD", "4111 1111 1111 1111"),
    ("CARD", "5500-0000-0000-0004"),
    ("CARD", "4012888888881881"),
    ("CARD", "378282246310005"),
    ("SSN", "123-45-6789"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82WEST12345698765432"),
    ("IP", "192.168.1.20"),
    ("IP", "10.0.0.1"),
    ("SECRET", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"),
    ("SECRET", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("SECRET", "AKIAIOSFODNN7EXAMPLE"),
    ("SECRET", "ghp_" + "a1B2c3D4e5" * 4),
    ("SECRET", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("SECRET", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"),
]

NEGATIVES = [
    "order #A-10023 shipped",
    "released on 2024-05-01 at 12:30:45",
    "upgrade to version 3.12.4",
    "request 550e8400-e29b-41d4-a716-446655440000",
    "it costs $19.99 or 3.14159 units",
    "model gpt-4o-mini-2024-07-18",
    "timestamp 1700000000000",
    "ISO 8601 and RFC 3339",
    "room 404, floor 12",
]


@pytest.mark.parametrize(("kind", "value"), POSITIVES)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_pii_in_message_json_is_masked_and_json_stays_valid(kind: str, value: str, ensure_ascii: bool) -> None:
    text = f"Hi, reach me (café) at\n{value}\tthanks"
    messages = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
    redacted = redact(json.dumps(messages, ensure_ascii=ensure_ascii))
    decoded = json.loads(redacted)
    content = decoded[0]["parts"][0]["content"]
    assert f"[REDACTED:{kind}]" in content
    assert value not in content
    assert content.startswith("Hi, reach me (caf") and content.endswith("thanks")


@pytest.mark.parametrize("text", NEGATIVES)
def test_hard_negatives_are_left_alone(text: str) -> None:
    encoded = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
    assert redact(encoded) == encoded


def test_event_context_and_exception_messages_are_redacted() -> None:
    assert redact("card 4111 1111 1111 1111 declined", "exception.message", "spanevent") == (
        "card [REDACTED:CARD] declined"
    )
    assert "[REDACTED:EMAIL]" in redact('"a@b.io"', gen_ai.OUTPUT_MESSAGES, "spanevent")


_PII = st.sampled_from([v for _, v in POSITIVES])
# Letters, digits, separators, quotes, backslashes (JSON escapes), non-ASCII (\uXXXX escapes when ensure_ascii).
_FILLER = st.text(alphabet=st.sampled_from([*'ab Z\\\n\t"/-.:@+()01', "\u00e9", "\U0001f600"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.tuples(_FILLER, _PII), min_size=1, max_size=4), tail=_FILLER, ensure_ascii=st.booleans())
def test_random_content_around_pii_stays_valid_json(
    pieces: list[tuple[str, str]], tail: str, ensure_ascii: bool
) -> None:
    text = "".join(a + b for a, b in pieces) + tail
    arguments = {"query": text, "n": 3}
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": text}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "search", "arguments": arguments}],
        },
    ]
    redacted = json.loads(redact(json.dumps(messages, ensure_ascii=ensure_ascii)))
    assert [m["role"] for m in redacted] == ["system", "user", "assistant"]
    assert redacted[0]["parts"][0]["content"] == "be brief"
    assert redacted[2]["parts"][0]["arguments"]["n"] == 3
    for _, value in pieces:
        assert value not in redacted[1]["parts"][0]["content"]
        assert value not in redacted[2]["parts"][0]["arguments"]["query"]
