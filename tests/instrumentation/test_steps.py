"""The Steps API: decorators and context managers on the four function kinds, capture, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from spyglass.instrumentation import _steps, agent, configure_steps, retrieval, task, tool, workflow
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai


@pytest.fixture
def steps(telemetry):
    configure_steps(tracer_provider=telemetry.tracer_provider)
    yield telemetry
    _steps._State.tracer = _steps.trace.get_tracer("spyglass.instrumentation.steps")
    _steps._State.policy = None


def by_name(spans):
    return {s.name: s for s in spans}


def test_sync_workflow_records_input_output_and_kind(steps):
    @workflow
    def answer(question: str, k: int = 3) -> str:
        return question.upper()

    assert answer("why?", k=2) == "WHY?"
    (span,) = steps.spans()
    assert span.name == "invoke_workflow answer"
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes[gen_ai.OPERATION_NAME] == "invoke_workflow"
    assert span.attributes[gen_ai.WORKFLOW_NAME] == "answer"
    assert span.attributes[ext.STEP_KIND] == "workflow"
    assert json.loads(span.attributes[ext.STEP_INPUT]) == {"question": "why?", "k": 2}
    assert json.loads(span.attributes[ext.STEP_OUTPUT]) == "WHY?"
    assert span.status.status_code is StatusCode.UNSET


async def test_async_agent_and_nested_tool_form_a_tree(steps):
    @tool
    async def get_weather(city: str) -> dict:
        """Current weather for a city.

        More text that is not the description."""
        await asyncio.sleep(0)
        return {"city": city, "temp_c": 21}

    @agent(name="planner")
    async def plan(goal: str) -> str:
        weather = await get_weather("Paris")
        return f"{goal}: {weather['temp_c']}"

    assert await plan("picnic") == "picnic: 21"
    spans = by_name(steps.spans())
    agent_span, tool_span = spans["invoke_agent planner"], spans["execute_tool get_weather"]
    assert tool_span.parent.span_id == agent_span.context.span_id
    assert agent_span.attributes[gen_ai.AGENT_NAME] == "planner"
    assert tool_span.attributes[gen_ai.OPERATION_NAME] == "execute_tool"
    assert tool_span.attributes[gen_ai.TOOL_NAME] == "get_weather"
    assert tool_span.attributes[gen_ai.TOOL_TYPE] == "function"
    assert tool_span.attributes[gen_ai.TOOL_DESCRIPTION] == "Current weather for a city."
    assert json.loads(tool_span.attributes[gen_ai.TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    assert json.loads(tool_span.attributes[gen_ai.TOOL_CALL_RESULT]) == {"city": "Paris", "temp_c": 21}
    assert ext.STEP_INPUT not in tool_span.attributes  # tools use the gen_ai.tool.call.* pair only


def test_generator_span_covers_iteration_and_context_does_not_leak(steps):
    from opentelemetry import trace

    seen_inside: list[int] = []

    @task("chunks")
    def chunks(n: int) -> Iterator[int]:
        for i in range(n):
            seen_inside.append(trace.get_current_span().get_span_context().span_id)
            yield i

    gen = chunks(3)
    assert steps.spans() == []  # nothing runs until iterated
    outside = []
    for item in gen:
        outside.append(trace.get_current_span().get_span_context().span_id)
        assert item in (0, 1, 2)
    (span,) = steps.spans()
    assert span.name == "chunks"
    assert set(seen_inside) == {span.context.span_id}  # the step is current inside the body...
    assert span.context.span_id not in outside  # ...and not in the caller between yields
    assert json.loads(span.attributes[ext.STEP_OUTPUT]) == [0, 1, 2]


def test_generator_send_throw_and_early_close(steps):
    @task
    def echo() -> Iterator[str]:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError:
                received = yield "recovered"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "got a"
    assert gen.throw(ValueError("x")) == "recovered"
    gen.close()
    (span,) = steps.spans()
    assert span.status.status_code is StatusCode.UNSET
    assert json.loads(span.attributes[ext.STEP_OUTPUT]) == ["ready", "got a", "recovered"]


async def test_async_generator(steps):
    @retrieval(data_source_id="kb")
    async def search(query: str) -> AsyncIterator[str]:
        for doc in ("doc one", "doc two"):
            await asyncio.sleep(0)
            yield doc

    assert [d async for d in search("what is otel")] == ["doc one", "doc two"]
    (span,) = steps.spans()
    assert span.name == "retrieval kb"
    assert span.attributes[gen_ai.DATA_SOURCE_ID] == "kb"
    assert span.attributes[gen_ai.RETRIEVAL_QUERY_TEXT] == "what is otel"
    assert json.loads(span.attributes[gen_ai.RETRIEVAL_DOCUMENTS]) == [{"content": "doc one"}, {"content": "doc two"}]


def test_exception_is_recorded_and_reraised_unchanged(steps):
    class Boom(Exception):
        pass

    error = Boom("bad input")

    @task
    def fails() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        fails()
    assert caught.value is error
    (span,) = steps.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[gen_ai.ERROR_TYPE].endswith("Boom")
    assert [e.name for e in span.events] == ["exception"]


async def test_exception_in_async_generator_is_recorded(steps):
    @task
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise KeyError("k")

    with pytest.raises(KeyError):
        async for _ in broken():
            pass
    (span,) = steps.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[gen_ai.ERROR_TYPE] == "KeyError"


def test_context_manager_sync_and_handle(steps):
    with workflow("pipeline"), task("rerank") as step:
        step.set_input({"docs": 3})
        step.set_output(["b", "a"])
        step.set_attribute("app.custom", 1)
    spans = by_name(steps.spans())
    rerank = spans["rerank"]
    assert rerank.parent.span_id == spans["invoke_workflow pipeline"].context.span_id
    assert json.loads(rerank.attributes[ext.STEP_INPUT]) == {"docs": 3}
    assert json.loads(rerank.attributes[ext.STEP_OUTPUT]) == ["b", "a"]
    assert rerank.attributes["app.custom"] == 1


async def test_async_context_manager_records_error(steps):
    with pytest.raises(RuntimeError):
        async with agent("helper", description="answers"):
            raise RuntimeError("nope")
    (span,) = steps.spans()
    assert span.name == "invoke_agent helper"
    assert span.attributes[gen_ai.AGENT_DESCRIPTION] == "answers"
    assert span.status.status_code is StatusCode.ERROR


def test_methods_skip_self_and_options_are_honoured(steps):
    class Pipeline:
        @task(name="fmt", capture_output=False)
        def format(self, text: str) -> str:
            return f"<{text}>"

    assert Pipeline().format("x") == "<x>"
    (span,) = steps.spans()
    assert json.loads(span.attributes[ext.STEP_INPUT]) == {"text": "x"}
    assert ext.STEP_OUTPUT not in span.attributes


def test_no_content_turns_capture_off(telemetry):
    configure_steps(tracer_provider=telemetry.tracer_provider, capture="NO_CONTENT")
    try:

        @tool
        def secret(password: str) -> str:
            return "ok"

        secret("hunter2")
        (span,) = telemetry.spans()
        assert span.attributes[gen_ai.TOOL_NAME] == "secret"
        assert not any("hunter2" in str(v) or v == '"ok"' for v in span.attributes.values())
    finally:
        _steps._State.policy = None


def test_large_values_are_cut_to_the_limit_as_valid_json(telemetry):
    configure_steps(tracer_provider=telemetry.tracer_provider, content_max_length=200)
    try:

        @task
        def big(text: str) -> dict:
            return {"echo": text}

        big("x" * 5000)
        (span,) = telemetry.spans()
        for key in (ext.STEP_INPUT, ext.STEP_OUTPUT):
            assert len(span.attributes[key]) <= 200
            assert json.loads(span.attributes[key])["text" if key == ext.STEP_INPUT else "echo"].startswith("xxx")
        assert set(span.attributes[ext.CONTENT_TRUNCATED]) == {ext.STEP_INPUT, ext.STEP_OUTPUT}
    finally:
        _steps._State.policy = None


def test_unserializable_values_never_break_the_call(steps):
    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    @task
    def takes(w: Weird) -> Weird:
        return w

    w = Weird()
    assert takes(w) is w
    (span,) = steps.spans()
    assert "unserializable" in span.attributes[ext.STEP_INPUT]


def test_bad_usage_raises_clear_errors():
    with pytest.raises(TypeError, match="step name"):
        task(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="decorates a function"):
        task("x")(5)  # type: ignore[type-var]


def test_decorated_functions_keep_their_identity():
    @workflow
    def documented(a: int) -> int:
        """Docs stay."""
        return a

    @task
    async def coro() -> None:
        return None

    assert documented.__name__ == "documented" and documented.__doc__ == "Docs stay."
    assert asyncio.iscoroutinefunction(coro)


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'quote " back \\ slash \n newline \u2028 \x00 é 😀',
        "",
        0,
        -17,
        10**30,
        1.5,
        -0.0,
        1e300,
        float("nan"),
        float("inf"),
        float("-inf"),
        True,
        False,
        None,
        {"question": "why?", "k": 3, "t": 0.5, "flag": None, "ok": True},
        {},
        {"nested": {"a": 1}},
        {1: "int key"},
        [1, 2],
        ("a",),
    ],
)
def test_fast_json_matches_the_full_encoder(value):
    # The fast path for small arguments and results must write exactly what messages.dumps writes.
    from spyglass.semconv import messages

    fast = _steps._small_json(value)
    if fast is not None:
        assert fast == messages.dumps(value)
    elif isinstance(value, (str, bool, type(None))) or type(value) is int:
        pytest.fail(f"{value!r} should take the fast path")


def test_fast_json_respects_the_content_limit(telemetry):
    configure_steps(tracer_provider=telemetry.tracer_provider, content_max_length=40)
    try:

        @task
        def echo(text: str) -> str:
            return text

        echo("x" * 100)
        (span,) = telemetry.spans()
        for key in (ext.STEP_INPUT, ext.STEP_OUTPUT):
            assert len(span.attributes[key]) <= 40
            json.loads(span.attributes[key])
        assert set(span.attributes[ext.CONTENT_TRUNCATED]) == {ext.STEP_INPUT, ext.STEP_OUTPUT}
    finally:
        _steps._State.tracer = _steps.trace.get_tracer("spyglass.instrumentation.steps")
        _steps._State.policy = None


def test_positional_scalar_arguments_encode_as_the_bound_dict_would():
    from spyglass.semconv import messages

    class Retriever:
        def search(self, query: str, k: int = 3, *, rerank: bool = False) -> None: ...

    def plain(a, b=None, c=1.5): ...

    cases = [
        (plain, (1,)),
        (plain, ("x", None, -0.0)),
        (plain, ()),
        (Retriever.search, (Retriever(), "why?", 5)),
        (Retriever.search, (Retriever(),)),
    ]
    for fn, args in cases:
        binder = _steps._Binder(fn)
        assert binder.json(args, {}) == messages.dumps(binder(args, {})), (fn, args)
    binder = _steps._Binder(plain)
    assert binder.json((1,), {"b": 2}) is None  # keywords: the general path
    assert binder.json(([1],), {}) is None  # a non-scalar argument: the general path
    assert binder.json((1, 2, 3, 4), {}) is None  # more arguments than names: the call itself is wrong
