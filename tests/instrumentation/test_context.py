"""Context attributes reach every span started inside ``using_attributes``, across threads and tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from spyglass.instrumentation import (
    ContextAttributesSpanProcessor,
    HttpxInstrumentor,
    OpenAIInstrumentor,
    _steps,
    bind_context,
    configure_steps,
    install_context_processor,
    task,
    using_attributes,
    workflow,
)
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from tests.conftest import recording

WHO = {ext.USER_ID: "u-1", ext.SESSION_ID: "s-9", ext.TENANT_ID: "acme"}


@pytest.fixture
def traced(telemetry) -> Iterator[Any]:
    """Steps, the OpenAI SDK, raw httpx and plain HTTP spans, all on one provider."""
    configure_steps(tracer_provider=telemetry.tracer_provider)
    insts = [OpenAIInstrumentor(), HttpxInstrumentor()]
    for inst in insts:
        inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    plain = HTTPXClientInstrumentor()
    plain.instrument(tracer_provider=telemetry.tracer_provider)
    yield telemetry
    plain.uninstrument()
    for inst in reversed(insts):
        inst.uninstrument()
    _steps._State.tracer = _steps.trace.get_tracer("spyglass.instrumentation.steps")
    _steps._State.policy = None


def stamped(span: Any) -> dict[str, Any]:
    return {k: v for k, v in span.attributes.items() if k in WHO}


def test_every_span_inside_is_stamped(traced, replay) -> None:
    chat = recording("openai__chat-completions__nostream__chat__i1")
    raw = recording("mistral__chat-completions__nostream__mistralai-chat-legacy__i0")
    replay.expect(chat, raw)
    client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
    with using_attributes(
        user_id="u-1", session_id="s-9", tenant_id="acme", metadata={"plan": "pro", "seats": 5}, tags=["beta"]
    ):

        @workflow
        def answer() -> None:
            client.chat.completions.create(**chat.request_body)  # SDK LLM span
            httpx.post(replay.url + raw.path, json=raw.request_body)  # raw LLM span + plain HTTP span

        answer()
    spans = traced.spans()
    kinds = sorted(
        "workflow"
        if ext.STEP_KIND in s.attributes
        else "raw"
        if s.attributes.get(ext.HTTP_RAW)
        else "sdk"
        if gen_ai.OPERATION_NAME in s.attributes
        else "http"
        for s in spans
    )
    assert kinds == ["http", "raw", "sdk", "workflow"]
    for span in spans:
        assert stamped(span) == WHO, span.name
        assert span.attributes[ext.METADATA_PREFIX + "plan"] == "pro"
        assert span.attributes[ext.METADATA_PREFIX + "seats"] == 5
        assert span.attributes[ext.TAGS] == ("beta",)


def test_nesting_merges_and_leaving_restores(traced) -> None:
    @task
    def step(name: str) -> str:
        return name

    with using_attributes(user_id="outer", tags=["a"], metadata={"k": "v"}):
        with using_attributes(user_id="inner", session_id="s", tags=["b", "a"], metadata={"obj": {"x": 1}}):
            step("in")
        step("out")
    step("none")
    spans = {s.attributes[ext.STEP_INPUT]: s.attributes for s in traced.spans()}
    inner, outer, none = spans['{"name":"in"}'], spans['{"name":"out"}'], spans['{"name":"none"}']
    assert inner[ext.USER_ID] == "inner" and inner[ext.SESSION_ID] == "s"
    assert inner[ext.TAGS] == ("a", "b")
    assert inner[ext.METADATA_PREFIX + "k"] == "v" and inner[ext.METADATA_PREFIX + "obj"] == '{"x":1}'
    assert outer[ext.USER_ID] == "outer" and ext.SESSION_ID not in outer
    assert ext.USER_ID not in none and ext.TAGS not in none


def test_thread_pool_needs_bind_context(traced) -> None:
    @task
    def work(i: int) -> int:
        return i

    with using_attributes(tenant_id="acme"), ThreadPoolExecutor(max_workers=2) as pool:
        bound = list(pool.map(bind_context(work), [1, 2, 3]))
        unbound = pool.submit(work, 4).result()
    assert bound == [1, 2, 3] and unbound == 4
    by_input = {s.attributes[ext.STEP_INPUT]: s.attributes for s in traced.spans()}
    for i in (1, 2, 3):
        assert by_input[f'{{"i":{i}}}'][ext.TENANT_ID] == "acme"
    # Documented: a plain thread starts with an empty context.
    assert ext.TENANT_ID not in by_input['{"i":4}']


async def test_asyncio_tasks_inherit_the_attributes(traced) -> None:
    @task
    async def work(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async with using_attributes(session_id="s-async"):
        results = await asyncio.gather(*(asyncio.create_task(work(i)) for i in range(3)))
    after = await work(9)
    assert results == [0, 1, 2] and after == 9
    sessions = {s.attributes[ext.STEP_INPUT]: s.attributes.get(ext.SESSION_ID) for s in traced.spans()}
    assert sessions == {'{"i":0}': "s-async", '{"i":1}': "s-async", '{"i":2}': "s-async", '{"i":9}': None}


def test_decorator_on_sync_async_and_generators(traced) -> None:
    @using_attributes(user_id="deco")
    @task
    def sync() -> int:
        return 1

    @using_attributes(user_id="deco-gen")
    def gen() -> Iterator[int]:
        with task("inside-gen"):
            yield 1

    @using_attributes(user_id="deco-async")
    async def coro() -> int:
        with task("inside-coro"):
            return 2

    assert sync() == 1
    assert list(gen()) == [1]
    assert asyncio.run(coro()) == 2
    users = {s.name: s.attributes.get(ext.USER_ID) for s in traced.spans()}
    assert users == {"sync": "deco", "inside-gen": "deco-gen", "inside-coro": "deco-async"}


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="list of strings"):
        using_attributes(tags="beta")
    with pytest.raises(TypeError, match="mapping"):
        using_attributes(metadata=[("a", 1)])  # type: ignore[arg-type]


def test_processor_is_installed_once(telemetry) -> None:
    assert install_context_processor(telemetry.tracer_provider)
    assert install_context_processor(telemetry.tracer_provider)
    processors = telemetry.tracer_provider._active_span_processor._span_processors
    assert sum(isinstance(p, ContextAttributesSpanProcessor) for p in processors) == 1
    assert not install_context_processor(object())  # not an SDK provider: nothing to do


async def test_one_instance_entered_by_interleaving_tasks(traced) -> None:
    shared = using_attributes(tenant_id="acme")
    step = task("shared-step")

    async def worker(i: int) -> None:
        async with shared:
            with step:
                await asyncio.sleep(0.002 * i)  # the first in is the first out: not a stack across tasks
        assert ext.TENANT_ID not in _current()

    await asyncio.gather(*(worker(i) for i in range(3)))
    spans = [s for s in traced.spans() if s.name == "shared-step"]
    assert len(spans) == 3 and all(s.attributes[ext.TENANT_ID] == "acme" for s in spans)
    assert len({s.context.span_id for s in spans}) == 3


def _current() -> dict[str, Any]:
    from spyglass.instrumentation._context import current_attributes

    return dict(current_attributes())


def test_sdk_instrumentor_alone_stamps_llm_spans(telemetry, replay) -> None:
    """No Spyglass step or HTTP instrumentor involved: the SDK instrumentor installs the processor itself."""
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        rec = recording("openai__chat-completions__nostream__chat__i1")
        replay.expect(rec)
        client = openai.OpenAI(base_url=replay.url + "/v1", api_key="test", max_retries=0)
        with using_attributes(user_id="u-1", session_id="s-9", tenant_id="acme"):
            client.chat.completions.create(**rec.request_body)
    finally:
        inst.uninstrument()
    (span,) = telemetry.spans()
    assert stamped(span) == WHO


def test_a_span_given_an_explicit_context_gets_that_contexts_attributes(telemetry) -> None:
    install_context_processor(telemetry.tracer_provider)
    tracer = telemetry.tracer_provider.get_tracer("test")
    outer = using_attributes(user_id="u-1", tags=["a"])
    ctx = outer.context()
    with using_attributes(user_id="u-2", tags=["b"]):
        tracer.start_span("explicit", context=ctx).end()  # the given context, not the current one
        tracer.start_span("current").end()
    explicit, current = telemetry.spans()
    assert explicit.attributes[ext.USER_ID] == "u-1" and explicit.attributes[ext.TAGS] == ("a",)
    assert current.attributes[ext.USER_ID] == "u-2" and current.attributes[ext.TAGS] == ("b",)
    with outer, using_attributes(tags=["c"]):  # nested blocks still merge: tags accumulate
        tracer.start_span("nested").end()
    assert telemetry.spans()[-1].attributes[ext.TAGS] == ("a", "c")
