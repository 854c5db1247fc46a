"""W3C baggage carries user, session and tenant to a downstream service in another process on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import propagate

from spyglass.instrumentation import _context, _steps, configure_steps, using_attributes, workflow
from spyglass.semconv import extensions as ext
from spyglass.semconv.environment import OTEL_SPYGLASS_CONTEXT_BAGGAGE

# The downstream service: its own process, its own tracer provider with the context-attributes processor
# (baggage switched on by the environment variable), answering each request with the span it recorded.
DOWNSTREAM = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from opentelemetry import propagate
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from spyglass.instrumentation import ContextAttributesSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ContextAttributesSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("downstream")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            ctx = propagate.extract(dict(self.headers.items()))
            with tracer.start_as_current_span("downstream work", context=ctx):
                pass
            span = exporter.get_finished_spans()[-1]
            body = json.dumps({
                "trace_id": format(span.context.trace_id, "032x"),
                "attributes": {k: v for k, v in span.attributes.items()},
            }).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def downstream(tmp_path: Path) -> Iterator[str]:
    script = tmp_path / "downstream.py"
    script.write_text(DOWNSTREAM)
    env = {**_clean_env(), OTEL_SPYGLASS_CONTEXT_BAGGAGE: "true"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


@pytest.fixture
def baggage_on(telemetry, monkeypatch) -> Iterator[object]:
    monkeypatch.setenv(OTEL_SPYGLASS_CONTEXT_BAGGAGE, "true")
    _context._Settings.reset()
    configure_steps(tracer_provider=telemetry.tracer_provider)
    yield telemetry
    _context._Settings.reset()
    _steps._State.tracer = _steps.trace.get_tracer("spyglass.instrumentation.steps")
    _steps._State.policy = None


def call(url: str) -> dict:
    headers: dict[str, str] = {}
    propagate.inject(headers)  # what any instrumented HTTP client does (tracecontext + baggage)
    return httpx.get(url, headers=headers).json()


def test_downstream_spans_carry_user_session_and_tenant(baggage_on, downstream) -> None:
    with using_attributes(
        user_id="u-1", session_id="s-9", tenant_id="acme", metadata={"secret": "x"}, tags=["internal"]
    ):

        @workflow
        def request() -> dict:
            return call(downstream)

        seen = request()
    (local,) = baggage_on.spans()
    assert seen["trace_id"] == format(local.context.trace_id, "032x")  # one trace across both processes
    assert seen["attributes"] == {ext.USER_ID: "u-1", ext.SESSION_ID: "s-9", ext.TENANT_ID: "acme"}
    # Metadata and tags never leave the process.
    assert local.attributes[ext.METADATA_PREFIX + "secret"] == "x" and local.attributes[ext.TAGS] == ("internal",)


def test_baggage_is_off_unless_asked(telemetry, downstream) -> None:
    _context._Settings.reset()
    try:
        with using_attributes(user_id="u-1"):
            seen = call(downstream)
        assert ext.USER_ID not in seen["attributes"]
        with using_attributes(user_id="u-2", baggage=True):  # per block, without the variable
            seen = call(downstream)
        assert seen["attributes"] == {ext.USER_ID: "u-2"}
    finally:
        _context._Settings.reset()
