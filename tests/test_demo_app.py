"""The demo's sample LLM app: its recordings ship with the package and each call yields the right span.

``expected_calls`` reads what every call must show straight from the shipped recordings (model, token counts,
question, answer), so the end-to-end tests (tests/test_demo.py, tests/test_demo_phoenix.py) check the backends
against values computed independently of Spyglass's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pytest

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.testing import sample_app
from spyglass.testing.replay import Recording

PROVENANCE = ("source_repo", "source_commit", "source_path", "source_url", "license")


@dataclass(frozen=True)
class ExpectedCall:
    recording: str
    provider: str
    request_model: str
    response_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    question: str
    answer: str
    """Text of the answer; for a tool call, the tool's name."""
    ok: bool


def _sse_data(rec: Recording) -> list[dict[str, Any]]:
    out = []
    for event in rec.events():
        for line in event.splitlines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                out.append(json.loads(line[5:]))
    return out


def _question(rec: Recording) -> str:
    content = rec.request_body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def _expect(rec: Recording) -> ExpectedCall:
    body = rec.request_body
    base: dict[str, Any] = {
        "recording": rec.name,
        "provider": rec.provider,
        "request_model": body["model"],
        "question": _question(rec) if rec.name != sample_app.RECORDINGS[4] else "",
    }
    if rec.status >= 400:
        return ExpectedCall(**base, response_model=None, input_tokens=None, output_tokens=None, answer="", ok=False)
    if rec.provider == "openai" and not rec.streaming:
        data = rec.json
        message = data["choices"][0]["message"]
        answer = message["content"] or message["tool_calls"][0]["function"]["name"]
        usage = data["usage"]
        return ExpectedCall(
            **base,
            response_model=data["model"],
            input_tokens=usage["prompt_tokens"],
            output_tokens=usage["completion_tokens"],
            answer=answer,
            ok=True,
        )
    if rec.provider == "openai":
        chunks = _sse_data(rec)
        usage = next(c["usage"] for c in chunks if c.get("usage"))
        text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
        return ExpectedCall(
            **base,
            response_model=chunks[0]["model"],
            input_tokens=usage["prompt_tokens"],
            output_tokens=usage["completion_tokens"],
            answer=text,
            ok=True,
        )
    if not rec.streaming:
        data = rec.json
        usage = data["usage"]
        text = "".join(b["text"] for b in data["content"] if b["type"] == "text")
        model = data["model"]
    else:
        events = _sse_data(rec)
        start = next(e["message"] for e in events if e["type"] == "message_start")
        usage = {**start["usage"], **next(e["usage"] for e in events if e["type"] == "message_delta")}
        text = "".join(
            e["delta"]["text"]
            for e in events
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
        )
        model = start["model"]
    # Per the GenAI conventions, Anthropic input tokens include the cache reads and writes.
    input_tokens = (
        usage["input_tokens"]
        + (usage.get("cache_read_input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
    )
    return ExpectedCall(
        **base,
        response_model=model,
        input_tokens=input_tokens,
        output_tokens=usage["output_tokens"],
        answer=text,
        ok=True,
    )


def message_text(messages_json: str) -> str:
    """The text of a gen_ai.*.messages attribute: text parts, and tool calls as their name and arguments."""
    out = []
    for message in json.loads(messages_json):
        for part in message.get("parts", []):
            if part.get("type") == "text":
                out.append(part["content"])
            elif part.get("type") == "tool_call":
                out.append(f"{part.get('name')}({json.dumps(part.get('arguments'))})")
    return "\n".join(out)


def expected_calls() -> list[ExpectedCall]:
    """Every LLM call one run of the sample app makes, in order, as the recordings say it went."""
    return [_expect(rec) for rec in sample_app.recordings()]


def test_recordings_ship_with_the_package_with_their_provenance() -> None:
    shipped = resources.files("spyglass.testing") / "recordings"
    names = sorted(p.name for p in shipped.iterdir() if p.name.endswith(".json"))
    assert names == sorted(f"{n}.json" for n in sample_app.RECORDINGS)
    for rec in sample_app.recordings():
        for field in PROVENANCE:
            assert rec.raw[field], (rec.name, field)
        assert rec.raw["license"] in {"Apache-2.0", "MIT", "BSD-3-Clause"}
    assert len(expected_calls()) == sample_app.CALLS


def test_every_call_produces_one_llm_span_with_the_recorded_usage_and_content(replay, telemetry) -> None:
    from spyglass.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor, configure_steps

    openai_instrumentor, anthropic_instrumentor = OpenAIInstrumentor(), AnthropicInstrumentor()
    openai_instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    anthropic_instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    configure_steps(tracer_provider=telemetry.tracer_provider)
    try:
        replay.expect(*sample_app.recordings())
        openai_client, anthropic_client = sample_app._clients(replay.url)
        results = sample_app.SampleApp(openai_client, anthropic_client).run()
    finally:
        openai_instrumentor.uninstrument()
        anthropic_instrumentor.uninstrument()
        configure_steps()
    assert not replay.pending, "the app did not make every recorded call"
    assert [r.ok for r in results] == [True, True, True, True, False, True]

    spans = telemetry.spans()
    llm = [s for s in spans if s.attributes.get(gen_ai.OPERATION_NAME) == "chat"]
    expected = expected_calls()
    assert len(llm) == len(expected) == sample_app.CALLS
    # Spans end in call order except that nothing else ends between them, so sort by start time.
    llm.sort(key=lambda s: s.start_time)
    for span, want in zip(llm, expected, strict=True):
        attrs = span.attributes
        assert attrs[gen_ai.REQUEST_MODEL] == want.request_model, want.recording
        assert attrs.get(gen_ai.USAGE_INPUT_TOKENS) == want.input_tokens, want.recording
        assert attrs.get(gen_ai.USAGE_OUTPUT_TOKENS) == want.output_tokens, want.recording
        assert attrs[ext.USER_ID] == "demo-user" and attrs[ext.SESSION_ID] == "demo-session"
        if want.question:
            assert want.question in message_text(attrs[gen_ai.INPUT_MESSAGES]), want.recording
        if want.ok:
            assert want.answer in message_text(attrs[gen_ai.OUTPUT_MESSAGES]), want.recording
        else:
            assert span.status.status_code.name == "ERROR"
            assert attrs[gen_ai.ERROR_TYPE]

    by_name = {s.name: s for s in spans}
    # The agent: its two LLM calls and the tool run inside it.
    agent = by_name["invoke_agent weather_agent"]
    tool = by_name["execute_tool get_current_weather"]
    assert tool.parent is not None and tool.parent.span_id == agent.context.span_id
    assert json.loads(tool.attributes[gen_ai.TOOL_CALL_ARGUMENTS]) == {"location": "San Francisco"}
    agent_calls = [s for s in llm if s.parent is not None and s.parent.span_id == agent.context.span_id]
    assert len(agent_calls) == 2
    # The pipeline: workflow -> retrieval and generate -> the streamed Anthropic call.
    workflow = by_name["invoke_workflow answer_question"]
    retrieval = by_name["retrieval demo-corpus"]
    generate = by_name["generate"]
    assert retrieval.parent.span_id == workflow.context.span_id
    assert generate.parent.span_id == workflow.context.span_id
    assert llm[-1].parent.span_id == generate.context.span_id
    assert "Rayleigh" in retrieval.attributes[gen_ai.RETRIEVAL_DOCUMENTS]


@pytest.mark.parametrize("argv", [["--real"]])
def test_real_mode_without_keys_says_what_it_needs(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert sample_app.main(argv) == 2
    assert "OPENAI_API_KEY or ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_real_mode_uses_the_provider_settings_from_the_environment(
    replay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --real builds the clients the way the SDKs do by default, from OPENAI_* / ANTHROPIC_* variables; here they
    # point at the replay server instead of the providers.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", replay.url + "/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", replay.url)
    replay.expect(*sample_app.recordings())
    assert sample_app.main(["--real", "--openai-model", "gpt-4o-mini"]) == 0
    assert not replay.pending
    openai_models = [r.json()["model"] for r in replay.requests if r.path.endswith("/chat/completions")]
    # Every OpenAI call used the chosen model except the one that must fail.
    assert openai_models == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "this-model-does-not-exist"]
    assert {r.headers["authorization"] for r in replay.requests if "/chat/" in r.path} == {"Bearer sk-test"}
    assert capsys.readouterr().out.count("\n") == 6


def test_real_mode_with_one_key_makes_only_that_providers_calls(replay, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", replay.url)
    replay.expect(*[r for r in sample_app.recordings() if r.provider == "anthropic"])
    assert sample_app.main(["--real"]) == 0
    assert not replay.pending
    assert {r.path for r in replay.requests} == {"/v1/messages"}
