"""The replay harness drives the current official SDKs (openai 3.x and anthropic 2.x, both on httpx2) with
real recorded provider traffic over a real socket, and fails loudly on a request it was not told to expect."""

from __future__ import annotations

import json
import time

import anthropic
import httpx2
import openai
import pytest

from spyglass.testing.replay import UNMATCHED_STATUS, ReplayServer
from tests.conftest import recording


def _openai(server: ReplayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="test-key", max_retries=0)


def _anthropic(server: ReplayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="test-key", max_retries=0)


OPENAI_JSON = [
    ("openai__chat-completions__nostream__chat__i1", "chat"),
    ("openai__chat-completions__nostream__tool-calls__i0", "chat"),
    ("openai__chat-completions__nostream__chat-tools__i0", "chat"),
    ("openai__responses__nostream__responses-create-token-usage-content-mode0__i0", "responses"),
    ("openai__embeddings__nostream__embeddings-token-metrics__i0", "embeddings"),
]


@pytest.mark.parametrize(("name", "api"), OPENAI_JSON)
def test_openai_sdk_receives_recorded_body_byte_for_byte(replay: ReplayServer, name: str, api: str) -> None:
    rec = recording(name)
    replay.expect(rec)
    client = _openai(replay)
    resource = {"chat": client.chat.completions, "responses": client.responses, "embeddings": client.embeddings}[api]
    raw = resource.with_raw_response.create(**rec.request_body)
    assert raw.http_response.content == rec.body.encode()
    parsed = raw.parse()
    assert parsed.model == rec.json["model"]
    assert parsed.usage is not None
    # the SDK really sent the recorded request (the embeddings client adds encoding_format=base64)
    sent = replay.requests[-1].json()
    assert {k: sent[k] for k in rec.request_body} == rec.request_body


def test_openai_tool_call_arguments_arrive(replay: ReplayServer) -> None:
    rec = recording("openai__chat-completions__nostream__chat-tools__i0")
    replay.expect(rec)
    out = _openai(replay).chat.completions.create(**rec.request_body)
    recorded_calls = rec.json["choices"][0]["message"]["tool_calls"]
    assert [c.function.arguments for c in out.choices[0].message.tool_calls or []] == [
        c["function"]["arguments"] for c in recorded_calls
    ]


def test_openai_streamed_chat_with_usage_arrives_in_chunks(replay: ReplayServer) -> None:
    rec = recording("openai__chat-completions__stream__chat-completion-streaming__i0")
    assert rec.request_body["stream_options"] == {"include_usage": True}
    replay.expect(rec)
    start = time.perf_counter()
    arrivals: list[float] = []
    text, usage = "", None
    for chunk in _openai(replay).chat.completions.create(**rec.request_body):
        arrivals.append(time.perf_counter() - start)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    expected_text = "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in (json.loads(p[len("data: ") :]) for p in rec.body.split("\n\n") if p.startswith("data: {"))
        if e["choices"]
    )
    assert text == expected_text and text
    assert usage is not None and usage.total_tokens > 0
    assert len(arrivals) == len(rec.events()) - 1  # every event but [DONE] is a chunk
    assert arrivals[0] >= replay.first_chunk_delay * 0.9  # time to first chunk is measurable
    assert arrivals[-1] > arrivals[0]


def test_openai_responses_stream(replay: ReplayServer) -> None:
    rec = recording("openai__responses__stream__responses-streaming__i1")
    replay.expect(rec)
    events = list(_openai(replay).responses.create(**rec.request_body))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens > 0


def test_openai_error_status_raises_the_sdk_exception(replay: ReplayServer) -> None:
    rec = recording("openai__chat-completions__nostream__async-chat-completion-404__i0")
    replay.expect(rec)
    with pytest.raises(openai.NotFoundError) as info:
        _openai(replay).chat.completions.create(**rec.request_body)
    assert info.value.status_code == 404
    assert "does not exist" in info.value.message


ANTHROPIC_JSON = [
    "anthropic__messages__nostream__anthropic-instrumentation-messages__i0",
    "anthropic__messages__nostream__anthropic-tools-legacy__i0",
    "anthropic__messages__nostream__anthropic-instrumentation-messages-token-counts__i1",
]


@pytest.mark.parametrize("name", ANTHROPIC_JSON)
def test_anthropic_sdk_receives_recorded_body_byte_for_byte(replay: ReplayServer, name: str) -> None:
    rec = recording(name)
    replay.expect(rec)
    raw = _anthropic(replay).messages.with_raw_response.create(**rec.request_body)
    assert raw.http_response.content == rec.body.encode()
    msg = raw.parse()
    assert msg.id == rec.json["id"]
    assert [b.type for b in msg.content] == [b["type"] for b in rec.json["content"]]


def test_anthropic_cache_tokens_arrive(replay: ReplayServer) -> None:
    rec = recording("anthropic__messages__nostream__anthropic-instrumentation-messages-token-counts__i1")
    replay.expect(rec)
    msg = _anthropic(replay).messages.create(**rec.request_body)
    assert msg.usage.cache_read_input_tokens == rec.json["usage"]["cache_read_input_tokens"] > 0


def test_anthropic_tool_use_arrives(replay: ReplayServer) -> None:
    rec = recording("anthropic__messages__nostream__anthropic-tools-legacy__i0")
    replay.expect(rec)
    msg = _anthropic(replay).messages.create(**rec.request_body)
    tool_uses = [b for b in msg.content if b.type == "tool_use"]
    assert [t.input for t in tool_uses] == [b["input"] for b in rec.json["content"] if b["type"] == "tool_use"]
    assert len(tool_uses) == 2


def test_anthropic_streamed_message(replay: ReplayServer) -> None:
    rec = recording("anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0")
    replay.expect(rec)
    client = _anthropic(replay)
    body = {k: v for k, v in rec.request_body.items() if k != "stream"}
    with client.messages.stream(**body) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.usage.output_tokens > 0


def test_anthropic_error_status(replay: ReplayServer) -> None:
    rec = recording("anthropic__messages__nostream__anthropic-explicit-effort-xhigh-unsupported-model-errors__i0")
    replay.expect(rec)
    with pytest.raises(anthropic.BadRequestError) as info:
        _anthropic(replay).beta.messages.create(**{k: v for k, v in rec.request_body.items() if k != "stream"})
    assert "xhigh" in str(info.value)


def test_unmatched_request_gets_a_loud_599(replay: ReplayServer) -> None:
    response = httpx2.post(replay.url + "/v1/chat/completions", json={"model": "x"})
    assert response.status_code == UNMATCHED_STATUS
    assert "no recording queued for POST /v1/chat/completions" in response.text
    assert len(replay.unmatched) == 1
    replay.unmatched.clear()  # expected here; the fixture would otherwise fail this test


def test_matching_is_by_method_and_path_in_queue_order(replay: ReplayServer) -> None:
    first = recording("openai__chat-completions__nostream__chat__i1")
    second = recording("openai__chat-completions__nostream__tool-calls__i0")
    replay.expect(first, second)
    with httpx2.Client(base_url=replay.url) as client:
        assert client.get("/v1/chat/completions").status_code == UNMATCHED_STATUS  # wrong method
        assert client.post("/v1/chat/completions", json={}).json()["id"] == first.json["id"]
        assert client.post("/v1/chat/completions", json={}).json()["id"] == second.json["id"]
        assert client.post("/v1/chat/completions", json={}).status_code == UNMATCHED_STATUS  # queue used up
    assert len(replay.unmatched) == 2
    replay.unmatched.clear()
