"""Completion hooks and the ``spyglass_upload`` hook, through the real SDKs on recorded traffic.

Files written by the upload hook validate against the semconv message schema and hold exactly what the span
attribute holds; the span carries the references; ``NO_CONTENT`` plus the hook keeps content off the span
but writes the files; a failing hook never reaches the application; the queue limit drops and counts;
util-genai's own ``upload`` hook and third-party hooks get util-genai dataclasses; zero-code configuration
through environment variables works in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from spyglass.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor, UploadCompletionHook
from spyglass.instrumentation import _hooks as hooks
from spyglass.semconv import gen_ai
from spyglass.semconv.validation import validate
from spyglass.testing.replay import Recording
from tests.conftest import Telemetry, recording

from .llm_support import anthropic_client, llm_spans, openai_client, sdk_call
from .test_streams import _recording as stream_recording
from .test_streams import _run as run_stream
from .test_zero_code import _spans as console_spans

OPENAI_TOOLS = "openai__chat-completions__nostream__chat-tools__i0"
ANTHROPIC_SYSTEM_TOOLS = "anthropic__messages__nostream__multiple-parallel-tool-calls__i1"
ANTHROPIC_STREAM = "anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0"
RESPONSES = "openai__responses__nostream__responses-create-captures-content-content-mode0__i0"
CHAT = "openai__chat-completions__nostream__chat__i1"

_KIND = {
    gen_ai.INPUT_MESSAGES_REF: (gen_ai.INPUT_MESSAGES, "InputMessages"),
    gen_ai.OUTPUT_MESSAGES_REF: (gen_ai.OUTPUT_MESSAGES, "OutputMessages"),
    gen_ai.SYSTEM_INSTRUCTIONS_REF: (gen_ai.SYSTEM_INSTRUCTIONS, "SystemInstructions"),
    gen_ai.TOOL_DEFINITIONS_REF: (gen_ai.TOOL_DEFINITIONS, "ToolDefinitions"),
}


def _path(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


def _read(url: str) -> Any:
    text = _path(url).read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1
    return json.loads(text)


def _instrument(t: Telemetry, tracer_provider: Any = None, **kwargs: Any) -> None:
    for inst in (OpenAIInstrumentor(), AnthropicInstrumentor()):
        inst.instrument(tracer_provider=tracer_provider or t.tracer_provider, meter_provider=t.meter_provider, **kwargs)


@pytest.fixture
def uninstrument() -> Iterator[None]:
    yield
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()


@pytest.fixture
def upload(tmp_path: Path) -> Iterator[UploadCompletionHook]:
    hook = UploadCompletionHook(str(tmp_path / "content"))
    yield hook
    hook.shutdown()


def _call(rec: Recording, replay: Any) -> Any:
    replay.expect(rec)
    result = sdk_call(rec, openai_client(replay, rec), anthropic_client(replay))()
    if rec.streaming:
        return [c.model_dump() for c in result]
    return result


def _only_span(t: Telemetry) -> Any:
    spans = llm_spans(t)
    assert len(spans) == 1, [s.name for s in t.spans()]
    return spans[0]


# --- the upload hook on recorded calls -------------------------------------------------------------------


@pytest.mark.parametrize("name", [OPENAI_TOOLS, ANTHROPIC_SYSTEM_TOOLS, ANTHROPIC_STREAM, RESPONSES])
def test_upload_files_equal_the_span_content(
    name: str, replay: Any, telemetry: Telemetry, upload: UploadCompletionHook, uninstrument: None
) -> None:
    _instrument(telemetry, completion_hook=upload)
    _call(recording(name), replay)
    assert upload.force_flush(10)
    attrs = _only_span(telemetry).attributes
    refs = {k: attrs[k] for k in _KIND if k in attrs}
    assert gen_ai.INPUT_MESSAGES_REF in refs and gen_ai.OUTPUT_MESSAGES_REF in refs
    # Every content attribute on the span has its file, and the file holds the same value.
    assert {_KIND[k][0] for k in refs} == {k for k in gen_ai.CONTENT_ATTRIBUTES if k in attrs}
    for ref, url in refs.items():
        attribute, kind = _KIND[ref]
        value = _read(url)
        validate(value, kind)
        assert value == json.loads(attrs[attribute])
    assert upload.uploaded == len(refs) and upload.dropped == 0


def test_system_instructions_and_tools_are_written_once(
    replay: Any, telemetry: Telemetry, upload: UploadCompletionHook, uninstrument: None
) -> None:
    _instrument(telemetry, completion_hook=upload)
    rec = recording(ANTHROPIC_SYSTEM_TOOLS)
    _call(rec, replay)
    upload.force_flush(10)
    _call(rec, replay)
    upload.force_flush(10)
    first, second = (s.attributes for s in llm_spans(telemetry))
    assert first[gen_ai.SYSTEM_INSTRUCTIONS_REF] == second[gen_ai.SYSTEM_INSTRUCTIONS_REF]
    assert first[gen_ai.TOOL_DEFINITIONS_REF] == second[gen_ai.TOOL_DEFINITIONS_REF]
    assert first[gen_ai.INPUT_MESSAGES_REF] != second[gen_ai.INPUT_MESSAGES_REF]
    assert upload.uploaded == 6  # 2 x (inputs, outputs) + one system instruction file + one tool file


def test_no_content_keeps_content_off_the_span_but_writes_files(
    replay: Any, telemetry: Telemetry, upload: UploadCompletionHook, uninstrument: None
) -> None:
    rec = recording(ANTHROPIC_SYSTEM_TOOLS)
    _instrument(telemetry)
    _call(rec, replay)  # reference run: what SPAN_ONLY records
    reference = _only_span(telemetry).attributes
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    telemetry.exporter.clear()

    _instrument(telemetry, completion_hook=upload, capture_content="NO_CONTENT")
    _call(rec, replay)
    assert upload.force_flush(10)
    attrs = _only_span(telemetry).attributes
    assert not set(gen_ai.CONTENT_ATTRIBUTES) & set(attrs)
    assert attrs[gen_ai.USAGE_OUTPUT_TOKENS] == reference[gen_ai.USAGE_OUTPUT_TOKENS]
    for ref, (attribute, _) in _KIND.items():
        assert _read(attrs[ref]) == json.loads(reference[attribute])


def test_jsonl_format(tmp_path: Path, replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    hook = UploadCompletionHook(str(tmp_path), upload_format="jsonl")
    try:
        _instrument(telemetry, completion_hook=hook)
        _call(recording(ANTHROPIC_SYSTEM_TOOLS), replay)
        assert hook.force_flush(10)
    finally:
        hook.shutdown()
    attrs = _only_span(telemetry).attributes
    url = attrs[gen_ai.INPUT_MESSAGES_REF]
    assert url.endswith("_inputs.jsonl")
    lines = [json.loads(line) for line in _path(url).read_text().splitlines()]
    assert [line.pop("index") for line in lines] == list(range(len(lines)))
    assert lines == json.loads(attrs[gen_ai.INPUT_MESSAGES])


def test_event_record_gets_the_references(
    replay: Any, telemetry: Telemetry, upload: UploadCompletionHook, uninstrument: None
) -> None:
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _instrument(telemetry, completion_hook=upload, capture_content="EVENT_ONLY", logger_provider=logger_provider)
    _call(recording(CHAT), replay)
    [record] = [r.log_record for r in logs.get_finished_logs()]
    span_attrs = _only_span(telemetry).attributes
    assert record.attributes[gen_ai.INPUT_MESSAGES_REF] == span_attrs[gen_ai.INPUT_MESSAGES_REF]
    assert record.attributes[gen_ai.OUTPUT_MESSAGES_REF] == span_attrs[gen_ai.OUTPUT_MESSAGES_REF]


def test_hook_runs_for_unsampled_spans(replay: Any, telemetry: Telemetry, upload: UploadCompletionHook) -> None:
    exporter = InMemorySpanExporter()
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    unsampled.add_span_processor(SimpleSpanProcessor(exporter))
    OpenAIInstrumentor().instrument(tracer_provider=unsampled, completion_hook=upload)
    try:
        _call(recording(CHAT), replay)
    finally:
        OpenAIInstrumentor().uninstrument()
    assert upload.force_flush(10)
    assert exporter.get_finished_spans() == ()
    assert upload.uploaded == 2  # inputs and outputs, although no span was recorded


# --- hooks never break the application -------------------------------------------------------------------


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def on_completion(self, **kwargs: Any) -> None:
        self.calls += 1
        raise RuntimeError("bug in the hook")


def test_failing_hook_does_not_affect_the_app(replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    rec = recording(CHAT)
    hook = Broken()
    _instrument(telemetry, completion_hook=hook)
    completion = _call(rec, replay)
    assert completion.model_dump(mode="json", exclude_unset=True) == rec.json
    span = _only_span(telemetry)
    assert gen_ai.INPUT_MESSAGES in span.attributes  # the span is recorded as without a hook
    assert hook.calls == 1

    telemetry.exporter.clear()
    stream = stream_recording("anthropic", "exhaust")
    with suppress_instrumentation():
        baseline, _ = run_stream("anthropic", False, replay, stream, "exhaust")
    seen, error = run_stream("anthropic", False, replay, stream, "exhaust")
    assert error is None and seen == baseline
    assert hook.calls == 2
    assert gen_ai.OUTPUT_MESSAGES in _only_span(telemetry).attributes


def test_hook_is_called_once_per_call_with_the_span(replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    calls: list[dict[str, Any]] = []

    class Spy:
        spyglass_message_dicts = True

        def on_completion(self, **kwargs: Any) -> None:
            calls.append(kwargs)
            kwargs["span"].set_attribute("test.hook_saw_span", True)

    _instrument(telemetry, completion_hook=Spy())
    rec = recording(OPENAI_TOOLS)
    _call(rec, replay)
    [call] = calls
    span = _only_span(telemetry)
    assert span.attributes["test.hook_saw_span"] is True  # called before the span ended
    assert call["inputs"] == json.loads(span.attributes[gen_ai.INPUT_MESSAGES])
    assert call["outputs"] == json.loads(span.attributes[gen_ai.OUTPUT_MESSAGES])
    assert call["tool_definitions"] == json.loads(span.attributes[gen_ai.TOOL_DEFINITIONS])
    assert call["system_instruction"] == [] and call["log_record"] is None


def test_bad_hook_argument_is_rejected(telemetry: Telemetry, uninstrument: None) -> None:
    with pytest.raises(ValueError, match="on_completion"):
        OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, completion_hook=object())


# --- the queue limit ----------------------------------------------------------------------------------------


def test_queue_limit_drops_and_counts(tmp_path: Path, replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    hook = UploadCompletionHook(str(tmp_path), max_queue_size=2)
    gate = threading.Event()
    write = hook._store.write

    def slow_write(name: str, text: str) -> None:  # a slow store: writes wait until the test opens the gate
        gate.wait(10)
        write(name, text)

    hook._store.write = slow_write  # type: ignore[method-assign]
    try:
        _instrument(telemetry, completion_hook=hook)
        rec = recording(CHAT)
        for _ in range(3):
            _call(rec, replay)
        # Call 1 fills both slots (inputs, outputs); calls 2 and 3 find the queue full.
        assert hook.dropped == 4
        spans = llm_spans(telemetry)
        with_refs = [s for s in spans if gen_ai.INPUT_MESSAGES_REF in s.attributes]
        assert len(spans) == 3 and len(with_refs) == 1  # a dropped file gets no reference
        gate.set()
        assert hook.force_flush(10)
        assert hook.uploaded == 2
        assert sorted(p.name.split("_", 1)[1] for p in tmp_path.iterdir()) == ["inputs.json", "outputs.json"]
        # With room again, the next call is written.
        _call(rec, replay)
        assert hook.force_flush(10) and hook.uploaded == 4 and hook.dropped == 4
    finally:
        gate.set()
        hook.shutdown()
    # After shutdown (idempotent) the hook writes nothing more: files are dropped, counted, not referenced.
    hook.shutdown()
    span = telemetry.tracer_provider.get_tracer("test").start_span("after shutdown")
    hook.on_completion(inputs=[{"role": "user", "parts": []}], outputs=[], system_instruction=[], span=span)
    span.end()
    assert hook.dropped == 5 and hook.uploaded == 4
    assert gen_ai.INPUT_MESSAGES_REF not in telemetry.spans()[-1].attributes


def test_bad_base_path_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="cannot write"):
        UploadCompletionHook(str(blocker / "sub"))
    with pytest.raises(ValueError, match="upload_format"):
        UploadCompletionHook(str(tmp_path), upload_format="xml")


def test_fsspec_url(replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    import fsspec  # type: ignore[import-untyped]  # the `upload` extra (part of `all`)

    hook = UploadCompletionHook("memory://spyglass-test")
    try:
        _instrument(telemetry, completion_hook=hook)
        _call(recording(CHAT), replay)
        assert hook.force_flush(10)
    finally:
        hook.shutdown()
    attrs = _only_span(telemetry).attributes
    url = attrs[gen_ai.OUTPUT_MESSAGES_REF]
    assert url.startswith("memory://")
    with fsspec.open(url, "r") as f:
        assert json.loads(f.read()) == json.loads(attrs[gen_ai.OUTPUT_MESSAGES])


# --- util-genai hooks ----------------------------------------------------------------------------------------


def test_util_genai_upload_hook_works(tmp_path: Path, replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    from opentelemetry.util.genai._upload.completion_hook import UploadCompletionHook as OfficialUpload

    official = OfficialUpload(base_path=str(tmp_path))
    try:
        _instrument(telemetry, completion_hook=official)
        _call(recording(ANTHROPIC_SYSTEM_TOOLS), replay)
    finally:
        official.shutdown()
    attrs = _only_span(telemetry).attributes
    for ref, (attribute, kind) in _KIND.items():
        written = json.loads(_path(attrs[ref]).read_text())
        validate(_without_nulls(written), kind)
        assert _comparable(written) == _comparable(json.loads(attrs[attribute]))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _comparable(value: Any) -> Any:
    """util-genai's dataclasses write ``null`` for unset fields and drop Spyglass's own part markers."""
    value = _without_nulls(value)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if not k.startswith("spyglass.")}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_third_party_hooks_get_util_genai_dataclasses(replay: Any, telemetry: Telemetry, uninstrument: None) -> None:
    from opentelemetry.util.genai import types as t

    calls: list[dict[str, Any]] = []

    class ThirdParty:
        def on_completion(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    _instrument(telemetry, completion_hook=ThirdParty())
    _call(recording(ANTHROPIC_SYSTEM_TOOLS), replay)
    [call] = calls
    assert all(isinstance(m, t.InputMessage) for m in call["inputs"])
    assert all(isinstance(m, t.OutputMessage) for m in call["outputs"])
    assert all(isinstance(p, t.TextPart) for p in call["system_instruction"])
    assert all(isinstance(d, t.FunctionToolDefinition) for d in call["tool_definitions"])
    rec = recording(ANTHROPIC_SYSTEM_TOOLS)
    assert [d.name for d in call["tool_definitions"]] == [tool["name"] for tool in rec.request_body["tools"]]


# --- configuration through the environment ------------------------------------------------------------------


def test_unknown_hook_name_means_no_hook(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, replay: Any, telemetry: Telemetry
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK", "no_such_hook")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT")
    hooks._loaded.pop("no_such_hook", None)
    OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    try:
        _call(recording(CHAT), replay)
    finally:
        OpenAIInstrumentor().uninstrument()
    assert "not a registered completion hook" in caplog.text
    assert not set(gen_ai.CONTENT_REF_ATTRIBUTES) & set(_only_span(telemetry).attributes)


SCRIPT = """
import openai

