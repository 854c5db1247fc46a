"""A small LLM application for ``spyglass demo``: every kind of call a trace viewer should show.

It makes, in this order, with the official SDKs:

1. an OpenAI chat completion;
2. a streamed OpenAI answer;
3. an Anthropic message;
4. an agent that calls a tool: an OpenAI call that asks for ``get_current_weather``, the tool, and the
   call that answers with its result;
5. a call that fails (an OpenAI model that does not exist: 404);
6. a pipeline (``workflow``) that retrieves passages from a local corpus and generates a streamed Anthropic
   answer from them.

By default the SDKs talk to a :class:`~spyglass.testing.replay.ReplayServer` on 127.0.0.1 that serves real
recorded provider responses shipped with the package (``recordings/``, provenance fields kept), so it needs
no API key and no network. With ``--real`` the same calls go to the providers whose key is set
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``).

It sets up no OpenTelemetry itself: run it zero-code, e.g. ::

    OTEL_TRACES_EXPORTER=spyglass OTEL_SERVICE_NAME=spyglass-demo \\
        opentelemetry-instrument python -m spyglass.testing.sample_app

The prompts are the recorded requests' own, so each answer in the trace belongs to its question.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from spyglass.testing.replay import Recording, ReplayServer, load_recording

__all__ = ["CALLS", "CallResult", "SampleApp", "main", "recordings", "replay_server"]

RECORDINGS = (
    "openai__chat-completions__nostream__chat__i1",
    "openai__chat-completions__stream__chat-completion-streaming__i0",
    "anthropic__messages__nostream__anthropic-instrumentation-messages__i0",
    "openai__chat-completions__nostream__chat-tools__i0",
    "openai__chat-completions__nostream__chat-tool-calls__i1",
    "openai__chat-completions__nostream__async-chat-completion-404__i0",
    "anthropic__messages__stream__anthropic-instrumentation-messages-streaming__i0",
)
"""The recordings the app consumes, in the order it makes the calls."""

CALLS = 7
"""LLM calls one run makes (one of them fails on purpose)."""

CORPUS = (
    "Sunlight is made of every colour; air molecules scatter short blue wavelengths far more than red ones "
    "(Rayleigh scattering), so blue light reaches the eye from every direction of the sky.",
    "At sunset the light crosses more atmosphere, the blue is scattered away, and the sky turns red and orange.",
    "The capital of France is Paris, on the Seine.",
    "OpenTelemetry is a vendor-neutral framework for traces, metrics and logs.",
)
"""The pipeline's knowledge base: retrieval is local, by word overlap, so the demo needs no vector store."""


@dataclass(frozen=True)
class CallResult:
    """What one step of the app produced, for printing and for tests."""

    name: str
    provider: str
    ok: bool
    text: str


def recordings() -> list[Recording]:
    """The shipped recordings, in call order."""
    base = resources.files("spyglass.testing") / "recordings"
    out = []
    for name in RECORDINGS:
        with resources.as_file(base / f"{name}.json") as path:
            out.append(load_recording(Path(path)))
    return out


@contextmanager
def replay_server() -> Iterator[ReplayServer]:
    """A replay server with one run's recordings queued, on 127.0.0.1."""
    with ReplayServer(first_chunk_delay=0.05, chunk_delay=0.01) as server:
        server.expect(*recordings())
        yield server


def _request(name: str) -> dict[str, Any]:
    for rec in recordings():
        if rec.name == name:
            body: dict[str, Any] = json.loads(json.dumps(rec.request_body))
            return body
    raise KeyError(name)


