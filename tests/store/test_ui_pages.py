"""The web UI over HTTP: every page and its JSON twin, filters in the URL, escaping, security headers.

One real ``spyglass serve`` per module, filled through its OTLP/HTTP port by the real OTLP exporter
(:mod:`tests.store.ui_support`). Expected values come from what the test sent, never from the pages.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest

from spyglass.semconv import gen_ai
from spyglass.store.web import CONTENT_SECURITY_POLICY
from spyglass.store.web._conversation import INLINE_LIMIT
from tests.store.server import request
from tests.store.ui_support import (
    BIG_PROMPT,
    CHUNK_OFFSETS_MS,
    FORMULA_USER,
    UNIQUE_WORD,
    XSS_PAYLOADS,
    UIStore,
    running_store,
)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIStore]:
    with running_store(tmp_path_factory.mktemp("ui") / "spyglass.db") as store:
        yield store


def all_items(ui: UIStore, query: dict[str, str] | None = None) -> list[dict]:
    return ui.all_items(query)


class Markup(HTMLParser):
    """Collects the elements of a page, to check what markup the page itself contains."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def markup(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Markup()
    parser.feed(html)
    return parser.tags


def test_every_page_sends_csp_and_links_its_json_twin(ui: UIStore) -> None:
    trace_id = ui.corpus.spans["openai"].trace_id
    for path, twin in [
        ("/traces", "/traces.json"),
        ("/traces?model=gpt-4o", "/traces.json?model=gpt-4o"),
        (f"/traces/{trace_id}", f"/traces/{trace_id}.json"),
        ("/stats", "/stats.json"),
        ("/datasets", "/datasets.json"),
    ]:
        response = ui.get(path)
        assert response.status == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["link"] == f'<{twin}>; rel="alternate"; type="application/json"'
        twin_response = ui.get(twin)
        assert twin_response.status == 200 and twin_response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == twin_response.headers["cache-control"] == "no-store"
        twin_response.json()


def test_pages_carry_no_inline_script_handler_or_style(ui: UIStore) -> None:
    """What the CSP forbids, the pages never need: every script is a file, no on* attributes, no style=."""
    xss = ui.corpus.spans["xss"].trace_id
    for path in ["/traces", f"/traces/{xss}", "/stats", "/datasets", f"/traces/{ui.corpus.spans['pipeline'].trace_id}"]:
        tags = markup(ui.get(path).text)
        scripts = [a for t, a in tags if t == "script"]
        assert scripts and all(a.get("src", "").startswith("/-/static/") for a in scripts), path
        assert not [t for t, a in tags if any(k.startswith("on") for k in a)], path
        assert not [t for t, a in tags if "style" in a], path
        assert not [t for t, a in tags if t in ("iframe", "style", "img", "object", "embed")], path


def test_list_is_newest_first_and_holds_every_llm_request(ui: UIStore) -> None:
    items = all_items(ui)
    assert [i["start_time"] for i in items] == sorted((i["start_time"] for i in items), reverse=True)
    assert {(i["trace_id"], i["span_id"]) for i in items} == {(s.trace_id, s.span_id) for s in ui.corpus.llm}
    first = ui.json("/traces.json")
    assert len(first["items"]) == 50 and first["next_cursor"]
    assert first["items"][0]["span_id"] == ui.corpus.spans["xss"].span_id  # the newest call


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"model": "gpt-4o"}, lambda s: s.model == "gpt-4o"),
        ({"provider": "anthropic"}, lambda s: (s.model or "").startswith("claude")),
        ({"status": "error"}, lambda s: s.status == "error"),
        ({"service": "translator"}, lambda s: s.service == "translator"),
        ({"q": UNIQUE_WORD}, lambda s: s.key == "anthropic"),
        ({"attr." + gen_ai.ERROR_TYPE: "429"}, lambda s: s.key == "error_openai"),
        ({"model": "gpt-4o", "status": "error"}, lambda s: s.model == "gpt-4o" and s.status == "error"),
    ],
    ids=["model", "provider", "status", "service", "text", "status-code", "model-and-status"],
)
def test_filters_in_the_url(ui: UIStore, query: dict[str, str], expected) -> None:
    got = {i["span_id"] for i in all_items(ui, query)}
    want = {s.span_id for s in ui.corpus.llm if expected(s)}
    assert want and got == want
    html = ui.get("/traces?" + urlencode(query)).text
    for value in query.values():
        assert f'value="{value}"' in html or f'<option value="{value}" selected>' in html  # the form keeps it


