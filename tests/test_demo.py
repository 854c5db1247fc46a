"""``spyglass demo`` end to end: a real ``spyglass demo`` process, its sample app traced zero-code through the
Spyglass exporter into its store, checked through the store's HTTP API.

Every expected value comes from the shipped recordings (tests/test_demo_app.py ``expected_calls``) and, for cost,
from ``genai-prices`` directly, never from Spyglass's own pricing code.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from spyglass.store._demo import DEMO_SERVICE_NAME
from spyglass.testing import sample_app
from tests.test_demo_app import expected_calls

TOKEN = "demo-test-token"
READY_TIMEOUT = 90.0
"""Seconds until the demo says where to look (about 15 s on a loaded 2-core machine)."""


@dataclass
class DemoProcess:
    process: subprocess.Popen[str]
    lines: list[str]
    api: str
    opened: Path | None = None

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.api + path, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def _reader(process: subprocess.Popen[str], out: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        out.put(line.rstrip("\n"))


def start_demo(tmp_path: Path, *extra: str, extra_env: dict[str, str] | None = None) -> Iterator[DemoProcess]:
    command = [sys.executable, "-m", "spyglass.store", "demo", "--port", "0", "--otlp-grpc-port", "0"]
    command += ["--otlp-http-port", "0", "--db", str(tmp_path / "demo.db"), *extra]
    # The developer's own OTEL_* settings and provider keys stay out of the demo.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_"))}
    env.update(extra_env or {})
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process, lines), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not any(line.startswith("demo: open ") for line in seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                pytest.fail("spyglass demo did not finish its run:\n" + "\n".join(seen))
            try:
                seen.append(lines.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                continue
        api = next(line.split()[-1] for line in seen if "API and UI" in line).rstrip("/")
        yield DemoProcess(process, seen, api)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    # With a token, as a shared machine should run it: the app's exporter must send it too. With --open, and a
    # "browser" (the BROWSER variable webbrowser honours) that writes down the URL it was asked to open.
    workdir = tmp_path_factory.mktemp("demo")
    opened = workdir / "opened.txt"
    browser = workdir / "browser.py"
    browser.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n", encoding="utf-8")
    runs = start_demo(workdir, "--auth-token", TOKEN, "--open", extra_env={"BROWSER": f"{sys.executable} {browser} %s"})
    for running in runs:
        running.opened = opened
        yield running


@pytest.mark.slow
def test_demo_prints_each_call_and_the_ui_url(demo: DemoProcess) -> None:
    app_lines = [line for line in demo.lines if line.startswith("demo:   ")]
    assert len(app_lines) == 6
    assert sum(" err " in line for line in app_lines) == 1  # the failed call, on purpose
    (url_line,) = [line for line in demo.lines if line.startswith("demo: open ")]
    assert url_line.split()[2] == demo.api + "/"
    page = urllib.request.Request(demo.api + "/", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(page, timeout=10) as response:
        assert response.status == 200 and "text/html" in response.headers["content-type"]
    # --open opened exactly that URL, once the traces were in.
    assert demo.opened is not None
    deadline = time.monotonic() + 20
    while not demo.opened.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert demo.opened.read_text(encoding="utf-8") == demo.api + "/"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(demo.api + "/api/v1/requests", timeout=10)
    assert refused.value.code == 401


@pytest.mark.slow
def test_store_shows_every_call_with_tokens_cost_and_content(demo: DemoProcess) -> None:
    items = demo.get("/api/v1/requests?limit=100&sort=start")["items"]
    expected = expected_calls()
    assert len(items) == len(expected) == sample_app.CALLS
    for item, want in zip(items, expected, strict=True):
        where = want.recording
        assert item["service"] == DEMO_SERVICE_NAME, where
        assert item["provider"] == want.provider, where
        assert item["request_model"] == want.request_model, where
        assert item["user_id"] == "demo-user" and item["session_id"] == "demo-session", where
        if want.question:
            assert want.question in item["input_text"], where
        if not want.ok:
            assert item["status"] == "error", where
            assert item["input_tokens"] is None and item["cost"] is None, where
            continue
        assert item["status"] == "success", where
        assert item["model"] == want.response_model, where
        assert item["input_tokens"] == want.input_tokens, where
        assert item["output_tokens"] == want.output_tokens, where
        assert want.answer in (item["output_text"] or ""), where
        price = calc_price(
            Usage(input_tokens=want.input_tokens, output_tokens=want.output_tokens),
            model_ref=want.response_model,
            provider_id=want.provider,
        )
        assert item["cost"] == pytest.approx(float(price.total_price), rel=1e-9), where


@pytest.mark.slow
def test_pipeline_and_agent_traces_have_their_steps(demo: DemoProcess) -> None:
    spans = demo.get("/api/v1/spans?limit=200&sort=start")["items"]
    by_name = {s["name"]: s for s in spans}
    workflow = by_name["invoke_workflow answer_question"]
    trace = demo.get(f"/api/v1/traces/{workflow['trace_id']}")
    names = json.dumps(trace)
    for step in ("retrieval demo-corpus", "generate", "chat claude-sonnet-4-6"):
        assert step in names
    agent = by_name["invoke_agent weather_agent"]
    agent_spans = [s for s in spans if s["trace_id"] == agent["trace_id"]]
    assert sorted(s["name"] for s in agent_spans) == sorted(
        ["invoke_agent weather_agent", "execute_tool get_current_weather", "chat gpt-3.5-turbo", "chat gpt-3.5-turbo"]
    )


@pytest.mark.slow
def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    runs = start_demo(tmp_path)
    running = next(runs)
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=20) == 0
    runs.close()
    # The database keeps what the run wrote (the store flushes on shutdown).
    from spyglass.store import Filters, Store, queries

    store = Store(tmp_path / "demo.db")
    try:
        assert store.read(queries.search_spans, Filters(llm=True), limit=100)["items"]
    finally:
        store.close()


def test_demo_says_which_sdk_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    from spyglass.store import Settings
    from spyglass.store._demo import run_demo
    from spyglass.store._errors import StoreError

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "anthropic" else real_find_spec(name))
    with pytest.raises(StoreError, match=r"anthropic SDK: pip install 'spyglass\[store,openai,anthropic\]'"):
        run_demo(Settings(db=tmp_path / "db", port=0, otlp_grpc_port=0, otlp_http_port=0))
    assert not (tmp_path / "db").exists()  # nothing was started


def test_app_environment_sends_through_the_spyglass_exporter_with_the_token() -> None:
    from importlib.metadata import entry_points

    from spyglass.semconv import environment as env
    from spyglass.store._demo import _reachable, app_environment

    out = app_environment("http://127.0.0.1:9/v1/traces", {"PATH": "/bin"}, auth_token="a b/c")
    assert out["PATH"] == "/bin"
    assert out[env.OTEL_TRACES_EXPORTER] == "spyglass"
    assert out[env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT] == "http://127.0.0.1:9/v1/traces"
    assert out[env.OTEL_EXPORTER_OTLP_TRACES_HEADERS] == "authorization=Bearer%20a%20b/c"
    assert out[env.OTEL_SERVICE_NAME] == DEMO_SERVICE_NAME
    disabled = set(out["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"].split(","))
    installed = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
    assert {"spyglass_openai", "spyglass_anthropic", "spyglass_httpx"} & disabled == set()
    assert installed - disabled == {"spyglass_openai", "spyglass_anthropic", "spyglass_httpx"} & installed
    assert _reachable("http://0.0.0.0:4319") == "http://127.0.0.1:4319"
    assert _reachable("http://[::]:4318") == "http://[::1]:4318"
    assert _reachable("http://10.1.2.3:4318") == "http://10.1.2.3:4318"


def test_demo_reports_a_busy_port_without_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_"))}
        command = [sys.executable, "-m", "spyglass.store", "demo", "--port", str(port), "--otlp-grpc-port", "0"]
        command += ["--otlp-http-port", "0", "--db", str(tmp_path / "demo.db")]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Error: cannot listen" in result.stderr and "--otlp-grpc-port" in result.stderr
