"""The gateway's OTTL ``replace_pattern`` statements redact PII inside gen_ai.* content and keep the JSON valid.

The statements are parsed out of gateway.yaml and run here with Python's ``re``: for patterns without
look-around or backreferences (checked), Go's RE2 and Python pick the same leftmost-first matches. The
replacement goes through the collector's `$$` -> `$` config unescaping, then Go's ``regexp.Expand`` syntax
(``${1}``), which maps to Python's ``\\g<1>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spyglass.exporter import Redactor
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from tests.collector_config._otelcol import ROOT, load
from tests.collector_config.test_configs import _assert_re2_compatible

_OTTL_STRING = r'"((?:[^"\\]|\\.)*)"'
_STATEMENT = re.compile(
    rf"replace_pattern\(attributes\[{_OTTL_STRING}\], {_OTTL_STRING}, {_OTTL_STRING}\)",
)
KINDS = (
    "PRIVATE_KEY",
    "JWT",
    "API_KEY",
    "AWS_KEY",
    "GITHUB_TOKEN",
    "EMAIL",
    "IBAN",
    "CARD",
    "SSN",
    "PHONE",
    "IP_ADDRESS",
)
LABELLED = ROOT / "tests" / "fixtures" / "redaction" / "labelled.jsonl"


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
            # The collector turns `$$` into `$` when it loads the file; then Go's Expand reads ${1}.
            replacement = replacement.replace("$$", "$")
            assert re.fullmatch(r"\$\{1\}\[REDACTED:[A-Z_]+\]", replacement), replacement
            replacement = replacement.replace("${1}", r"\g<1>")
            compiled = re.compile(pattern)
            assert compiled.groups >= 1
            out.append(Statement(group["context"], attribute, compiled, replacement))
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
        gen_ai.RETRIEVAL_QUERY_TEXT,
        gen_ai.RETRIEVAL_DOCUMENTS,
        gen_ai.TOOL_CALL_ARGUMENTS,
        gen_ai.TOOL_CALL_RESULT,
        ext.STEP_INPUT,
        ext.STEP_OUTPUT,
    }
    event_content = {gen_ai.INPUT_MESSAGES, gen_ai.OUTPUT_MESSAGES, gen_ai.SYSTEM_INSTRUCTIONS, "exception.message"}
    for context, attributes in (("span", span_content), ("spanevent", event_content)):
        for attribute in attributes:
            kinds = [s.replacement for s in STATEMENTS if s.context == context and s.attribute == attribute]
            assert kinds == [rf"\g<1>[REDACTED:{k}]" for k in KINDS], (context, attribute)
        assert {s.attribute for s in STATEMENTS if s.context == context} == attributes
    # One pattern per class, the same for every attribute.
    for kind in KINDS:
        assert len({s.pattern.pattern for s in STATEMENTS if s.replacement.endswith(f"[REDACTED:{kind}]")}) == 1


def test_the_same_classes_as_the_exporter() -> None:
    assert set(KINDS) == set(Redactor().detector_names)


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
    ("IP_ADDRESS", "192.168.1.20"),
    ("IP_ADDRESS", "10.0.0.1"),
    ("IP_ADDRESS", "2001:db8::8a2e:370:7334"),
    ("API_KEY", "sk-proj-" + "AbCdEfGhIjKlMnOp" * 2),
    ("API_KEY", "sk-ant-api03-" + "AbCdEfGhIjKlMnOp" * 3),
    ("AWS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("GITHUB_TOKEN", "ghp_" + "a1B2c3D4e5" * 4),
    ("JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"),
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
    # The boundary in front of a value is written back: a newline escape stays a newline.
    assert json.loads(redact(json.dumps("line\nops@example.com"))) == "line\n[REDACTED:EMAIL]"
    assert "[REDACTED:EMAIL]" in redact('"a@b.io"', gen_ai.OUTPUT_MESSAGES, "spanevent")


_PII = st.sampled_from([v for _, v in POSITIVES])
# What can stand between a value and the text before it: each becomes a different JSON escape or none.
_SEPARATOR = st.sampled_from([" ", "\n", "\t", '"', "\\", "\\\\", "/", "(", ":", "é", "\u00e9\n", "\U0001f600", ""])
# Letters, digits, separators, quotes, backslashes (JSON escapes), non-ASCII (\uXXXX escapes when ensure_ascii).
_FILLER = st.text(alphabet=st.sampled_from([*'ab Z\\\n\t"/-.:@+()01', "\u00e9", "\U0001f600"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.tuples(_FILLER, _SEPARATOR, _PII), min_size=1, max_size=4),
    tail=_FILLER,
    ensure_ascii=st.booleans(),
)
def test_random_content_around_pii_stays_valid_json(
    pieces: list[tuple[str, str, str]], tail: str, ensure_ascii: bool
) -> None:
    # A value glued to a preceding letter or digit is a different token ("x" + "a@b.io" is "xa@b.io", which is
    # still masked whole); an empty separator is only generated after an empty filler.
    text = "".join(a + (sep or (" " if a else "")) + b + " " for a, sep, b in pieces) + tail
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
    for _, _, value in pieces:
        assert value not in redacted[1]["parts"][0]["content"]
        assert value not in redacted[2]["parts"][0]["arguments"]["query"]


def _labelled() -> list[tuple[str, list[tuple[str, str]]]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["text"], [(kind, value) for kind, value in row["labels"]]) for row in rows]


def gateway_recall_and_false_positives() -> tuple[dict[str, tuple[int, int]], int, int]:
    """Run the exporter's labelled set, as message JSON, through the gateway's statements.

    Returns per class (values masked, values labelled), negatives changed, negatives total.
    """
    per_kind: dict[str, tuple[int, int]] = {}
    changed = negatives = 0
    for i, (text, labels) in enumerate(_labelled()):
        encoded = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}], ensure_ascii=i % 2 == 0)
        content = json.loads(redact(encoded))[0]["parts"][0]["content"]
        if not labels:
            negatives += 1
            changed += content != text
        for kind, value in labels:
            hit, total = per_kind.get(kind, (0, 0))
            per_kind[kind] = (hit + (value not in content), total + 1)
    return per_kind, changed, negatives


def test_labelled_set_recall_and_false_positives() -> None:
    # The labelled set is the exporter's (tests/fixtures/redaction/); README.md reports these figures.
    per_kind, changed, negatives = gateway_recall_and_false_positives()
    assert set(per_kind) == set(KINDS)
    hits = sum(h for h, _ in per_kind.values())
    total = sum(t for _, t in per_kind.values())
    assert hits / total >= 0.95, per_kind
    for kind, (hit, count) in per_kind.items():
        # National phone formats without a country code are the weakest class (no checksum to lean on).
        assert hit / count >= 0.85, (kind, hit, count)
    # Without Luhn or IBAN checksums some card-shaped ids and dotted versions are masked too.
    assert changed / negatives <= 0.2, (changed, negatives)


REDACTION = load("gateway.yaml")["processors"]["redaction"]


def test_redaction_processor_leaves_the_transformed_attributes_alone() -> None:
    handled = {s.attribute for s in STATEMENTS}
    assert handled <= set(REDACTION["ignored_keys"])


def _mask(text: str) -> str:
    # What the redaction processor does with blocked_values: the matched part becomes ****.
    for pattern in REDACTION["blocked_values"]:
        text = re.sub(pattern, "****", text)
    return text


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.tuples(_FILLER, _SEPARATOR, _PII), min_size=1, max_size=4),
    ensure_ascii=st.booleans(),
)
def test_redaction_processor_masks_keep_json_valid(pieces: list[tuple[str, str, str]], ensure_ascii: bool) -> None:
    # JSON in attributes the transform does not handle (tool definitions, metadata) goes through blocked_values.
    text = "".join(a + (sep or (" " if a else "")) + b + " " for a, sep, b in pieces)
    definitions = [{"type": "function", "name": "lookup", "description": text, "parameters": {"type": "object"}}]
    masked = json.loads(_mask(json.dumps(definitions, ensure_ascii=ensure_ascii)))
    assert masked[0]["name"] == "lookup" and masked[0]["parameters"] == {"type": "object"}
    for _, _, value in pieces:
        if "@" in value or value.startswith(("AKIA", "eyJ", "sk-")) or re.fullmatch(r"[0-9 -]{15,}", value):
            assert value not in masked[0]["description"]
