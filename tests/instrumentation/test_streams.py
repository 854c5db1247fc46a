"""The stream exit matrix: every way a caller can leave a stream, sync and async, for both providers.

For each, the span ends exactly once with the right status, and the application sees exactly the chunks it
sees with instrumentation suppressed (the same SDK, the same recorded bytes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from spyglass.semconv import gen_ai
from spyglass.testing.replay import Recording
from tests.conftest import recording

from .llm_support import anthropic_client, llm_spans, openai_client

OPENAI_STREAM = "openai__chat-completions__stream__chat-completion-streaming__i0"
ANTHROPIC_STREAM = "anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0"
RESPONSES_STREAM = "openai__responses__stream__responses-streaming__i1"

_ERROR_EVENTS = {
    "openai": 'data: {"error": {"message": "upstream failed", "type": "server_error", "code": "server_error"}}\n\n',
    "anthropic": (
        'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    ),
}
_SDK_ERROR = {"openai": openai.APIError, "anthropic": anthropic.APIStatusError}

MODES = ["exhaust", "break_in_with", "close", "with_exit_unread", "abandon", "server_error"]


def _recording(provider: str, mode: str) -> Recording:
    rec = recording(OPENAI_STREAM if provider == "openai" else ANTHROPIC_STREAM)
    if mode == "server_error":
        events = rec.events()
        rec = dataclasses.replace(rec, body="".join(events[:3]) + _ERROR_EVENTS[provider])
    return rec


def _create(provider: str, client: Any, rec: Recording) -> Any:
    body = dict(rec.request_body)
    if provider == "openai":
        return client.chat.completions.create(**body)
    return client.messages.create(**body)


def _dump(chunk: Any) -> Any:
    return chunk.model_dump(mode="json")


def _run_sync(provider: str, client: Any, rec: Recording, mode: str) -> tuple[list[Any], BaseException | None]:
    seen: list[Any] = []
    try:
        stream = _create(provider, client, rec)
        if mode == "exhaust" or mode == "server_error":
            for chunk in stream:
                seen.append(_dump(chunk))
        elif mode == "break_in_with":
            with stream:
                for chunk in stream:
                    seen.append(_dump(chunk))
                    if len(seen) == 2:
                        break
        elif mode == "close":
            it = iter(stream)
            seen.append(_dump(next(it)))
            stream.close()
        elif mode == "with_exit_unread":
            with stream:
                pass
        elif mode == "abandon":
            seen.append(_dump(next(iter(stream))))
            del stream
            gc.collect()
    except Exception as exc:
        return seen, exc
    return seen, None


async def _run_async(provider: str, client: Any, rec: Recording, mode: str) -> tuple[list[Any], BaseException | None]:
    seen: list[Any] = []
    try:
        stream = await _create(provider, client, rec)
        if mode == "exhaust" or mode == "server_error":
            async for chunk in stream:
                seen.append(_dump(chunk))
        elif mode == "break_in_with":
            async with stream:
                async for chunk in stream:
                    seen.append(_dump(chunk))
                    if len(seen) == 2:
                        break
        elif mode == "close":
            seen.append(_dump(await stream.__anext__()))
            await stream.close()
        elif mode == "with_exit_unread":
            async with stream:
                pass
        elif mode == "abandon":
            seen.append(_dump(await stream.__anext__()))
            del stream
            gc.collect()
    except Exception as exc:
        return seen, exc
    return seen, None


def _run(provider: str, aio: bool, replay: Any, rec: Recording, mode: str) -> tuple[list[Any], BaseException | None]:
    replay.expect(rec)
    if provider == "openai":
        client = openai_client(replay, aio=aio)
    else:
        client = anthropic_client(replay, aio=aio)
    if aio:
        return asyncio.run(_run_async(provider, client, rec, mode))
    return _run_sync(provider, client, rec, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stream_exit(provider: str, aio: bool, mode: str, replay: Any, instrumented: Any) -> None:
    rec = _recording(provider, mode)
    with suppress_instrumentation():
        baseline, baseline_error = _run(provider, aio, replay, rec, mode)
    assert llm_spans(instrumented) == []

    seen, error = _run(provider, aio, replay, rec, mode)
    gc.collect()

    assert seen == baseline  # the application sees exactly what it sees uninstrumented
    assert type(error) is type(baseline_error)
    spans = llm_spans(instrumented)
    assert len(spans) == 1, [s.name for s in spans]
    span = spans[0]
    attrs = dict(span.attributes or {})
    assert attrs[gen_ai.REQUEST_STREAM] is True
    if mode == "server_error":
        assert isinstance(error, _SDK_ERROR[provider])
        assert span.status.status_code is StatusCode.ERROR
        assert attrs[gen_ai.ERROR_TYPE] == f"{provider}.{type(error).__name__}"
    elif mode == "abandon":
        assert span.status.status_code is StatusCode.ERROR
        assert attrs[gen_ai.ERROR_TYPE] == "spyglass.stream_abandoned"
    else:
        assert error is None
        assert span.status.status_code is StatusCode.UNSET
        assert gen_ai.ERROR_TYPE not in attrs
    if mode == "exhaust":
        assert attrs[gen_ai.RESPONSE_FINISH_REASONS] in (("stop",), ("end_turn",))
        assert attrs[gen_ai.USAGE_OUTPUT_TOKENS] > 0
        assert attrs[gen_ai.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        assert attrs["spyglass.stream.chunk_count"] == len(seen)
    if mode in ("exhaust", "break_in_with", "close", "abandon"):
        assert attrs["spyglass.stream.chunk_count"] >= 1
    # The span ended once: a second end would have produced a warning and no second export.
    assert len(instrumented.spans()) == len({s.context.span_id for s in instrumented.spans()})