oai = openai.OpenAI(max_retries=0)
reply = oai.chat.completions.create(
    model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}]
)
print("openai:", reply.choices[0].message.content)
"""


@pytest.mark.parametrize(
    ("hook", "upload_format"), [("spyglass_upload", "json"), ("spyglass_upload", "jsonl"), ("upload", "json")]
)
def test_zero_code_upload(hook: str, upload_format: str, replay: Any, tmp_path: Path) -> None:
    """``upload`` is util-genai's own hook, loaded the same way and given util-genai dataclasses."""
    chat = recording(CHAT)
    replay.expect(chat)
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    content = tmp_path / "content"
    if hook == "upload":
        content.mkdir()  # util-genai's hook does not create its directory (Spyglass's does)
    exe = shutil.which("opentelemetry-instrument") or str(Path(sys.executable).parent / "opentelemetry-instrument")
    env = {
        **os.environ,
        "OPENAI_BASE_URL": replay.url + "/v1",
        "OPENAI_API_KEY": "test",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,spyglass_dspy,spyglass_httpx,spyglass_anthropic",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT",
        "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK": hook,
        "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH": str(content),
        "OTEL_INSTRUMENTATION_GENAI_UPLOAD_FORMAT": upload_format,
        "OTEL_INSTRUMENTATION_GENAI_UPLOAD_MAX_QUEUE_SIZE": "5",
    }
    proc = subprocess.run(
        [exe, sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [span] = [s for s in console_spans(proc.stdout) if s["attributes"].get("gen_ai.provider.name")]
    attrs = span["attributes"]
    assert gen_ai.INPUT_MESSAGES not in attrs and gen_ai.OUTPUT_MESSAGES not in attrs
    # Written by the time the process exited (the hook flushes at exit).
    inputs = _path(attrs[gen_ai.INPUT_MESSAGES_REF]).read_text().splitlines()
    outputs = _path(attrs[gen_ai.OUTPUT_MESSAGES_REF]).read_text().splitlines()
    assert _path(attrs[gen_ai.INPUT_MESSAGES_REF]).parent == content
    if upload_format == "jsonl":
        input_messages = [json.loads(line) for line in inputs]
        assert [m.pop("index") for m in input_messages] == [0]
        output_messages = [json.loads(line) for line in outputs]
        [m.pop("index") for m in output_messages]
    else:
        [line] = inputs
        input_messages = json.loads(line)
        output_messages = json.loads(outputs[0])
    input_messages, output_messages = _without_nulls(input_messages), _without_nulls(output_messages)
    validate(input_messages, "InputMessages")
    validate(output_messages, "OutputMessages")
    assert input_messages[0]["parts"][0]["content"] == chat.request_body["messages"][0]["content"]
    assert output_messages[0]["parts"][0]["content"] == chat.json["choices"][0]["message"]["content"]


def test_upload_works_in_a_forked_child(tmp_path: Path) -> None:
    hook = UploadCompletionHook(str(tmp_path))
    try:
        message = [{"role": "user", "parts": [{"type": "text", "content": "before the fork"}]}]
        hook.on_completion(inputs=message, outputs=[], system_instruction=[])
        assert hook.force_flush(10)  # the parent's pool has a worker thread now, which a child does not get
        pid = os.fork()
        if pid == 0:  # the child: its own pool, its own slots
            ok = False
            try:
                child = [{"role": "user", "parts": [{"type": "text", "content": "in the child"}]}]
                hook.on_completion(inputs=child, outputs=[], system_instruction=[])
                ok = hook.force_flush(5) and hook.uploaded == 2
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        texts = sorted(json.loads(p.read_text())[0]["parts"][0]["content"] for p in tmp_path.iterdir())
        assert texts == ["before the fork", "in the child"]
    finally:
        hook.shutdown()


def test_failed_writes_are_counted_not_raised(
    tmp_path: Path, replay: Any, telemetry: Telemetry, uninstrument: None, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "gone"
    hook = UploadCompletionHook(str(target))
    target.rmdir()  # the directory disappears after start (an unmounted volume, a cleanup job)
    try:
        _instrument(telemetry, completion_hook=hook)
        rec = recording(CHAT)
        completion = _call(rec, replay)
        assert completion.id == rec.json["id"]
        assert hook.force_flush(10)
        assert (hook.failed, hook.uploaded, hook.dropped) == (2, 0, 0)
        assert "writing" in caplog.text and "failed" in caplog.text
        assert gen_ai.OUTPUT_MESSAGES in _only_span(telemetry).attributes
    finally:
        hook.shutdown()
