"""Shared fixtures: recorded provider traffic on a real 127.0.0.1 server, and in-memory OpenTelemetry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from spyglass.testing.replay import Recording, ReplayServer, load_recording

FIXTURES = Path(__file__).parent / "fixtures"
RECORDINGS = FIXTURES / "llm-http"


def recording(name: str) -> Recording:
    """Load ``tests/fixtures/llm-http/<name>.json`` (name with or without ``.json``)."""
    return load_recording(RECORDINGS / (name if name.endswith(".json") else f"{name}.json"))


def recordings(prefix: str = "") -> list[Recording]:
    """Every recording whose file name starts with ``prefix``, sorted by name."""
    return [load_recording(p) for p in sorted(RECORDINGS.glob(f"{prefix}*.json"))]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the developer's OTEL_* settings or provider keys."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "AZURE_OPENAI_")):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def _replay_server() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def replay(_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server, emptied for this test; the test fails if a request matched no recording."""
    _replay_server.reset()
    yield _replay_server
    unmatched = list(_replay_server.unmatched)
    _replay_server.reset()
    if unmatched:
        pytest.fail("requests matched no queued recording: " + "; ".join(u.reason for u in unmatched))
