"""``OTEL_TRACES_EXPORTER=spyglass opentelemetry-instrument python app.py``: no code change in the app, and
``configure()`` for people who set up OpenTelemetry in code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import spyglass.instrumentation
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.testing.replay import ReplayServer
from tests.conftest import recording
from tests.exporter.receivers import GrpcReceiver, HttpReceiver

CACHED = "openai__chat-completions__nostream__cached-tokens__i1"

# opentelemetry-instrument aborts start-up when a registered instrumentor cannot be imported; the
# spyglass_dspy entry point is registered before its class exists, so skip it only while it is missing.
_NOT_YET_BUILT = [] if hasattr(spyglass.instrumentation, "DSPyInstrumentor") else ["spyglass_dspy"]

APP = textwrap.dedent(
    """
    import os
    import openai

    client = openai.OpenAI(base_url=os.environ["APP_BASE_URL"] + "/v1", api_key="test", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "I am bob@example.com, what is my balance?"}]
    )
    print("ANSWER", reply.choices[0].message.content[:40])
    """
)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_opentelemetry_instrument_with_the_spyglass_exporter(
    protocol: str, tmp_path: Path, replay: ReplayServer
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    replay.expect(recording(CACHED))
    receiver = GrpcReceiver() if protocol == "grpc" else HttpReceiver()
    with receiver:
        base = receiver.endpoint if protocol == "grpc" else receiver.endpoint.removesuffix("/v1/traces")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "APP_BASE_URL": replay.url,
            "OTEL_TRACES_EXPORTER": "spyglass",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "billing-bot",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": base,
            # Only Spyglass's instrumentors: the dev extra also installs the official openai/httpx ones.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(["openai", "httpx", "httpx2", *_NOT_YET_BUILT]),
        }
        done = subprocess.run(
            [_bin("opentelemetry-instrument"), sys.executable, str(app)],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "ANSWER" in done.stdout
        chats = [s for s in receiver.spans() if receiver.attributes(s).get(gen_ai.OPERATION_NAME) == "chat"]
    assert chats, f"no chat span received; stderr: {done.stderr[-2000:]}"
    attrs = receiver.attributes(chats[0])
    assert attrs[ext.USAGE_COST] > 0 and attrs[ext.COST_SOURCE] == "genai-prices"
    assert "[REDACTED:EMAIL]" in attrs[gen_ai.INPUT_MESSAGES] and "bob@example.com" not in attrs[gen_ai.INPUT_MESSAGES]
    resource = {kv.key: kv.value.string_value for kv in receiver.requests[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "billing-bot"


def test_configure_reuses_the_provider_and_loads_instrumentors_defensively(
    tmp_path: Path, replay: ReplayServer
) -> None:
    """Runs in a subprocess: configure() installs global providers, which a test process must not keep."""
    script = tmp_path / "configured.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, sys
            import openai
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.resources import Resource

            existing = TracerProvider(resource=Resource.create({"service.name": "preexisting"}))
            trace.set_tracer_provider(existing)

            import spyglass.exporter
            setup = spyglass.exporter.configure(endpoint=os.environ["RECEIVER"], protocol="http/protobuf")
            again = spyglass.exporter.configure()
            client = openai.OpenAI(base_url=os.environ["APP_BASE_URL"] + "/v1", api_key="t", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            print(json.dumps({
                "same_provider": setup.tracer_provider is existing,
                "idempotent": again is setup,
                "instrumented": setup.instrumented,
                "failed": sorted(setup.failed),
            }))
            setup.shutdown()
            """
        )
    )
    replay.expect(recording(CACHED))
    with HttpReceiver() as receiver:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}}
        env.update(APP_BASE_URL=replay.url, RECEIVER=receiver.endpoint)
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr[-3000:]
        chats = [s for s in receiver.spans() if receiver.attributes(s).get(gen_ai.OPERATION_NAME) == "chat"]
    import json

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["same_provider"] and report["idempotent"]
    assert "spyglass_openai" in report["instrumented"]
    # An instrumentor that cannot load (or a library that is missing) is reported, never raised.
    assert set(report["failed"]) <= {"spyglass_dspy", "spyglass_anthropic", "spyglass_httpx"}
    assert len(chats) == 1 and receiver.attributes(chats[0])[ext.USAGE_COST] > 0
    resource = {kv.key: kv.value.string_value for kv in receiver.requests[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "preexisting"