def test_sorting_by_a_column(ui: UIStore) -> None:
    by_cost = all_items(ui, {"sort": "-cost"})
    costs = [i["cost"] if i["cost"] is not None else -1 for i in by_cost]
    assert costs == sorted(costs, reverse=True) and len(by_cost) == len(ui.corpus.llm)
    html = ui.get("/traces?sort=-cost").text
    assert 'aria-sort="descending"><a class="sort" href="/traces?sort=cost"' in html
    slowest = all_items(ui, {"sort": "-duration", "provider": "anthropic"})[0]
    assert slowest["span_id"] == ui.corpus.spans["error_anthropic"].span_id  # 5.02 s, the slowest call


def test_all_spans_not_only_llm_calls(ui: UIStore) -> None:
    everything = {i["span_id"] for i in all_items(ui, {"llm": "false"})}
    assert everything == {s.span_id for s in ui.corpus.spans.values()}
    assert ui.corpus.spans["pipeline"].span_id in everything
    assert '<option value="false" selected>All spans</option>' in ui.get("/traces?llm=false").text


def test_tenant_user_and_time_filters(ui: UIStore) -> None:
    globex = {i["span_id"] for i in all_items(ui, {"tenant": "globex"})}
    assert ui.corpus.spans["error_anthropic"].span_id in globex
    assert ui.corpus.spans["openai"].span_id not in globex
    assert {i["user"] for i in all_items(ui, {"user": "user-2"})} == {"user-2"}
    newest = all_items(ui)[:3]
    since = newest[-1]["start_time"]
    recent = all_items(ui, {"since": since})
    assert [i["span_id"] for i in recent] == [i["span_id"] for i in newest]
    older = all_items(ui, {"until": since})
    assert len(older) == len(ui.corpus.llm) - 3


def test_bad_filter_is_a_clear_400_in_both_forms(ui: UIStore) -> None:
    response = ui.get("/traces.json?since=yesterday-ish")
    assert response.status == 400
    body = response.json()
    assert body["ok"] is False and body["status"] == 400 and "since" in body["error"]
    page = ui.get("/traces?since=yesterday-ish")
    assert page.status == 400 and "since" in page.text and page.headers["content-security-policy"]


def test_unknown_trace_is_404(ui: UIStore) -> None:
    missing = "0" * 32
    assert ui.get(f"/traces/{missing}.json").json() == {
        "ok": False,
        "error": f"trace {missing} not found",
        "errors": [f"trace {missing} not found"],
        "status": 404,
    }
    assert ui.get(f"/traces/{missing}").status == 404


def test_summary_and_facets(ui: UIStore) -> None:
    llm = ui.corpus.llm
    summary = ui.json("/-/summary.json")
    assert summary["summary"]["count"] == len(llm)
    assert summary["summary"]["errors"] == sum(1 for s in llm if s.status == "error")
    assert summary["charts"]["cost"]["bars"] and summary["charts"]["latency"]["lines"]
    assert ui.json("/-/summary.json?status=error")["summary"]["failure_rate"] == 1.0
    facets = ui.json("/-/facets.json")["options"]
    assert set(facets["provider"]) == {"openai", "anthropic"}
    assert {s.model for s in llm} == set(facets["model"])


def test_stats_groups_match_what_was_sent(ui: UIStore) -> None:
    stats = ui.json("/stats.json")
    by_model = {g["key"]: g for g in stats["groups"]}["model"]["rows"]
    assert {r["name"]: r["count"] for r in by_model} == dict(Counter(s.model for s in ui.corpus.llm))
    services = {r["name"]: r for r in {g["key"]: g for g in stats["groups"]}["service"]["rows"]}
    sent = [s for s in ui.corpus.llm if s.service == "translator"]
    assert services["translator"]["count"] == len(sent)
    assert services["translator"]["errors"] == sum(1 for s in sent if s.status == "error")
    assert sum(b["count"] for b in stats["buckets"]) == len(ui.corpus.llm)
    html = ui.get("/stats").text
    assert html.count('class="bar"') >= len(stats["buckets"])  # server-drawn SVG charts


