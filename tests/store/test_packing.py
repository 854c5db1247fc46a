"""Packed span JSON (:mod:`spyglass.store._packing`): attributes and events stored without a second copy of
the text columns, read back exactly as sent, through the store and for arbitrary values."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spyglass.semconv import _fastjson, gen_ai
from spyglass.store import Filters, Store, queries
from spyglass.store import _json as store_json
from spyglass.store._packing import dumps, pack, unpack

PROMPT = (
    'Summarise the "refund policy" below for a customer, in two sentences.\n'
    "Policy: refunds are granted within 30 days of purchase when the item is unused; a receipt is required.\n"
    "Ärger vermeiden: Rückgaben nach 30 Tagen werden nur mit Zustimmung des Filialleiters angenommen, sagt er.\n"
    "C:\\path\\to\\file with a backslash\tand a tab, which JSON escapes, so this line is stored as it is.\n"
) * 3
ANSWER = (
    "Refunds are available for 30 days on unused items with a receipt; after that, only a manager can approve "
    'one. Say "thank you" and keep the receipt, because without it nothing can be refunded at all.\n'
) * 4


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _request(ascii_json: bool) -> tuple[ExportTraceServiceRequest, dict[str, Any], list[dict[str, Any]]]:
    """One current-dialect LM call and one deprecated-events call, with long multi-line text."""
    inputs = [
        {"role": "system", "parts": [{"type": "text", "content": "You are a careful support agent. " * 4}]},
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]},
    ]
    outputs = [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}]
    attrs = {
        gen_ai.OPERATION_NAME: "chat",
        gen_ai.PROVIDER_NAME: "openai",
        gen_ai.REQUEST_MODEL: "gpt-4o",
        gen_ai.USAGE_INPUT_TOKENS: 321,
        gen_ai.INPUT_MESSAGES: json.dumps(inputs, ensure_ascii=ascii_json),
        gen_ai.OUTPUT_MESSAGES: json.dumps(outputs, ensure_ascii=ascii_json),
        "app.note": "x" * 600,  # long, but not text of the call: kept whole
    }
    events: list[dict[str, Any]] = [
        {"name": "gen_ai.user.message", "time_ns": 0, "attributes": {"content": PROMPT}},
        {"name": "gen_ai.choice", "time_ns": 0, "attributes": {"message": json.dumps({"content": ANSWER})}},
    ]
    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    now = time.time_ns()
    scope.spans.append(
        Span(
            trace_id=b"\x01" * 16,
            span_id=b"\x01" * 8,
            name="chat gpt-4o",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 10**9,
            attributes=[_kv(k, v) for k, v in attrs.items()],
        )
    )
    event_span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="chat gpt-4o (events)",
        start_time_unix_nano=now,
        end_time_unix_nano=now + 10**9,
        attributes=[_kv(gen_ai.REQUEST_MODEL, "gpt-4o"), _kv(gen_ai.OPERATION_NAME, "chat")],
    )
    for ev in events:
        event_span.events.add(name=ev["name"], attributes=[_kv(k, v) for k, v in ev["attributes"].items()])
    scope.spans.append(event_span)
    return req, attrs, events


def _stored(store: Store, span_id: str) -> tuple[Any, Any]:
    row = store.read(
        lambda conn: conn.execute("SELECT attributes, events FROM spans WHERE span_id = ?", (span_id,)).fetchone()
    )
    return row[0], row[1]


def test_spans_read_back_exactly_as_sent_and_are_stored_once(tmp_path: Path) -> None:
    for ascii_json in (False, True):
        with_store = Store(tmp_path / f"packed-{ascii_json}.db", pricer=False)
        try:
            req, attrs, events = _request(ascii_json)
            decoded, future = with_store.ingest(req)
            assert future.result(30) == 2 and not decoded.rejected

            span = with_store.read(queries.get_span, "01" * 16, "01" * 8)
            assert span["attributes"] == attrs
            assert span["input_messages"][1]["parts"][0]["content"] == PROMPT
            stored, _ = _stored(with_store, "01" * 8)
            # The text is kept once (in the text columns); runs with quotes, escapes or under 48 characters stay.
            assert isinstance(stored, bytes)
            saved = len(dumps(attrs)) - len(stored)
            assert saved > (len(PROMPT) + len(ANSWER)) / 3, (saved, len(PROMPT) + len(ANSWER))

            with_events = with_store.read(queries.get_span, "01" * 16, "02" * 8)
            assert [(e["name"], e["attributes"]) for e in with_events["events"]] == [
                (e["name"], e["attributes"]) for e in events
            ]
            assert with_events["output_messages"][0]["parts"][0]["content"] == ANSWER
            _, stored_events = _stored(with_store, "02" * 8)
            assert isinstance(stored_events, bytes)
            assert len(dumps(events)) - len(stored_events) > (len(PROMPT) + len(ANSWER)) / 3

            # Attribute filters and exports read the packed rows too.
            page = with_store.read(
                queries.search_spans, Filters(attrs=((gen_ai.INPUT_MESSAGES, attrs[gen_ai.INPUT_MESSAGES]),))
            )
            assert [it["span_id"] for it in page["items"]] == ["01" * 8]
            page = with_store.read(queries.search_spans, Filters(attrs=((gen_ai.USAGE_INPUT_TOKENS, "321"),)))
            assert [it["span_id"] for it in page["items"]] == ["01" * 8]
            exported = list(with_store.read(lambda c: list(queries.iter_items(c, Filters(), details=True))))
            assert {it["span_id"]: it["attributes"] for it in exported}["01" * 8] == attrs
        finally:
            with_store.close()


def test_rows_written_before_packing_read_as_before(tmp_path: Path) -> None:
    """A database written by the previous code holds attributes and events as JSON text."""
    store = Store(tmp_path / "old.db", pricer=False)
    try:
        req, attrs, events = _request(False)
        store.ingest(req)[1].result(30)
        store.write(
            lambda conn: conn.execute(
                "UPDATE spans SET attributes = span_json(attributes, input_text, output_text), "
                "events = span_json(events, input_text, output_text)"
            )
        )
        assert isinstance(_stored(store, "01" * 8)[0], str)
        assert store.read(queries.get_span, "01" * 16, "01" * 8)["attributes"] == attrs
        got = store.read(queries.get_span, "01" * 16, "02" * 8)["events"]
        assert [e["attributes"] for e in got] == [e["attributes"] for e in events]
        assert "0008_packed_json" in store.writer.migrations_applied
    finally:
        store.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
line = st.text(alphabet=st.characters(codec="utf-8"), min_size=40, max_size=120)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(line, min_size=1, max_size=6),
    roles=st.lists(st.sampled_from(["user: ", "assistant: ", "", "tool: x: "]), min_size=2, max_size=2),
    value=json_values,
    data=st.data(),
)
def test_pack_round_trips_any_value(lines: list[str], roles: list[str], value: Any, data: st.DataObject) -> None:
    # Texts and values that share lines (as message JSON and the text columns do), and values that do not.
    input_text = roles[0] + "\n".join(lines)
    output_text = roles[1] + "\n".join(reversed(lines))
    picked = data.draw(st.lists(st.sampled_from(lines), max_size=4))
    shared = {"messages": json.dumps([{"content": "\n".join(picked)}], ensure_ascii=data.draw(st.booleans()))}
    shared["raw"] = "".join(picked) * 3
    for candidate in (value, shared, [shared, value], {"a": [value, shared]}):
        stored = pack(candidate, input_text, output_text)
        assert unpack(stored, input_text, output_text) == dumps(candidate)


# --- the fast paths against the plain code they replace ---------------------------------------------


def _reference_pack(value: Any, input_text: str | None, output_text: str | None) -> str | bytes:
    """The packing search as first written (every run whole, then without its role prefix, in order)."""

    def runs() -> list[tuple[str, int, int]]:
        out = []
        for column, text in enumerate((input_text, output_text)):
            if not text or len(text) < 48:
                continue
            start = 0
            for ln in text.split("\n"):
                if len(ln) >= 48:
                    at = start
                    for piece in ln.split('"'):
                        if len(piece) >= 48:
                            out.append((piece, column, at))
                        at += len(piece) + 1
                start += len(ln) + 1
        return out

    def find(text: str, run: str, pos: int) -> int:
        at = text.find(run[:24], pos)
        return at if at >= 0 and text.startswith(run, at) else -1

    def cut(text: str, all_runs: list[tuple[str, int, int]]) -> list[Any] | None:
        segments: list[Any] = []
        pos = 0
        for run, column, start in all_runs:
            at = find(text, run, pos)
            if at < 0:
                head = run.find(": ", 0, 40)
                if head < 0 or len(run) - head - 2 < 48:
                    continue
                run, start = run[head + 2 :], start + head + 2
                at = find(text, run, pos)
                if at < 0:
                    continue
            if at > pos:
                segments.append(text[pos:at])
            segments.append([column, start, start + len(run)])
            pos = at + len(run)
        if not segments:
            return None
        if pos < len(text):
            segments.append(text[pos:])
        return segments

    def walk(node: Any, path: list[Any], all_runs: list[tuple[str, int, int]], refs: list[Any]) -> Any:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        copy: Any = None
        for key, item in items:
            new = item
            if isinstance(item, str):
                if len(item) >= 512 and (segments := cut(item, all_runs)) is not None:
                    refs.append([*path, key])
                    new = segments
            elif isinstance(item, (dict, list)):
                new = walk(item, [*path, key], all_runs, refs)
            if new is not item:
                if copy is None:
                    copy = dict(node) if isinstance(node, dict) else list(node)
                copy[key] = new
        return node if copy is None else copy

    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    found = runs()
    if found and isinstance(value, (dict, list)):
        refs: list[Any] = []
        reduced = walk(value, [], found, refs)
        if refs:
            text = json.dumps({"v": reduced, "r": refs}, ensure_ascii=False, separators=(",", ":"), default=str)
            return b"\x01" + text.encode("utf-8", "surrogatepass")
    return plain


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(line, min_size=1, max_size=6),
    roles=st.lists(st.sampled_from(["user: ", "assistant: ", "", "tool: x: ", "a: b: "]), min_size=2, max_size=2),
    value=json_values,
    data=st.data(),
)
def test_pack_stores_what_the_plain_search_stored(
    lines: list[str], roles: list[str], value: Any, data: st.DataObject
) -> None:
    # Values that hold the runs with and without their role prefixes, repeated and out of order.
    input_text = roles[0] + "\n".join(lines)
    output_text = roles[1] + "\n".join(reversed(lines))
    picked = data.draw(st.lists(st.sampled_from(lines), max_size=4))
    candidates = [
        value,
        {"messages": json.dumps([{"content": "\n".join(picked)}], ensure_ascii=data.draw(st.booleans()))},
        {"echo": input_text + "\n" + output_text, "twice": "".join(picked) + input_text + "".join(picked)},
        [output_text * 2, {"x": value, "y": roles[0] + "".join(picked) * 3}],
    ]
    for candidate in candidates:
        assert pack(candidate, input_text, output_text) == _reference_pack(candidate, input_text, output_text)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


awkward_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**66)
    | st.floats()
    | st.sampled_from([1e-5, 1.5e-7, 1e16, 1e22, 123456789.125, -0.0, 5e-324, 2.0**63, float("inf")])
    | st.text()
    | st.sampled_from(["\ud800", "null", "1e5", "a\u2028b", "\x00\x1f\x7f"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=2)
    ),
    max_leaves=12,
)


@pytest.fixture(params=["orjson", "json"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the store's JSON functions run: through orjson (installed by CI) and without it."""
    if request.param == "json":
        monkeypatch.setattr(_fastjson, "ORJSON", None)
    else:
        assert _fastjson.ORJSON is not None, "orjson (the speedups extra) is not installed"
    return str(request.param)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=awkward_values)
def test_store_dumps_is_the_json_modules(json_backend: str, value: Any) -> None:
    assert store_json.dumps(value) == _json_dumps(value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=awkward_values, ascii_only=st.booleans())
def test_store_loads_is_the_json_modules(json_backend: str, value: Any, ascii_only: bool) -> None:
    # repr tells 1 from 1.0 and True, -0.0 from 0.0, and shows key order.
    text = json.dumps(value, ensure_ascii=ascii_only)  # int keys become strings, NaN stays NaN
    assert repr(store_json.loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # past 64 bits: orjson would give a float
        "[-9223372036854775809, 1]",
        '{"a": [1e400]}',  # json: inf; orjson refuses
        "NaN",
        '["\\ud800"]',  # a lone surrogate
        '{"a": 1, "a": 2}',
        "[1.0, 2.5e-8, 1e22, -0.0, 0.30000000000000004]",
        "\ufeff[1]",
        "[1,]",
        "",
    ],
)
def test_store_loads_edge_cases(json_backend: str, text: str) -> None:
    try:
        expected: Any = repr(json.loads(text))
    except ValueError as exc:
        expected = type(exc)
    try:
        got: Any = repr(store_json.loads(text))
    except ValueError as exc:
        got = type(exc)
    assert got == expected
