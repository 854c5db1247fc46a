"""Every filter, full-text search, sort, pagination and statistic of the REST API against values computed
independently from the corpus the test sent."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.store.corpus import Call, Corpus
from tests.store.server import StoreServer

Params = list[tuple[str, Any]]


def all_pages(server: StoreServer, path: str, params: Params, limit: int = 37) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; checks that pages never repeat a span."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        page_params = [*params, ("limit", limit)] + ([("cursor", cursor)] if cursor else [])
        resp = server.get_params(path, page_params)
        assert resp.status == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [i["span_id"] for i in items]
    assert len(ids) == len(set(ids))
    return items


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat()


FILTERS: list[tuple[str, Params, Callable[[Call, Corpus], bool]]] = [
    ("model", [("model", "gpt-4o")], lambda c, _: c.model == "gpt-4o"),
    (
        "two models",
        [("model", "gpt-4o"), ("model", "mistral-large")],
        lambda c, _: c.model in ("gpt-4o", "mistral-large"),
    ),
    ("provider", [("provider", "anthropic")], lambda c, _: c.provider == "anthropic"),
    ("status", [("status", "error")], lambda c, _: c.status == "error"),
    ("statuses", [("status", "error,timeout")], lambda c, _: c.status != "success"),
    ("service", [("service", "search")], lambda c, _: c.service == "search"),
    ("tenant", [("tenant", "globex")], lambda c, _: c.tenant == "globex"),
    ("user", [("user", "u3")], lambda c, _: c.user == "u3"),
    ("session", [("session", "s4")], lambda c, _: c.session == "s4"),
    ("operation", [("operation", "chat")], lambda c, _: True),
    ("since", [("since", "BASE+2h")], lambda c, k: c.start_ns >= k.base_ns + 2 * 3600 * 10**9),
    ("until", [("until", "BASE+1h")], lambda c, k: c.start_ns < k.base_ns + 3600 * 10**9),
    ("min_duration_ms", [("min_duration_ms", 2500)], lambda c, _: c.duration_ms >= 2500),
    ("max_duration_ms", [("max_duration_ms", 300)], lambda c, _: c.duration_ms <= 300),
    ("min_cost", [("min_cost", 0.04)], lambda c, _: c.cost >= 0.04),
    ("attribute", [("attr.gen_ai.request.temperature", "0.5")], lambda c, _: c.temperature == 0.5),
    ("metadata", [("meta.experiment", "B")], lambda c, _: c.experiment == "B"),
    (
        "combined",
        [("provider", "openai"), ("status", "success"), ("tenant", "acme"), ("min_duration_ms", 1000)],
        lambda c, _: c.provider == "openai" and c.status == "success" and c.tenant == "acme" and c.duration_ms >= 1000,
    ),
    ("full text word", [("q", "bravo")], lambda c, _: "bravo" in c.words),
    ("full text two words", [("q", "alpha echo")], lambda c, _: {"alpha", "echo"} <= c.words),
    ("full text prefix", [("q", "jul*")], lambda c, _: "juliet" in c.words),
    ("full text phrase", [("q", '"question 17"')], lambda c, _: c.prompt.endswith("question 17")),
    ("full text with punctuation", [("q", "sum(a1:a9)")], lambda c, _: "=SUM(A1:A9)" in c.prompt),
    (
        "full text + filter",
        [("q", "golf"), ("model", "gpt-4o-mini")],
        lambda c, _: "golf" in c.words and c.model == "gpt-4o-mini",
    ),
    ("trace id", [("trace_id", "FIRST")], lambda c, k: c.trace_id == k.calls[0].trace_id),
]


def _resolve(params: Params, corpus: Corpus) -> Params:
    out = []
    for key, value in params:
        if value == "BASE+2h":
            value = iso(corpus.base_ns + 2 * 3600 * 10**9)
        elif value == "BASE+1h":
            value = iso(corpus.base_ns + 3600 * 10**9)
        elif value == "FIRST":
            value = corpus.calls[0].trace_id
        out.append((key, value))
    return out


@pytest.mark.parametrize(("label", "params", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter(
    corpus_server: tuple[StoreServer, Corpus], label: str, params: Params, keep: Callable[[Call, Corpus], bool]
) -> None:
    server, corpus = corpus_server
    expected = {c.span_id for c in corpus.calls if keep(c, corpus)}
    assert expected, f"the corpus has no example for {label}"
    got = all_pages(server, "/api/v1/spans", _resolve(params, corpus))
    assert {i["span_id"] for i in got} == expected
    # The default order is newest first.
    starts = [i["start_ns"] for i in got]
    assert starts == sorted(starts, reverse=True)


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("-start", "start_ns", True),
        ("start", "start_ns", False),
        ("duration", "duration_ms", False),
        ("-duration", "duration_ms", True),
        ("-cost", "cost", True),
        ("input_tokens", "input_tokens", False),
    ],
)
def test_sort_and_pagination(corpus_server: tuple[StoreServer, Corpus], sort: str, key: str, reverse: bool) -> None:
    server, corpus = corpus_server
    got = all_pages(server, "/api/v1/spans", [("sort", sort), ("tenant", "acme")], limit=11)
    calls = [c for c in corpus.calls if c.tenant == "acme"]
    attr = {"start_ns": "start_ns", "duration_ms": "duration_ms", "cost": "cost", "input_tokens": "input_tokens"}[key]
    expected = sorted(calls, key=lambda c: (getattr(c, attr), c.start_ns), reverse=reverse)
    if key == "input_tokens":  # ties are ordered by row id (= arrival): compare values only
        assert [i[key] for i in got] == [getattr(c, attr) for c in expected]
    else:
        assert [i["span_id"] for i in got] == [c.span_id for c in expected]


def test_item_fields_match_what_was_sent(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    call = corpus.calls[5]
    (item,) = server.get("/api/v1/spans", trace_id=call.trace_id).json()["items"]
    assert item["model"] == call.model and item["provider"] == call.provider and item["service"] == call.service
    assert item["tenant"] == call.tenant and item["status"] == call.status
    assert item["duration_ms"] == pytest.approx(call.duration_ms)
    assert (item["input_tokens"], item["output_tokens"]) == (call.input_tokens, call.output_tokens)
    assert item["cost"] == pytest.approx(call.cost)
    assert item["timestamp"].startswith(iso(call.start_ns)[:19])


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def check_summary(data: dict[str, Any], calls: list[Call]) -> None:
    assert data["count"] == len(calls)
    failed = sum(1 for c in calls if c.status != "success")
    assert data["errors"] == failed
    assert data["failure_rate"] == pytest.approx(failed / len(calls))
    durations = [c.duration_ms for c in calls]
    for p in (50, 90, 95, 99):
        assert data["latency_ms"][f"p{p}"] == pytest.approx(nearest_rank(durations, p))
    assert data["latency_ms"]["max"] == pytest.approx(max(durations))
    assert data["latency_ms"]["avg"] == pytest.approx(sum(durations) / len(durations))
    assert data["tokens"]["input"] == sum(c.input_tokens for c in calls)
    assert data["tokens"]["output"] == sum(c.output_tokens for c in calls)
    assert data["cost"] == pytest.approx(sum(c.cost for c in calls))


def test_stats_totals_groups_and_buckets(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    data = server.get("/api/v1/stats", group_by="model", bucket="1h").json()
    check_summary(data, corpus.calls)
    groups = {g["key"]: g for g in data["groups"]}
    assert set(groups) == {c.model for c in corpus.calls}
    for model, group in groups.items():
        check_summary(group, [c for c in corpus.calls if c.model == model])
    counts = [g["count"] for g in data["groups"]]
    assert counts == sorted(counts, reverse=True)
    width = 3600 * 10**9
    expected_buckets: dict[int, list[Call]] = {}
    for c in corpus.calls:
        expected_buckets.setdefault(c.start_ns // width * width, []).append(c)
    assert [b["start_ns"] for b in data["buckets"]] == sorted(expected_buckets)
    for bucket in data["buckets"]:
        check_summary(bucket, expected_buckets[bucket["start_ns"]])


@pytest.mark.parametrize("group_by", ["provider", "service", "tenant", "status"])
def test_stats_filtered_and_grouped(corpus_server: tuple[StoreServer, Corpus], group_by: str) -> None:
    server, corpus = corpus_server
    data = server.get("/api/v1/stats", group_by=group_by, min_duration_ms=500).json()
    calls = [c for c in corpus.calls if c.duration_ms >= 500]
    check_summary(data, calls)
    for group in data["groups"]:
        check_summary(group, [c for c in calls if getattr(c, group_by) == group["key"]])


def test_facets(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    facets = server.get("/api/v1/facets").json()
    assert {f["value"]: f["count"] for f in facets["model"]} == {
        model: sum(1 for c in corpus.calls if c.model == model) for model in {c.model for c in corpus.calls}
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "broken"}, "status"),
        ({"since": "yesterday-ish"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"sort": "name"}, "sort"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"min_cost": "cheap"}, "min_cost"),
        ({"q": '"" * '}, "q"),
        ({"trace_id": "xyz"}, "trace_id"),
    ],
)
def test_bad_parameters_get_the_one_error_shape(
    corpus_server: tuple[StoreServer, Corpus], params: dict[str, str], message: str
) -> None:
    server, _ = corpus_server
    resp = server.get("/api/v1/spans", **params)
    assert resp.status == 400
    body = resp.json()
    assert set(body) == {"ok", "error", "errors", "status"} and body["ok"] is False and body["status"] == 400
    assert message in body["error"]


def test_cursor_from_another_sort_is_refused(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, _ = corpus_server
    cursor = server.get("/api/v1/spans", limit=2).json()["next_cursor"]
    resp = server.get("/api/v1/spans", sort="-cost", cursor=cursor)
    assert resp.status == 400 and "different sort" in resp.json()["error"]


def test_trace_and_span_not_found(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, _ = corpus_server
    resp = server.get("/api/v1/traces/" + "0" * 31 + "1")
    assert resp.status == 404 and resp.json()["ok"] is False
    assert server.get("/api/v1/spans/" + "0" * 32 + "/" + "0" * 16).status == 404
    assert server.get("/api/v1/nothing-here").json()["status"] == 404


def test_openapi_document_lists_the_api(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, _ = corpus_server
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/v1/spans",
        "/api/v1/traces/{trace_id}",
        "/api/v1/stats",
        "/api/v1/export",
        "/v1/traces",
        "/api/v1/datasets",
    ):
        assert path in doc["paths"]
    names = {p["name"] for p in doc["paths"]["/api/v1/spans"]["get"]["parameters"]}
    assert {
        "model",
        "provider",
        "status",
        "service",
        "tenant",
        "since",
        "until",
        "q",
        "min_duration_ms",
        "limit",
        "cursor",
    } <= names


def test_fts_syntax_in_the_search_text_is_not_interpreted(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    # OR, NEAR, -, column filters and quotes are words to look for, not FTS5 syntax.
    for q in ("alpha OR echo", 'NEAR("alpha" "echo")', "-alpha", "input_text:alpha", '"unbalanced'):
        resp = server.get("/api/v1/spans", q=q, limit=1000)
        assert resp.status == 200, (q, resp.text)
    got = {i["span_id"] for i in server.get("/api/v1/spans", q="alpha OR echo", limit=1000).json()["items"]}
    assert got == {c.span_id for c in corpus.calls if {"alpha", "echo"} <= c.words and "or" in c.words}
