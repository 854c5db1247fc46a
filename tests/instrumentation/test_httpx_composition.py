"""The HTTP-level instrumentor next to the SDK instrumentors and opentelemetry-instrumentation-httpx."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import httpx2
import openai
import pytest
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind

from spyglass.instrumentation import AnthropicInstrumentor, HttpxInstrumentor, OpenAIInstrumentor
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from tests.conftest import recording
from tests.instrumentation.test_zero_code import _spans


@pytest.fixture
def both(telemetry) -> Iterator[object]:
    """SDK-level and HTTP-level instrumentation together, as ``opentelemetry-instrument`` would load them."""
    sdks = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    raw = HttpxInstrumentor()
    for inst in (*sdks, raw):
        inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield telemetry
    for inst in (raw, *sdks):
        inst.uninstrument()


def llm_spans(spans):
    return [s for s in spans if gen_ai.OPERATION_NAME in s.attributes]


def test_openai_sdk_call_yields_one_llm_span(both, replay) -> None:
    rec = recording("openai__chat-completions__nostream__chat__i1")
    replay.expect(rec)
    client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
    client.chat.completions.create(**rec.request_body)
    (span,) = llm_spans(both.spans())
    assert ext.HTTP_RAW not in span.attributes  # the SDK span, not a second raw one


def test_openai_sdk_stream_yields_one_llm_span(both, replay) -> None:
    rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")
    replay.expect(rec)
    client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
    for _ in client.chat.completions.create(**rec.request_body):
        pass
    (span,) = llm_spans(both.spans())
    assert ext.HTTP_RAW not in span.attributes


async def test_anthropic_async_sdk_call_yields_one_llm_span(both, replay) -> None:
    rec = recording("anthropic__messages__nostream__anthropic-instrumentation-messages__i0")
    replay.expect(rec)
    client = anthropic.AsyncAnthropic(base_url=replay.url, api_key="test", max_retries=0)
    await client.messages.create(**rec.request_body)
    (span,) = llm_spans(both.spans())
    assert ext.HTTP_RAW not in span.attributes


def test_raw_call_next_to_sdk_instrumentation_is_still_traced(both, replay) -> None:
    rec = recording("openai__chat-completions__nostream__chat__i1")
    replay.expect(rec)
    httpx.post(replay.url + rec.path, json=rec.request_body)
    (span,) = llm_spans(both.spans())
    assert span.attributes[ext.HTTP_RAW] is True


@pytest.mark.parametrize("lib", ["httpx", "httpx2"])
@pytest.mark.parametrize("order", ["official-first", "spyglass-first"])
def test_plain_http_span_nests_under_the_llm_span(telemetry, replay, order: str, lib: str) -> None:
    client_lib = httpx if lib == "httpx" else httpx2
    official = HTTPXClientInstrumentor() if lib == "httpx" else HTTPX2ClientInstrumentor()
    ours = HttpxInstrumentor()
    first, second = (official, ours) if order == "official-first" else (ours, official)
    first.instrument(tracer_provider=telemetry.tracer_provider)
    second.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        rec = recording("groq__chat-completions__stream__chat-streaming-legacy__i0")
        replay.expect(rec)
        with client_lib.Client(base_url=replay.url) as c, c.stream("POST", rec.path, json=rec.request_body) as r:
            r.read()
    finally:
        official.uninstrument()
        ours.uninstrument()
    spans = telemetry.spans()
    (llm,) = llm_spans(spans)
    (http,) = [s for s in spans if s is not llm]
    assert http.kind is SpanKind.CLIENT and http.name == "POST"
    assert http.parent is not None and http.parent.span_id == llm.context.span_id
    assert http.context.trace_id == llm.context.trace_id
    # The traceparent the server received names the plain HTTP span (the innermost client span).
    traceparent = replay.requests[-1].headers["traceparent"]
    assert traceparent.split("-")[2] == format(http.context.span_id, "016x")


RAW_SCRIPT = """
import json, os, sys
import httpx, httpx2

base = os.environ["LLM_BASE"]
chat = json.loads(os.environ["CHAT_BODY"])
r = httpx.post(base + os.environ["CHAT_PATH"], json=chat, headers={"Host": "api.groq.com"})
print("httpx:", r.json()["choices"][0]["message"]["content"])
msg = json.loads(os.environ["MSG_BODY"])
with httpx2.Client() as c, c.stream("POST", base + os.environ["MSG_PATH"], json=msg) as s:
    print("httpx2:", sum(1 for _ in s.iter_lines()) > 0)
"""


def test_zero_code_loads_the_http_level_instrumentor(replay, tmp_path) -> None:
    """`opentelemetry-instrument` on an unmodified raw-HTTP script: both calls become LLM spans."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    chat = recording("groq__chat-completions__nostream__chat-legacy__i0")
    msg = recording("anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0")
    replay.expect(chat, msg)
    script = tmp_path / "raw_app.py"
    script.write_text(RAW_SCRIPT)
    exe = shutil.which("opentelemetry-instrument") or str(Path(sys.executable).parent / "opentelemetry-instrument")
    env = {
        **os.environ,
        "LLM_BASE": replay.url,
        "CHAT_PATH": chat.path,
        "MSG_PATH": msg.path,
        "CHAT_BODY": json.dumps(chat.request_body),
        "MSG_BODY": json.dumps(msg.request_body),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        # Spyglass's entry points and the official httpx/httpx2 ones (plain HTTP spans); not the official openai.
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    proc = subprocess.run(
        [exe, sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "httpx: " + chat.json["choices"][0]["message"]["content"] in proc.stdout
    spans = _spans(proc.stdout)
    llm = {s["name"]: s for s in spans if "gen_ai.provider.name" in s["attributes"]}
    groq = llm[f"chat {chat.request_body['model']}"]
    claude = llm[f"chat {msg.request_body['model']}"]
    assert groq["attributes"]["gen_ai.provider.name"] == "groq" and groq["attributes"]["spyglass.http.raw"] is True
    assert claude["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert claude["attributes"]["gen_ai.usage.output_tokens"] == 13
    assert len(llm) == 2
    # The official httpx and httpx2 instrumentations' plain POST spans sit under the LLM spans.
    plain = [s for s in spans if s["name"] == "POST"]
    assert len(plain) == 2
    assert {p["parent_id"] for p in plain} == {groq["context"]["span_id"], claude["context"]["span_id"]}
