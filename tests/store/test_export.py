"""Exports parsed back: CSV (formula-injection safe), JSONL, OpenAI chat fine-tuning JSONL; named datasets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.store._export import CSV_COLUMNS
from tests.store.corpus import Corpus
from tests.store.server import StoreServer, request


def test_csv_export_with_filters_parses_back_and_is_formula_safe(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    resp = server.get("/api/v1/export", format="csv", tenant="acme")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    expected = {c.span_id: c for c in corpus.calls if c.tenant == "acme"}
    assert list(rows[0]) == CSV_COLUMNS
    assert {r["span_id"] for r in rows} == set(expected)
    starts = [r["timestamp"] for r in rows]
    assert starts == sorted(starts)
    for row in rows:
        call = expected[row["span_id"]]
        assert row["model"] == call.model and int(row["input_tokens"]) == call.input_tokens
        assert float(row["cost"]) == call.cost
        for cell in row.values():
            # No cell may start like a spreadsheet formula.
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert row["input_text"] == "user: " + call.prompt


def test_csv_cell_escaping_of_leading_formula_characters(make_server: Callable[..., StoreServer]) -> None:
    server = make_server()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "=cmd|' /C calc'!A0"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_http)))
    with provider.get_tracer("t").start_as_current_span("@SUM(1+1)", attributes={gen_ai.OPERATION_NAME: "chat"}):
        pass
    provider.shutdown()
    (row,) = csv.DictReader(io.StringIO(server.get("/api/v1/export", format="csv").text))
    assert row["service"] == "'=cmd|' /C calc'!A0"
    assert row["name"] == "'@SUM(1+1)"


def test_jsonl_export_has_the_whole_span(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    resp = server.get("/api/v1/export", format="jsonl", model="gpt-4o")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    expected = {c.span_id: c for c in corpus.calls if c.model == "gpt-4o"}
    assert {x["span_id"] for x in lines} == set(expected)
    for line in lines:
        call = expected[line["span_id"]]
        assert line["attributes"][gen_ai.REQUEST_MODEL] == "gpt-4o"
        assert line["resource"]["service.name"] == call.service
        assert line["input_messages"] == [{"role": "user", "parts": [{"type": "text", "content": call.prompt}]}]


def test_finetune_export_is_openai_chat_format(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    resp = server.get("/api/v1/export", format="finetune", service="search")
    examples = [json.loads(line) for line in resp.text.splitlines()]
    # Only successful calls with an answer make training examples.
    expected = [c for c in corpus.calls if c.service == "search" and c.status == "success"]
    assert len(examples) == len(expected)
    for example, call in zip(examples, sorted(expected, key=lambda c: c.start_ns)):
        assert example == {
            "messages": [{"role": "user", "content": call.prompt}, {"role": "assistant", "content": call.answer}]
        }


def test_finetune_keeps_tool_calls(make_server: Callable[..., StoreServer]) -> None:
    server = make_server()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_http)))
    attrs = {
        gen_ai.OPERATION_NAME: "chat",
        gen_ai.REQUEST_MODEL: "gpt-4o",
        gen_ai.SYSTEM_INSTRUCTIONS: m.dumps([m.text("Use tools.")]),
        gen_ai.INPUT_MESSAGES: m.dumps(
            [
                m.message("user", [m.text("Weather?")]),
                m.message("assistant", [m.tool_call("weather", {"city": "Oslo"}, "c1")]),
                m.message("tool", [m.tool_call_response("rain", "c1")]),
            ]
        ),
        gen_ai.OUTPUT_MESSAGES: m.dumps([m.output_message("assistant", [m.text("It rains.")], "stop")]),
    }
    with provider.get_tracer("t").start_as_current_span("chat", attributes=attrs):
        pass
    provider.shutdown()
    (line,) = server.get("/api/v1/export", format="finetune").text.splitlines()
    assert json.loads(line) == {
        "messages": [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
            {"role": "assistant", "content": "It rains."},
        ]
    }


def test_export_rejects_unknown_format(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, _ = corpus_server
    resp = server.get("/api/v1/export", format="xlsx")
    assert resp.status == 400 and "format" in resp.json()["error"]


def test_datasets_create_add_list_export(make_server: Callable[..., StoreServer]) -> None:
    from tests.store.corpus import build_calls, send_corpus

    server = make_server()
    corpus = build_calls(30, seed=3)
    send_corpus(server.otlp_http, corpus)
    created = server.post_json("/api/v1/datasets", {"name": "golden", "description": "good answers"})
    assert created.status == 201 and created.json()["size"] == 0
    assert server.post_json("/api/v1/datasets", {"name": "golden"}).status == 400  # already exists
    assert server.post_json("/api/v1/datasets", {"name": "bad name!"}).status == 400
    picked = corpus.calls[:3]
    resp = server.post_json("/api/v1/datasets/golden/items", {"spans": [[c.trace_id, c.span_id] for c in picked]})
    assert resp.status == 200 and resp.json()["size"] == 3
    by_filter = [c for c in corpus.calls if c.model == "gpt-4o"]
    resp = server.post_json("/api/v1/datasets/golden/items", {"filters": {"model": "gpt-4o"}})
    expected = {c.span_id for c in picked} | {c.span_id for c in by_filter}
    assert resp.json()["size"] == len(expected)
    items = server.get("/api/v1/datasets/golden/items", limit=1000).json()["items"]
    assert {i["span_id"] for i in items} == expected
    listed = server.get("/api/v1/datasets").json()["items"]
    assert [(d["name"], d["size"], d["description"]) for d in listed] == [("golden", len(expected), "good answers")]
    lines = server.get("/api/v1/datasets/golden/export", format="jsonl").text.splitlines()
    assert {json.loads(x)["span_id"] for x in lines} == expected
    bad = server.post_json("/api/v1/datasets/golden/items", {"ids": ["x"]})
    assert bad.status == 400
    assert server.get("/api/v1/datasets/missing").status == 404
    deleted = request("DELETE", server.api + "/api/v1/datasets/golden")
    assert deleted.status == 200 and server.get("/api/v1/datasets").json()["items"] == []