def test_stats_default_to_the_last_day(ui: UIStore) -> None:
    day = ui.json("/stats.json")
    assert day["filters"]["since"] and day["summary"]["count"] == len(ui.corpus.llm)  # all sent in the last hours
    assert ui.json("/stats.json?since=0")["summary"]["count"] == len(ui.corpus.llm)
    assert ui.json("/stats.json?since=1h")["summary"]["count"] < len(ui.corpus.llm)  # background goes back ~2 h
    html = ui.get("/stats").text
    assert 'aria-current="true" aria-pressed="true">24 hours</a>' in html and 'href="/stats?since=0"' in html


def test_trace_detail_waterfall_of_a_pipeline(ui: UIStore) -> None:
    c = ui.corpus.spans
    data = ui.json(f"/traces/{c['pipeline'].trace_id}.json")
    rows = {w["name"]: w for w in data["waterfall"]}
    assert list(rows) == [
        "rag_pipeline",
        "retrieve",
        "dspy.Predict(GenerateAnswer)",
        "chat gpt-4o-mini",
        "lookup_author",
    ]
    assert [w["depth"] for w in data["waterfall"]] == [0, 1, 1, 2, 1]
    assert [w["kind"] for w in data["waterfall"]] == ["workflow", "retrieval", "task", "llm", "tool"]
    assert rows["rag_pipeline"]["share_pct"] == pytest.approx(100.0)
    assert rows["retrieve"]["share_pct"] == pytest.approx(400 / 3000 * 100)
    assert rows["chat gpt-4o-mini"]["offset_pct"] == pytest.approx(600 / 3000 * 100, abs=0.01)
    llm = next(s for s in data["spans"] if s["span_id"] == c["pipeline_llm"].span_id)
    assert llm["conversation"]["output"][0]["parts"][0]["text"] == "Frank Herbert."
    tool = next(s for s in data["spans"] if s["span_id"] == c["tool"].span_id)
    assert [f["label"] for f in tool["step"]["fields"]] == ["Tool arguments", "Tool result"]


def test_llm_panel_parses_request_and_response(ui: UIStore) -> None:
    c = ui.corpus.spans
    anthropic = ui.json(f"/traces/{c['anthropic'].trace_id}.json")["spans"][0]["conversation"]
    assert anthropic["system_text"].startswith("You are Spyglass Support")
    assert [p["kind"] for p in anthropic["output"][0]["parts"]] == ["reasoning", "text"]
    tokens = {t["key"]: t["value"] for t in anthropic["tokens"]}
    assert tokens == {"input": 3100, "output": 420, "cache_write": 2048, "reasoning": 380}
    assert {r["key"] for r in anthropic["cost"]["rows"]} == {"input", "cache_write", "output"}
    tools = ui.json(f"/traces/{c['tool_call'].trace_id}.json")["spans"]
    call = next(s for s in tools if s["span_id"] == c["tool_call"].span_id)["conversation"]
    assert call["tools"][0]["name"] == "get_weather"
    part = call["output"][0]["parts"][0]
    assert (part["kind"], part["name"], json.loads(part["text"])) == ("tool_call", "get_weather", {"city": "Paris"})
    failed = ui.json(f"/traces/{c['error_openai'].trace_id}.json")["spans"][0]
    assert failed["error"]["type"] == "429"
    assert json.loads(failed["error"]["body"])["error"]["code"] == "rate_limit_exceeded"
    html = ui.get(f"/traces/{c['error_openai'].trace_id}").text
    assert 'class="banner-error" role="alert"' in html and "rate_limit_exceeded" in html