class SampleApp:
    """The calls, against whichever OpenAI and Anthropic clients it is given (``None`` skips a provider)."""

    def __init__(
        self,
        openai_client: Any | None,
        anthropic_client: Any | None,
        *,
        openai_model: str | None = None,
        anthropic_model: str | None = None,
    ) -> None:
        # Any: the SDKs are optional extras; steps() leaves out the calls of a provider that is None.
        self.openai: Any = openai_client
        self.anthropic: Any = anthropic_client
        self.openai_model = openai_model
        self.anthropic_model = anthropic_model

    def _openai_body(self, recording: str) -> dict[str, Any]:
        body = _request(recording)
        if self.openai_model and body["model"] != "this-model-does-not-exist":
            body["model"] = self.openai_model
        return body

    def _anthropic_body(self, recording: str) -> dict[str, Any]:
        body = _request(recording)
        if self.anthropic_model:
            body["model"] = self.anthropic_model
        return body

    # --- the calls --------------------------------------------------------------------------------
    def openai_chat(self) -> CallResult:
        response = self.openai.chat.completions.create(**self._openai_body(RECORDINGS[0]))
        return CallResult("openai chat", "openai", True, response.choices[0].message.content or "")

    def openai_stream(self) -> CallResult:
        stream = self.openai.chat.completions.create(**self._openai_body(RECORDINGS[1]))
        parts = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
        return CallResult("openai streamed answer", "openai", True, "".join(parts))

    def anthropic_message(self) -> CallResult:
        message = self.anthropic.messages.create(**self._anthropic_body(RECORDINGS[2]))
        text = "".join(block.text for block in message.content if block.type == "text")
        return CallResult("anthropic message", "anthropic", True, text)

    def weather_agent(self) -> CallResult:
        from spyglass.instrumentation import agent, tool

        @tool(description="The current weather in a city")
        def get_current_weather(location: str) -> str:
            return f"The weather in {location} is 70 degrees and sunny."

        @agent(name="weather_agent", description="Answers weather questions with a tool")
        def run(question_request: dict[str, Any]) -> str:
            first = self.openai.chat.completions.create(**question_request)
            call = first.choices[0].message.tool_calls[0]
            result = get_current_weather(**json.loads(call.function.arguments))
            follow_up = self._openai_body(RECORDINGS[4])
            follow_up["messages"] = [
                *question_request["messages"],
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.function.name, "arguments": call.function.arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call.id, "content": result},
            ]
            second = self.openai.chat.completions.create(**follow_up)
            return str(second.choices[0].message.content or "")

        return CallResult("agent with a tool call", "openai", True, run(self._openai_body(RECORDINGS[3])))

    def failing_call(self) -> CallResult:
        import openai

        try:
            self.openai.chat.completions.create(**_request(RECORDINGS[5]))
        except openai.APIStatusError as exc:
            return CallResult("failed call (expected)", "openai", False, f"{type(exc).__name__}: {exc.status_code}")
        return CallResult("failed call (expected)", "openai", True, "the provider accepted an unknown model")

    def rag_pipeline(self) -> CallResult:
        from spyglass.instrumentation import retrieval, task, workflow

        @retrieval(data_source_id="demo-corpus")
        def retrieve(query: str, k: int = 2) -> list[str]:
            words = {w.strip("?.,!").lower() for w in query.split()}
            ranked = sorted(CORPUS, key=lambda doc: -len(words & {w.strip("?.,()").lower() for w in doc.split()}))
            return ranked[:k]

        @task(name="generate")
        def generate(request: dict[str, Any], passages: list[str]) -> str:
            body = dict(request)
            body["system"] = "Answer from these passages:\n" + "\n".join(f"- {p}" for p in passages)
            with self.anthropic.messages.stream(**{k: v for k, v in body.items() if k != "stream"}) as stream:
                return "".join(stream.text_stream)

        @workflow(name="answer_question")
        def answer(request: dict[str, Any]) -> str:
            question = request["messages"][-1]["content"]
            return generate(request, retrieve(question))

        return CallResult(
            "pipeline: retrieve then generate", "anthropic", True, answer(self._anthropic_body(RECORDINGS[6]))
        )

    # --- the run ----------------------------------------------------------------------------------
    def steps(self) -> list[tuple[str, Callable[[], CallResult]]]:
        out: list[tuple[str, Callable[[], CallResult]]] = []
        if self.openai is not None:
            out += [("openai", self.openai_chat), ("openai", self.openai_stream)]
        if self.anthropic is not None:
            out.append(("anthropic", self.anthropic_message))
        if self.openai is not None:
            out += [("openai", self.weather_agent), ("openai", self.failing_call)]
        if self.anthropic is not None:
            out.append(("anthropic", self.rag_pipeline))
        return out

    def run(self) -> list[CallResult]:
        from spyglass.instrumentation import using_attributes

        results = []
        with using_attributes(user_id="demo-user", session_id="demo-session", tags=["demo"]):
            for _, step in self.steps():
                results.append(step())
        return results


def _clients(base_url: str | None) -> tuple[Any, Any]:
    import anthropic
    import openai

    if base_url is not None:
        return (
            openai.OpenAI(base_url=base_url + "/v1", api_key="replay", max_retries=0),
            anthropic.Anthropic(base_url=base_url, api_key="replay", max_retries=0),
        )
    return (
        openai.OpenAI() if os.environ.get("OPENAI_API_KEY") else None,
        anthropic.Anthropic() if os.environ.get("ANTHROPIC_API_KEY") else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spyglass.testing.sample_app", description=__doc__.split("\n")[0])
    parser.add_argument("--real", action="store_true", help="call the providers whose API key is set")
    parser.add_argument("--openai-model", help="model for the OpenAI calls with --real (default: the recorded one)")
    parser.add_argument("--anthropic-model", help="model for the Anthropic calls with --real")
    parser.add_argument("--repeat", type=int, default=1, help="runs to make (0: until interrupted)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between runs")
    args = parser.parse_args(argv)

    runs = 0
    while True:
        with ExitStack() as stack:
            base_url = None if args.real else stack.enter_context(replay_server()).url
            openai_client, anthropic_client = _clients(base_url)
            if openai_client is None and anthropic_client is None:
                print("--real needs OPENAI_API_KEY or ANTHROPIC_API_KEY", file=sys.stderr)
                return 2
            app = SampleApp(
                openai_client,
                anthropic_client,
                openai_model=args.openai_model if args.real else None,
                anthropic_model=args.anthropic_model if args.real else None,
            )
            for result in app.run():
                mark = "ok " if result.ok else "err"
                print(f"  {mark} {result.name:<34} {result.text[:70]!r}", flush=True)
        runs += 1
        if args.repeat and runs >= args.repeat:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
