"""The web UI in real headless Chromium (Debian's ``chromium``, driven by Playwright).

A real ``spyglass serve`` is filled through its OTLP/HTTP port with the corpus of
:mod:`tests.store.ui_support`. Every test fails on a console error, an uncaught page error, a dialog, or a
script side effect of the XSS corpus (``window.__xss``). Screenshots of the main views go to
``artifacts/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.store.ui_support import (
    BIG_PROMPT,
    CHUNK_OFFSETS_MS,
    SYSTEM_PROMPT,
    UNIQUE_WORD,
    XSS_PAYLOADS,
    UIStore,
    running_store,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIStore]:
    with running_store(tmp_path_factory.mktemp("ui-browser") / "spyglass.db") as store:
        yield store


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/apt-packages installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watch:
    """What a page did that it must not: console errors, uncaught errors, dialogs."""

    def __init__(self, page: Page) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser: Browser, ui: UIStore) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch(page)
    yield page
    xss = page.evaluate("() => window.__xss") if not page.is_closed() else None
    context.close()
    assert watch.console == [], watch.console
    assert watch.errors == [], watch.errors
    assert watch.dialogs == [], watch.dialogs
    assert xss is None, f"an XSS payload ran: window.__xss = {xss}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def open_list(page: Page, ui: UIStore, query: str = "") -> None:
    page.goto(ui.url + "/traces" + query)
    page.wait_for_selector("section.cards:not([aria-busy])")


def rows(page: Page) -> list[str]:
    return page.locator("#requests tbody tr").evaluate_all("trs => trs.map(tr => tr.dataset.spanId)")


def test_traces_list_with_summary_and_charts(page: Page, ui: UIStore) -> None:
    open_list(page, ui)
    llm = ui.corpus.llm
    failed = sum(1 for s in llm if s.status == "error")
    expect(page.locator('[data-metric="count"]')).to_have_text(str(len(llm)))
    expect(page.locator('[data-metric="errors"]')).to_have_text(f"{failed} failed")
    expect(page.locator('[data-card="failure"]')).to_have_class(re.compile("card-bad"))
    assert page.locator('figure[data-chart="cost"] svg rect.bar').count() > 3
    assert page.locator('figure[data-chart="latency"] svg polyline').count() == 3
    assert len(rows(page)) == 50
    assert rows(page)[0] == ui.corpus.spans["xss"].span_id  # newest first
    error_row = page.locator(f'tr[data-span-id="{ui.corpus.spans["error_openai"].span_id}"]')
    expect(error_row.locator(".status-error")).to_have_count(1)
    expect(error_row).to_contain_text("Rate limit reached")
    ok_row = page.locator(f'tr[data-span-id="{ui.corpus.spans["openai"].span_id}"]')
    expect(ok_row.locator(".status-ok")).to_have_count(1)
    # Every control in the filter bar has a label.
    for field in page.locator("form.filters input:not([type=hidden]), form.filters select").all():
        assert page.locator(f'label[for="{field.get_attribute("id")}"]').count() == 1
    shot(page, "traces")


def test_filter_bar_keeps_state_in_the_url(page: Page, ui: UIStore) -> None:
    open_list(page, ui)
    page.fill("#f-model", "gpt-4o")
    page.select_option("#f-status", "error")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("section.cards:not([aria-busy])")
    assert page.url.endswith("/traces?model=gpt-4o&status=error")  # empty fields stay out of the URL
    want = {s.span_id for s in ui.corpus.llm if s.model == "gpt-4o" and s.status == "error"}
    assert set(rows(page)) == want
    expect(page.locator('[data-metric="failure_rate"]')).to_have_text("100%")
    # The URL is the state: loading it again shows the same view, and a chip removes one filter.
    page.goto(page.url)
    assert set(rows(page)) == want
    expect(page.locator("#f-model")).to_have_value("gpt-4o")
    page.click('.chip:has-text("status")')
    assert page.url.endswith("/traces?model=gpt-4o")
    assert set(rows(page)) == {s.span_id for s in ui.corpus.llm if s.model == "gpt-4o"}
    shot(page, "traces-filtered")


def test_date_range_filter(page: Page, ui: UIStore) -> None:
    newest = ui.json("/traces.json")["items"][:2]
    since = newest[-1]["start_time"][:19]  # the datetime-local field holds seconds, UTC
    open_list(page, ui)
    page.fill("#f-since", since)
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("section.cards:not([aria-busy])")
    assert "since=" in page.url
    assert rows(page) == [i["span_id"] for i in newest if i["start_time"][:19] >= since]


def test_search_text_and_open_with_the_keyboard(page: Page, ui: UIStore) -> None:
    open_list(page, ui)
    page.keyboard.press("/")
    expect(page.locator("#f-q")).to_be_focused()
    page.keyboard.type(UNIQUE_WORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("section.cards:not([aria-busy])")
    assert rows(page) == [ui.corpus.spans["anthropic"].span_id]
    page.keyboard.press("j")
    expect(page.locator("#requests tbody tr").first).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(ui.corpus.spans["anthropic"].trace_id))
    expect(page.locator(f"#span-{ui.corpus.spans['anthropic'].span_id}")).to_be_visible()


def test_keyboard_moves_through_the_list(page: Page, ui: UIStore) -> None:
    open_list(page, ui)
    ids = rows(page)
    focused = "() => document.activeElement.dataset.spanId"
    for key, index in (("j", 0), ("j", 1), ("j", 2), ("k", 1), ("ArrowDown", 2), ("ArrowUp", 1)):
        page.keyboard.press(key)
        assert page.evaluate(focused) == ids[index], key
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/traces/[0-9a-f]{32}#span-" + ids[1]))


def test_trace_detail_toggles_and_copy(page: Page, ui: UIStore) -> None:
    span = ui.corpus.spans["anthropic"]
    page.goto(f"{ui.url}/traces/{span.trace_id}")
    panel = page.locator(f"#span-{span.span_id}")
    system = panel.locator("details.system")
    expect(system).not_to_have_attribute("open", "")
    expect(system.locator("pre.text")).not_to_be_visible()
    system.locator("summary").click()
    expect(system.locator("pre.text")).to_have_text(SYSTEM_PROMPT)
    panel.locator("details.thinking summary").click()
    expect(panel.locator("details.thinking pre")).to_contain_text("Kumquats are in the Citrus family")
    expect(panel.locator('[data-token="cache_write"] td')).to_have_text("2,048")
    expect(panel.locator('[data-token="reasoning"] td')).to_have_text("380")
    expect(panel.locator('[data-cost="cache_write"] td')).to_have_text("$0.007680")
    shot(page, "trace-anthropic")

    panel.locator('[data-toggle-view="json"]').click()
    expect(panel.locator('[data-toggle-view="json"]')).to_have_attribute("aria-pressed", "true")
    expect(panel.locator(".view-pretty")).to_be_hidden()
    json_view = panel.locator(".view-json pre")
    expect(json_view).to_contain_text('"gen_ai.request.model": "claude-sonnet-4-5"')
    data = json.loads(json_view.text_content() or "")
    assert data["span_id"] == span.span_id and data["attributes"]["gen_ai.usage.input_tokens"] == 3100
    shot(page, "trace-json")
    panel.locator('[data-toggle-view="pretty"]').click()
    expect(panel.locator(".view-json")).to_be_hidden()

    clipboard = "() => navigator.clipboard.readText()"
    panel.locator('button[aria-label="Copy prompt"]').click()
    expect(page.locator(".toast")).to_have_text("Copied")
    assert page.evaluate(clipboard) == f"Is a {UNIQUE_WORD} a citrus fruit?"
    panel.locator('button[aria-label="Copy response"]').click()
    assert page.evaluate(clipboard) == "Yes."
    panel.locator('button[aria-label="Copy system prompt"]').click()
    assert page.evaluate(clipboard) == SYSTEM_PROMPT


def test_error_banner_and_tool_calls(page: Page, ui: UIStore) -> None:
    failed = ui.corpus.spans["error_openai"]
    page.goto(f"{ui.url}/traces/{failed.trace_id}")
    banner = page.locator(f"#span-{failed.span_id} .banner-error")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("429")
    expect(banner.locator("pre")).to_contain_text('"code": "rate_limit_exceeded"')
    shot(page, "trace-error")
    call = ui.corpus.spans["tool_call"]
    page.goto(f"{ui.url}/traces/{call.trace_id}")
    panel = page.locator(f"#span-{call.span_id}")
    panel.locator("details.tools summary").click()
    expect(panel.locator(".tooldef")).to_contain_text("Current weather for a city.")
    expect(panel.locator(".part-tool_call code.fn")).to_have_text("get_weather")
    expect(panel.locator(".part-tool_call pre")).to_contain_text('"city": "Paris"')


def test_large_value_loads_on_demand(page: Page, ui: UIStore) -> None:
    big = ui.corpus.spans["big"]
    page.goto(f"{ui.url}/traces/{big.trace_id}")
    text = page.locator(f"#span-{big.span_id} .msg-user pre.text")
    assert len(text.text_content() or "") < len(BIG_PROMPT) / 10
    page.locator(f"#span-{big.span_id} button.more").click()
    expect(page.locator(f"#span-{big.span_id} button.more")).to_have_count(0)
    assert text.text_content() == BIG_PROMPT


def test_streamed_response_and_raw_chunk_toggle(page: Page, ui: UIStore) -> None:
    streamed = ui.corpus.spans["streamed"]
    page.goto(f"{ui.url}/traces/{streamed.trace_id}")
    panel = page.locator(f"#span-{streamed.span_id}")
    expect(panel.locator(".stream")).to_contain_text("21 chunks")
    expect(panel.locator(".stream")).to_contain_text("first chunk after 312 ms")
    expect(panel.locator(".msg-assistant pre.text")).to_contain_text("The trace remembers")
    chunks = panel.locator(".chunks")
    expect(chunks).to_be_hidden()
    panel.locator("[data-toggle-chunks]").click()
    expect(chunks).to_be_visible()
    expect(chunks).to_contain_text("21 chunks")
    # A sender that recorded each chunk: the toggle shows them with their times.
    recorded = ui.corpus.spans["streamed_events"]
    page.goto(f"{ui.url}/traces/{recorded.trace_id}")
    panel = page.locator(f"#span-{recorded.span_id}")
    panel.locator("[data-toggle-chunks]").click()
    offsets = panel.locator(".chunks tbody td.num").all_text_contents()
    assert offsets == [f"{ms:.1f}" for ms in CHUNK_OFFSETS_MS]
    expect(panel.locator(".stream")).to_contain_text("first chunk after 310 ms")


def test_pipeline_waterfall(page: Page, ui: UIStore) -> None:
    c = ui.corpus.spans
    page.goto(f"{ui.url}/traces/{c['pipeline'].trace_id}")
    assert page.locator(".wf-row .wf-label").all_text_contents() == [
        "rag_pipeline",
        "retrieve",
        "dspy.Predict(GenerateAnswer)",
        "chat gpt-4o-mini",
        "lookup_author",
    ]
    assert page.locator(".wf-row .wf-share").all_text_contents()[:2] == ["100.0%", "13.3%"]
    page.locator(".wf-name", has_text="lookup_author").click()
    assert page.url.endswith(f"#span-{c['tool'].span_id}")
    expect(page.locator(f"#span-{c['tool'].span_id}")).to_contain_text('"born": 1920')
    attrs = page.locator(f"#span-{c['retrieve'].span_id} details.block")
    attrs.locator("summary").click()
    expect(attrs.locator("pre")).to_contain_text('"spyglass.step.kind": "retrieval"')
    # n / p move between the span panels (focus is in the retrieve panel now).
    for key, span in (("n", "predict"), ("n", "pipeline_llm"), ("p", "predict"), ("p", "retrieve")):
        page.keyboard.press(key)
        expect(page.locator(f"#span-{c[span].span_id}")).to_be_focused()
    assert page.url.endswith(f"#span-{c['retrieve'].span_id}")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "trace-pipeline")


def test_add_to_dataset_and_browse_it(page: Page, ui: UIStore) -> None:
    span = ui.corpus.spans["openai"]
    page.goto(f"{ui.url}/traces/{span.trace_id}")
    form = page.locator(f"#span-{span.span_id} form[data-add-dataset]")
    form.locator("input[name=dataset_name]").fill("golden")
    form.locator("button[type=submit]").click()
    expect(form.locator(".form-status")).to_have_text("Added to golden (1 items)")
    assert page.url.endswith(span.trace_id)  # no navigation: the page stays where it was
    page.click('nav.mainnav a:has-text("Datasets")')
    row = page.locator("#datasets tbody tr", has_text="golden")
    expect(row.locator("td.num")).to_have_text("1")
    shot(page, "datasets")
    row.locator("a", has_text="golden").click()
    expect(page.locator("#dataset-items tbody tr")).to_have_count(1)
    expect(page.locator("#dataset-items")).to_contain_text("gpt-4o-mini")
    with page.expect_download() as download:
        page.click('a:has-text("Fine-tune JSONL")')
    example = json.loads(Path(download.value.path()).read_text().splitlines()[0])
    assert example["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}


def test_exports_of_the_current_filter(page: Page, ui: UIStore) -> None:
    open_list(page, ui, "?provider=anthropic")
    want = {s.span_id for s in ui.corpus.llm if (s.model or "").startswith("claude")}
    downloads = {}
    for label in ("CSV", "JSONL", "Fine-tune JSONL"):
        with page.expect_download() as download:
            page.click(f'.exports a:text-is("{label}")')
        downloads[label] = Path(download.value.path()).read_text()
    assert {r["span_id"] for r in csv.DictReader(io.StringIO(downloads["CSV"]))} == want
    assert {json.loads(line)["span_id"] for line in downloads["JSONL"].splitlines()} == want
    finetune = [json.loads(line) for line in downloads["Fine-tune JSONL"].splitlines()]
    assert finetune and all(e["messages"][-1]["role"] == "assistant" for e in finetune)


def test_xss_corpus_executes_nothing(page: Page, ui: UIStore) -> None:
    xss = ui.corpus.spans["xss"]
    injected = (
        "() => document.querySelectorAll('script:not([src]), iframe, img, object, embed, style, "
        "a#xss-link, svg[onload], [onerror], [onload], [onclick]').length"
    )
    for path in ("/traces", "/stats", f"/traces/{xss.trace_id}"):
        page.goto(ui.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(injected) == 0, path
    panel = page.locator(f"#span-{xss.span_id}")
    panel.locator("details.system summary").click()
    panel.locator("details.tools summary").click()
    # The payloads are shown, as text.
    expect(panel.locator("details.system pre.text")).to_have_text("\n".join(XSS_PAYLOADS))
    expect(panel.locator(".tooldef code.fn")).to_have_text("<svg onload=alert(11)>")
    expect(page.locator("h1")).to_contain_text("<script>window.__xss=9</script>")
    panel.locator('[data-toggle-view="json"]').click()
    expect(panel.locator(".view-json pre")).to_contain_text("window.__xss = 1")
    panel.locator('button[aria-label="Copy prompt"]').click()
    assert page.evaluate(injected) == 0
    assert page.title().startswith("Trace ")
    shot(page, "trace-xss")


def test_stats_page(page: Page, ui: UIStore) -> None:
    page.goto(ui.url + "/stats")
    models = page.locator('table[data-group="model"] tbody tr')
    expect(models).to_have_count(len({s.model for s in ui.corpus.llm}))
    assert page.locator(".chart-bad svg rect.bar").count() > 0
    shot(page, "stats")
    page.locator('table[data-group="provider"] a', has_text="anthropic").click()
    page.wait_for_selector("section.cards:not([aria-busy])")
    assert page.url.endswith("/traces?provider=anthropic")
    assert len(rows(page)) == sum(1 for s in ui.corpus.llm if (s.model or "").startswith("claude"))
