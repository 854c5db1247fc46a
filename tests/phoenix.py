"""Arize Phoenix for tests: ``phoenix serve`` from its own venv (``.ci/.phoenix-venv``, installed by ``.ci/run``)
on 127.0.0.1 with free ports, plus small clients for its REST API.

Usage in a test module (tests marked ``phoenix``)::

    from tests.phoenix import Phoenix, phoenix  # noqa: F401  (the fixture)

    @pytest.mark.phoenix
    def test_x(phoenix: Phoenix) -> None:
        ...export to phoenix.otlp_http_endpoint (or phoenix.otlp_grpc_endpoint)...
        spans = phoenix.wait_for_spans("my-project", count=1)

Phoenix has many dependencies that clash with ours (openai 3.x...), so it lives in a separate venv and only
talks to the tests over sockets. One server per test session (start-up takes tens of seconds).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHOENIX_BIN = ROOT / ".ci" / ".phoenix-venv" / "bin" / "phoenix"
START_TIMEOUT_S = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Phoenix:
    def __init__(self, workdir: Path) -> None:
        self.http_port = _free_port()
        self.grpc_port = _free_port()
        self.workdir = workdir
        self.log_path = workdir / "phoenix.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self) -> Phoenix:
        if not PHOENIX_BIN.exists():
            pytest.fail(
                f"Phoenix is not installed at {PHOENIX_BIN}: run `python -m venv .ci/.phoenix-venv && "
                ".ci/.phoenix-venv/bin/pip install arize-phoenix` (.ci/run does this)"
            )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.workdir),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.http_port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(self.workdir),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen([str(PHOENIX_BIN), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"phoenix serve exited with {self._proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"phoenix serve did not answer /healthz within {START_TIMEOUT_S:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as r:
            return json.loads(r.read())

    def spans(self, project: str, limit: int = 100) -> list[dict[str, Any]]:
        """Spans of a project through Phoenix's REST API (``GET /v1/projects/{project}/spans``)."""
        try:
            return list(self.get(f"/v1/projects/{project}/spans?limit={limit}")["data"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the project appears with its first span
                return []
            raise

    def wait_for_spans(self, project: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            spans = self.spans(project)
            if len(spans) >= count:
                return spans
            time.sleep(0.3)
        raise AssertionError(f"Phoenix has {len(spans)} spans in {project!r}, expected {count}:\n{self.log()}")


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """One Phoenix server for the session, on free 127.0.0.1 ports."""
    server = Phoenix(tmp_path_factory.mktemp("phoenix")).start()
    try:
        yield server
    finally:
        server.stop()
