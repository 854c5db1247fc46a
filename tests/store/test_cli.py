"""The ``spyglass`` CLI as a user runs it (a subprocess, so output is not a TTY: plain text)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from tests.store.corpus import Corpus
from tests.store.server import StoreServer


def spyglass(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spyglass.store", *args], capture_output=True, text=True, timeout=timeout
    )


def test_version() -> None:
    done = spyglass("--version")
    assert done.returncode == 0 and done.stdout.startswith("spyglass ")


def test_tail_prints_the_last_calls_with_full_prompt_and_response(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    done = spyglass("tail", "-n", "3", "--db", str(server.db))
    assert done.returncode == 0, done.stderr
    last = sorted(corpus.calls, key=lambda c: c.start_ns)[-3:]
    out = done.stdout
    positions = [out.index(c.trace_id) for c in last]
    assert positions == sorted(positions)  # oldest first, newest last, like inspect_history
    for call in last:
        assert f"user: {call.prompt}" in out
        assert (f"assistant: {call.answer}" if call.status == "success" else call.answer) in out
        assert call.model in out
    assert "\x1b[" not in out  # plain output when not a terminal


def test_tail_follow_over_the_api(make_server: Callable[..., StoreServer]) -> None:
    server = make_server()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_http)))
    tracer = provider.get_tracer("cli")

    def call(text: str) -> None:
        attrs = {
            gen_ai.OPERATION_NAME: "chat",
            gen_ai.REQUEST_MODEL: "gpt-4o-mini",
            gen_ai.INPUT_MESSAGES: m.dumps([m.message("user", [m.text(text)])]),
        }
        with tracer.start_as_current_span("chat", attributes=attrs):
            pass

    call("first question")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spyglass.store",
            "tail",
            "-n",
            "5",
            "--follow",
            "--interval",
            "0.2",
            "--url",
            server.api,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 30
        while "first question" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        call("second question arrives later")
        while "second question arrives later" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "user: first question" in seen and "user: second question arrives later" in seen
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
        provider.shutdown()


def test_search_and_stats_json_match_the_api(corpus_server: tuple[StoreServer, Corpus]) -> None:
    server, corpus = corpus_server
    done = spyglass("search", "bravo", "--model", "gpt-4o", "--limit", "1000", "--json", "--db", str(server.db))
    assert done.returncode == 0, done.stderr
    got = {i["span_id"] for i in json.loads(done.stdout)["items"]}
    assert got == {c.span_id for c in corpus.calls if "bravo" in c.words and c.model == "gpt-4o"}
    table = spyglass("search", "bravo", "--model", "gpt-4o", "--db", str(server.db))
    assert table.stdout.splitlines()[0].split("\t")[:3] == ["time", "model", "status"]
    remote = spyglass("stats", "--group-by", "provider", "--json", "--url", server.api)
    local = spyglass("stats", "--group-by", "provider", "--json", "--db", str(server.db))
    api = server.get("/api/v1/stats", group_by="provider").json()
    assert json.loads(remote.stdout) == json.loads(local.stdout) == api
    assert json.loads(local.stdout)["count"] == len(corpus.calls)


def test_export_to_a_file(corpus_server: tuple[StoreServer, Corpus], tmp_path: Path) -> None:
    server, corpus = corpus_server
    out = tmp_path / "acme.csv"
    done = spyglass("export", "--format", "csv", "--tenant", "acme", "-o", str(out), "--db", str(server.db))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["span_id"] for r in rows} == {c.span_id for c in corpus.calls if c.tenant == "acme"}
    out2 = tmp_path / "ft.jsonl"
    done = spyglass("export", "--format", "finetune", "--status", "success", "-o", str(out2), "--url", server.api)
    assert done.returncode == 0, done.stderr
    lines = out2.read_text(encoding="utf-8").splitlines()
    assert len(lines) == sum(1 for c in corpus.calls if c.status == "success")
    assert all(json.loads(x)["messages"][-1]["role"] == "assistant" for x in lines)


def test_expected_failures_are_one_line_errors(tmp_path: Path) -> None:
    done = spyglass("search", "--db", str(tmp_path / "missing.db"))
    assert done.returncode == 1
    assert "Error: no database at" in done.stderr and "Traceback" not in done.stderr
    done = spyglass("stats", "--url", "http://127.0.0.1:9")
    assert done.returncode == 1 and "cannot reach" in done.stderr
    done = spyglass("serve", "--retention-age", "forever")
    assert done.returncode == 2 and "not an age" in done.stderr


def test_rich_output_prints_untrusted_text_literally() -> None:
    from rich.console import Console

    from spyglass.store._cli import _print_call

    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=200)
    item = {
        "timestamp": "2026-01-01T00:00:00.000Z",
        "provider": "openai",
        "model": "[red]gpt[/red]",
        "alias": None,
        "status": "success",
        "duration_ms": 12.0,
        "input_tokens": 1,
        "output_tokens": 2,
        "cost": 0.5,
        "trace_id": "a" * 32,
        "input_text": "user: [bold magenta]not markup[/] \x1b]0;pwned\x07",
        "output_text": "[link=x]y[/link]",
    }
    _print_call(item, console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[bold magenta]not markup[/]" in out and "[link=x]y[/link]" in out and "[red]gpt[/red]" in out
    # A terminal escape in a prompt is shown, not sent to the terminal.
    assert "\x1b]0;pwned" not in out and "\\x1b]0;pwned\\x07" in out
