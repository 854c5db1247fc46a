"""DSPy: a retrieve -> generate -> tool program, driven by a recorded OpenAI response, as one span tree.

The LM response is ``tests/fixtures/dspy/...derived.json``: a real OpenAI recording whose completion text was
replaced by a DSPy ChatAdapter answer (see its ``derived_from`` and ``notes``), since no recording speaks
DSPy's ``[[ ## field ## ]]`` format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch prices from the network

import dspy
from dspy.utils.exceptions import LMServerError
from opentelemetry.trace import SpanKind, StatusCode

from spyglass.instrumentation import DSPyInstrumentor, HttpxInstrumentor, OpenAIInstrumentor
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.semconv.validation import validate_span_content
from spyglass.testing.replay import load_recording

FIXTURE = Path(__file__).parent.parent / "fixtures" / "dspy"
ANSWER = load_recording(FIXTURE / "openai__chat-completions__nostream__dspy-chain-of-thought__derived.json")

DOCS = [
    "OpenTelemetry is an observability framework for traces, metrics and logs.",
    "Spyglass records LLM calls as OpenTelemetry GenAI spans.",
    "The Eiffel Tower is in Paris.",
]


class LocalRetriever(dspy.Retrieve):
    """Keyword overlap over three in-memory documents."""

    def forward(self, query: str, k: int | None = None, **kwargs: Any) -> dspy.Prediction:
        words = set(query.lower().split())
        ranked = sorted(DOCS, key=lambda d: -len(words & set(d.lower().split())))
        return dspy.Prediction(passages=ranked[: k or self.k])


def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


class RAG(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.retrieve = LocalRetriever(k=2)
        self.generate = dspy.ChainOfThought("context, question -> answer")
        self.count = dspy.Tool(word_count)

    def forward(self, question: str) -> dspy.Prediction:
        passages = self.retrieve(question).passages
        pred = self.generate(context=passages, question=question)
        return dspy.Prediction(answer=pred.answer, words=self.count(text=pred.answer))

    async def aforward(self, question: str) -> dspy.Prediction:
        passages = self.retrieve(question).passages
        pred = await self.generate.acall(context=passages, question=question)
        return dspy.Prediction(answer=pred.answer, words=await self.count.acall(text=pred.answer))


@pytest.fixture
def traced(telemetry, replay) -> Iterator[Any]:
    """DSPy, SDK and HTTP-level instrumentation together (dedupe is part of what is tested)."""
    insts = [DSPyInstrumentor(), OpenAIInstrumentor(), HttpxInstrumentor()]
    for inst in insts:
        inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    lm = dspy.LM("openai/gpt-4o-mini", api_base=replay.url + "/v1", api_key="test", cache=False, num_retries=0)
    with dspy.context(lm=lm):
        yield telemetry
    for inst in reversed(insts):
        inst.uninstrument()


def tree(spans: list[Any]) -> dict[str, Any]:
    by_id = {s.context.span_id: s for s in spans}
    return {s.name: (by_id[s.parent.span_id].name if s.parent and s.parent.span_id in by_id else None) for s in spans}


def check_program_tree(spans: list[Any]) -> None:
    parents = tree(spans)
    assert parents == {
        "invoke_workflow RAG": None,
        "retrieval LocalRetriever": "invoke_workflow RAG",
        "ChainOfThought": "invoke_workflow RAG",
        "Predict": "ChainOfThought",
        "chat gpt-4o-mini": "Predict",
        "execute_tool word_count": "invoke_workflow RAG",
    }
    by_name = {s.name: s for s in spans}
    assert len({s.context.trace_id for s in spans}) == 1
    for span in spans:  # per-step latency, nested inside the parent's
        assert span.end_time > span.start_time
        parent = by_name.get(parents[span.name] or "")
        if parent is not None:
            assert parent.start_time <= span.start_time and span.end_time <= parent.end_time

    program = by_name["invoke_workflow RAG"].attributes
    assert program[ext.STEP_KIND] == "workflow"
    assert json.loads(program[ext.STEP_INPUT]) == {"question": "What does Spyglass record?"}
    assert json.loads(program[ext.STEP_OUTPUT]) == {"answer": "LLM calls, as OpenTelemetry GenAI spans.", "words": 6}

    retrieval = by_name["retrieval LocalRetriever"].attributes
    assert retrieval[gen_ai.RETRIEVAL_QUERY_TEXT] == "What does Spyglass record?"
    assert [d["content"] for d in json.loads(retrieval[gen_ai.RETRIEVAL_DOCUMENTS])] == [DOCS[1], DOCS[0]]

    predict = by_name["Predict"].attributes
    assert predict[ext.STEP_KIND] == "task"
    assert predict[ext.DSPY_SIGNATURE] == "context, question -> reasoning, answer"
    assert json.loads(predict[ext.STEP_OUTPUT]) == {
        "reasoning": "The first passage says Spyglass records LLM calls as OpenTelemetry GenAI spans.",
        "answer": "LLM calls, as OpenTelemetry GenAI spans.",
    }

    lm = by_name["chat gpt-4o-mini"]
    assert lm.kind is SpanKind.CLIENT
    attrs = lm.attributes
    assert attrs[gen_ai.PROVIDER_NAME] == "openai"
    assert attrs[gen_ai.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[gen_ai.RESPONSE_MODEL] == ANSWER.json["model"]
    assert attrs[gen_ai.USAGE_INPUT_TOKENS] == ANSWER.json["usage"]["prompt_tokens"]
    assert attrs[gen_ai.USAGE_OUTPUT_TOKENS] == ANSWER.json["usage"]["completion_tokens"]
    assert ext.HTTP_RAW not in attrs
    validate_span_content(attrs)
    inputs = json.loads(attrs[gen_ai.INPUT_MESSAGES])
    assert [msg["role"] for msg in inputs] == ["system", "user"]
    assert "What does Spyglass record?" in inputs[1]["parts"][0]["content"]
    output = json.loads(attrs[gen_ai.OUTPUT_MESSAGES])[0]["parts"][0]["content"]
    assert output == ANSWER.json["choices"][0]["message"]["content"]

    tool = by_name["execute_tool word_count"].attributes
    assert tool[gen_ai.TOOL_DESCRIPTION] == "Count the words in a text."
    assert json.loads(tool[gen_ai.TOOL_CALL_ARGUMENTS]) == {"text": "LLM calls, as OpenTelemetry GenAI spans."}
    assert json.loads(tool[gen_ai.TOOL_CALL_RESULT]) == 6


def test_program_tree_with_one_llm_span_per_lm_call(traced, replay) -> None:
    replay.expect(ANSWER)
    result = RAG()(question="What does Spyglass record?")
    assert result.answer == "LLM calls, as OpenTelemetry GenAI spans." and result.words == 6
    spans = traced.spans()
    assert len([s for s in spans if gen_ai.REQUEST_MODEL in s.attributes]) == 1  # SDK/HTTP layers stayed quiet
    check_program_tree(spans)
    # DSPy's request reached the replay server as the real chat request.
    (request,) = replay.requests
    assert request.path == "/v1/chat/completions" and request.json()["model"] == "gpt-4o-mini"


async def test_async_program_tree(traced, replay) -> None:
    replay.expect(ANSWER)
    result = await RAG().acall(question="What does Spyglass record?")
    assert result.words == 6
    check_program_tree(traced.spans())


def test_lm_error_is_recorded_and_raised_unchanged(traced, replay) -> None:
    with pytest.raises(LMServerError) as caught:  # nothing queued: the replay server answers 599
        dspy.Predict("question -> answer")(question="hi")
    replay.unmatched.clear()
    spans = {s.name: s for s in traced.spans()}
    lm = spans["chat gpt-4o-mini"]
    assert lm.status.status_code is StatusCode.ERROR
    assert lm.attributes[gen_ai.ERROR_TYPE].endswith(type(caught.value).__qualname__)
    assert spans["invoke_workflow Predict"].status.status_code is StatusCode.ERROR


def test_uninstrument_removes_every_patch(telemetry, replay) -> None:
    inst = DSPyInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider)
    inst.uninstrument()
    replay.expect(ANSWER)
    lm = dspy.LM("openai/gpt-4o-mini", api_base=replay.url + "/v1", api_key="test", cache=False, num_retries=0)
    with dspy.context(lm=lm):
        RAG()(question="What does Spyglass record?")
    assert telemetry.spans() == []


def test_litellm_engine_still_yields_one_llm_span(traced, replay) -> None:
    """Through litellm the request goes via the openai SDK and httpx2, both instrumented: they stay quiet."""
    replay.expect(ANSWER)
    lm = dspy.LM(
        "openai/gpt-4o-mini", api_base=replay.url + "/v1", api_key="test", cache=False, num_retries=0, engine="litellm"
    )
    try:
        with dspy.context(lm=lm):
            RAG()(question="What does Spyglass record?")
    finally:
        _close_litellm_clients()
    spans = traced.spans()
    (llm,) = [s for s in spans if gen_ai.REQUEST_MODEL in s.attributes]
    assert llm.instrumentation_scope.name == "spyglass.instrumentation.dspy"
    check_program_tree(spans)


def _close_litellm_clients() -> None:
    """litellm caches the openai clients it builds; close them so their sockets do not outlive the test."""
    import litellm

    cache = litellm.in_memory_llm_clients_cache
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                pass
    cache.flush_cache()


def test_patches_wait_for_the_application_to_import_dspy() -> None:
    """Under opentelemetry-instrument, an app that never imports DSPy must not pay for importing it."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from spyglass.instrumentation import DSPyInstrumentor\n"
        "DSPyInstrumentor().instrument()\n"
        "assert 'dspy' not in sys.modules\n"
        "import dspy\n"
        "assert hasattr(dspy.Module.__call__, '__wrapped__') and hasattr(dspy.LM.__call__, '__wrapped__')\n"
        "print('ok')\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