def test_other_senders_dialect_reads_as_a_conversation(ui: UIStore) -> None:
    """The panel shows the store's normalised messages, whichever convention the sender used."""
    span = ui.corpus.spans["openllmetry"]
    conv = ui.json(f"/traces/{span.trace_id}.json")["spans"][0]["conversation"]
    assert conv["system_text"] == "You translate to German."
    assert [(m["role"], m["parts"][0]["text"]) for m in conv["input"] if not m["in_system_block"]] == [
        ("user", "Good night")
    ]
    assert conv["output"][0]["parts"][0]["text"] == "Gute Nacht"
    assert conv["provider"] == "openai"
    assert {t["key"]: t["value"] for t in conv["tokens"]} == {"input": 12, "output": 3}


def test_stream_chunks_recorded_as_events(ui: UIStore) -> None:
    span = ui.corpus.spans["streamed_events"]
    view = ui.json(f"/traces/{span.trace_id}.json")["spans"][0]
    assert [round(e["offset_ms"]) for e in view["chunk_events"]] == list(CHUNK_OFFSETS_MS)
    assert view["conversation"]["stream"] == {"streamed": True, "chunk_count": 5, "ttft_ms": CHUNK_OFFSETS_MS[0]}
    plain = ui.json(f"/traces/{ui.corpus.spans['streamed'].trace_id}.json")["spans"][0]
    assert plain["chunk_events"] == [] and plain["per_chunk_ms"] == pytest.approx((1650 - 312) / 20)


def test_span_links_to_who_it_was_for(ui: UIStore) -> None:
    span = ui.corpus.spans["anthropic"]
    view = ui.json(f"/traces/{span.trace_id}.json")["spans"][0]
    assert view["context"] == [
        {"label": "tenant", "value": "acme", "url": "/traces?tenant=acme"},
        {"label": "user", "value": "user-2", "url": "/traces?user=user-2"},
    ]
    assert {i["user"] for i in ui.all_items({"user": "user-2"})} == {"user-2"}


def test_large_values_are_cut_and_load_on_demand(ui: UIStore) -> None:
    big = ui.corpus.spans["big"]
    html = ui.get(f"/traces/{big.trace_id}").text
    assert "Line 00999" not in html and "Line 00010" in html
    assert 'data-more="' in html and 'data-path="input.0.0"' in html
    part = ui.json(f"/traces/{big.trace_id}/spans/{big.span_id}/part.json?path=input.0.0")
    assert part["text"] == BIG_PROMPT and len(BIG_PROMPT) > 10 * INLINE_LIMIT
    assert ui.get(f"/traces/{big.trace_id}/spans/{big.span_id}/part.json?path=input.9.9").status == 404
    assert ui.get(f"/traces/{big.trace_id}/spans/{big.span_id}/part.json?path=nope").status == 400
    span = ui.json(f"/traces/{big.trace_id}/spans/{big.span_id}.json")["span"]
    assert span["attributes"][gen_ai.REQUEST_MODEL] == "gpt-4.1"


def test_xss_corpus_is_escaped_everywhere(ui: UIStore) -> None:
    xss = ui.corpus.spans["xss"]
    for path in ["/traces", f"/traces/{xss.trace_id}", "/stats"]:
        html = ui.get(path).text
        for payload in XSS_PAYLOADS:
            if "<" in payload:
                assert payload not in html, (path, payload)
        assert "<script>window.__xss" not in html
        assert "&lt;script&gt;window.__xss" in html, path


def test_export_links_carry_the_current_filter(ui: UIStore) -> None:
    html = ui.get("/traces?model=gpt-4o&status=error").text
    links = {
        fmt: href.replace("&amp;", "&")
        for href, fmt in re.findall(r'href="(/api/v1/export\?[^"]*format=(csv|jsonl|finetune)[^"]*)"', html)
    }
    assert set(links) == {"csv", "jsonl", "finetune"}
    want = {s.span_id for s in ui.corpus.llm if s.model == "gpt-4o" and s.status == "error"}
    rows = list(csv.DictReader(io.StringIO(ui.get(links["csv"]).text)))
    assert {r["span_id"] for r in rows} == want
    lines = [json.loads(line) for line in ui.get(links["jsonl"]).text.splitlines()]
    assert {line["span_id"] for line in lines} == want
    unfiltered = re.sub(r"(model|status)=[^&]*&?", "", links["csv"])
    everything = list(csv.DictReader(io.StringIO(ui.get(unfiltered).text)))
    assert len(everything) == len(ui.corpus.llm)
    # A cell that would start a spreadsheet formula is defused by the store's CSV writer.
    assert not [v for r in everything for v in r.values() if v.startswith(("=", "+", "@"))]
    xss = next(r for r in everything if r["span_id"] == ui.corpus.spans["xss"].span_id)
    assert xss["user_id"] == "'" + FORMULA_USER


