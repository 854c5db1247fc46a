"""The content encoder: orjson's fast path gives exactly the text of ``spyglass.semconv.dumps``."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from spyglass.instrumentation import _content
from spyglass.instrumentation._content import truncate_json
from spyglass.semconv import _fastjson
from spyglass.semconv import messages as m
from spyglass.semconv.messages import dumps


@dataclass
class _Point:
    x: int


def _floats() -> list[float]:
    out = [0.0, -0.0, 1.5, 0.1, 1e-4, 1.2e-4, 9.99e-5, 1e-5, 1e-7, 5e-324, 1e15, 9.999e15, 1e16, 1.5e16, 1e300]
    out += [1.7976931348623157e308, 123456789.125, 2.0**53, 1 / 3]
    for exp in range(-330, 309, 7):
        out.append(1.2345678901234567 * 10.0**exp)
    return [v for x in out for v in (x, -x)]


VALUES: list[Any] = [
    [m.text("hello"), m.text("x" * 300)],
    [{"role": "user", "parts": [{"type": "text", "content": 'caf\u00e9 \u2028 \x00 \x1f \x7f \U0001f600 "q" \\'}]}],
    {"id": "call_1e4", "n": None, "ok": True, "big": 2**63, "neg": -(2**63)},
    {"a": float("nan"), "b": float("inf"), "c": -math.inf},
    {"huge": 2**70, "keys": {1: "int key", None: "none key"}},
    {"bytes": b"\x00\x01", "set": {1}, "tuple": (1, 2), "frozen": frozenset()},
    {"uuid": uuid.UUID(int=1), "when": datetime(2024, 1, 2, tzinfo=timezone.utc), "dc": _Point(1)},
    ["lone \ud800 surrogate"],
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_fast_path_writes_what_dumps_writes(value: Any) -> None:
    assert _content._compact_json(value) == dumps(value)


def test_floats_are_spelled_as_dumps_spells_them() -> None:
    for f in _floats():
        assert _content._compact_json({"f": [f]}) == dumps({"f": [f]}), f


def test_plain_messages_take_orjson() -> None:
    # The common case must not fall back (else the fast path would be dead code).
    messages = [m.message("user", [m.text("Tell me a joke about opentelemetry. " * 6)])]
    assert _fastjson.same_as_json(orjson.dumps(messages))
    assert truncate_json(messages, 10_000) == (dumps(messages), False)


@pytest.mark.parametrize("raw", [b"[null]", b"[1e16]", b"[1e-7]", b"[0.00001]", b'["call_9e1"]'])
def test_text_orjson_may_spell_differently_falls_back(raw: bytes) -> None:
    assert not _fastjson.same_as_json(raw)


def test_without_orjson_dumps_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fastjson, "ORJSON", None)
    value = {"a": 1e-5, "b": [m.text("hi")]}
    assert _content._compact_json(value) == dumps(value)
