"""Test support shared by Spyglass's tests, benchmarks and ``spyglass demo``: the recorded-traffic replay
server (:mod:`spyglass.testing.replay`) and the demo's sample LLM app (:mod:`spyglass.testing.sample_app`, run
with ``python -m``; it imports the OpenAI and Anthropic SDKs only when it runs)."""

from __future__ import annotations

from spyglass.testing.replay import Recording, ReplayServer, UnmatchedRequest, load_recording

__all__ = ["Recording", "ReplayServer", "UnmatchedRequest", "load_recording"]