def test_add_to_dataset(ui: UIStore) -> None:
    span = ui.corpus.spans["tool_result"]
    post = request(
        "POST",
        ui.url + "/datasets/-/add",
        body=json.dumps({"dataset": "weather-golden", "trace_id": span.trace_id, "span_id": span.span_id}).encode(),
        headers={"content-type": "application/json", "sec-fetch-site": "same-origin"},
    )
    assert post.status == 200 and post.json() == {"ok": True, "dataset": "weather-golden", "count": 1}
    ds = ui.json("/datasets/weather-golden.json")
    assert [i["span_id"] for i in ds["items"]] == [span.span_id]
    assert ds["dataset"]["exports"]["finetune"] == "/api/v1/datasets/weather-golden/export?format=finetune"
    finetune = ui.get(ds["dataset"]["exports"]["finetune"]).text.splitlines()
    assert json.loads(finetune[0])["messages"][-1]["content"] == "It is 14 °C and cloudy in Paris."
    assert "weather-golden" in ui.get("/datasets").text
    # Cross-site posts and malformed bodies are refused with the one error shape.
    refused = request(
        "POST",
        ui.url + "/datasets/-/add",
        body=b"{}",
        headers={"content-type": "application/json", "sec-fetch-site": "cross-site"},
    )
    assert refused.status == 403 and refused.json()["ok"] is False
    bad = request("POST", ui.url + "/datasets/-/add", body=b"[1", headers={"content-type": "application/json"})
    assert bad.status == 400 and bad.json()["status"] == 400
    unknown = request(
        "POST",
        ui.url + "/datasets/-/add",
        body=json.dumps({"dataset": "x", "trace_id": "0" * 32, "span_id": "0" * 16}).encode(),
        headers={"content-type": "application/json"},
    )
    assert unknown.status == 404
    other_origin = request(
        "POST", ui.url + "/datasets/-/add", body=b"{}", headers={"origin": "http://evil.example", "content-type": "x"}
    )
    assert other_origin.status == 403


def test_add_to_dataset_without_javascript(ui: UIStore) -> None:
    """The plain form post works too, and sends the browser back to the span."""
    span = ui.corpus.spans["streamed"]
    form = urlencode({"dataset_name": "haiku", "trace_id": span.trace_id, "span_id": span.span_id}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded", "origin": ui.url}
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(urllib.request.Request(ui.url + "/datasets/-/add", data=form, headers=headers, method="POST"))
    assert redirect.value.code == 303
    assert redirect.value.headers["location"] == f"/traces/{span.trace_id}#span-{span.span_id}"
    assert [i["span_id"] for i in ui.json("/datasets/haiku.json")["items"]] == [span.span_id]
    bad = request("POST", ui.url + "/datasets/-/add", body=b"trace_id=x", headers=headers)
    assert bad.status == 400 and bad.headers["content-type"].startswith("text/html") and "give a name" in bad.text


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_static_assets_are_served_from_the_package(ui: UIStore) -> None:
    html = ui.get("/traces").text
    served = {}
    for name, kind in (("spyglass.css", "text/css"), ("spyglass.js", "javascript"), ("favicon.svg", "image/svg")):
        href = re.search(rf'"(/-/static/{re.escape(name)}\?v=[0-9a-f]+)"', html)
        assert href, name
        asset = ui.get(href.group(1))
        assert asset.status == 200 and kind in asset.headers["content-type"]
        served[name] = asset.text
    # Data reaches the DOM as text only: no HTML parsing sinks, no code from strings.
    sinks = (
        r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*[\"']on"
    )
    assert not re.search(sinks, served["spyglass.js"])
