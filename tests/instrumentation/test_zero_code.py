"""Zero-code: ``opentelemetry-instrument`` runs an unmodified script, our entry points load, spans arrive.

The script is a plain OpenAI + Anthropic program; the only configuration is environment variables (base URLs
pointing at the replay server, the console exporter). The official ``openai`` entry point (installed for the
conformance test) is disabled so the spans checked are ours alone, and so is ``spyglass_dspy`` (DSPy is not
used here, and the auto-loader aborts on the first entry point that fails to load).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import recording

SCRIPT = """
import anthropic, openai

oai = openai.OpenAI(max_retries=0)
reply = oai.chat.completions.create(
    model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}]
)
print("openai:", reply.choices[0].message.content)
claude = anthropic.Anthropic(max_retries=0)
msg = claude.messages.create(
    model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": "What's the capital of France?"}]
)
print("anthropic:", msg.content[0].text)
"""


def _spans(stdout: str) -> list[dict[str, Any]]:
    """The console exporter prints one JSON object per span; collect them."""
    spans, depth, start = [], 0, None
    for i, ch in enumerate(stdout):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                try:
                    obj = json.loads(stdout[start : i + 1])
                except ValueError:
                    continue
                if isinstance(obj, dict) and "context" in obj:
                    spans.append(obj)
    return spans


def test_opentelemetry_instrument_loads_spyglass(replay: Any, tmp_path: Path) -> None:
    chat = recording("openai__chat-completions__nostream__chat__i1")
    msg = recording("anthropic__messages__nostream__anthropic-instrumentation-messages__i0")
    replay.expect(chat, msg)
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    exe = shutil.which("opentelemetry-instrument") or str(Path(sys.executable).parent / "opentelemetry-instrument")
    env = {
        **os.environ,
        "OPENAI_BASE_URL": replay.url + "/v1",
        "OPENAI_API_KEY": "test",
        "ANTHROPIC_BASE_URL": replay.url,
        "ANTHROPIC_API_KEY": "test",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "zero-code-app",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,spyglass_dspy",
    }
    proc = subprocess.run(
        [exe, sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "openai: " + chat.json["choices"][0]["message"]["content"] in proc.stdout
    spans = _spans(proc.stdout)
    ours = {s["name"]: s for s in spans if s["attributes"].get("gen_ai.provider.name")}
    assert set(ours) == {"chat gpt-3.5-turbo", "chat claude-sonnet-4-6"}, [s["name"] for s in spans]
    oai, ant = ours["chat gpt-3.5-turbo"], ours["chat claude-sonnet-4-6"]
    assert oai["kind"] == "SpanKind.CLIENT"
    assert oai["attributes"]["gen_ai.response.id"] == chat.json["id"]
    assert oai["resource"]["attributes"]["service.name"] == "zero-code-app"
    assert ant["attributes"]["gen_ai.usage.output_tokens"] == msg.json["usage"]["output_tokens"]
    assert "gen_ai.input.messages" in ant["attributes"]  # content captured by default
