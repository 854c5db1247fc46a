"""Fixtures for the trace store: real ``spyglass serve`` processes on ephemeral ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store.server import StoreServer


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., StoreServer]]:
    """``make_server(*flags, db=None)`` starts a server (stopped after the test)."""
    started: list[StoreServer] = []

    def make(*args: str, db: Path | None = None) -> StoreServer:
        server = StoreServer(db or tmp_path / "spyglass.db", *args).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., StoreServer]) -> StoreServer:
    return make_server()
