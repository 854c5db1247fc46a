"""Test support shared by Spyglass's tests, benchmarks and ``spyglass demo``: the recorded-traffic replay
server (:mod:`spyglass.testing.replay`)."""

from __future__ import annotations

from spyglass.testing.replay import Recording, ReplayServer, UnmatchedRequest, load_recording

__all__ = ["Recording", "ReplayServer", "UnmatchedRequest", "load_recording"]
