"""Fixtures for the trace store: real ``spyglass serve`` processes on ephemeral ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store.corpus import Corpus, build_calls, send_corpus
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


@pytest.fixture(scope="session")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StoreServer, Corpus]]:
    """One server holding the seeded corpus of :mod:`tests.store.corpus` (read-only for the tests)."""
    server = StoreServer(tmp_path_factory.mktemp("corpus") / "spyglass.db").start()
    corpus = build_calls()
    send_corpus(server.otlp_http, corpus)
    yield server, corpus
    server.stop()
