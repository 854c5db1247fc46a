"""A real ``spyglass serve`` process on ephemeral 127.0.0.1 ports, and a small HTTP client for its API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    timeout: float = 30,
) -> Response:
    if params:
        pairs = params.items() if isinstance(params, dict) else params
        flat = [(k, v) for k, vs in pairs for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
        url += "?" + urllib.parse.urlencode(flat)
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


class StoreServer:
    """Start ``python -m spyglass.store serve`` with ``--port 0`` everywhere and read the bound addresses."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.args = args
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.api = self.otlp_http = self.otlp_grpc = ""
        self.token: str | None = None

    def start(self, timeout: float = 30) -> StoreServer:
        cmd = [
            sys.executable,
            "-m",
            "spyglass.store",
            "serve",
            "--db",
            str(self.db),
            "--port",
            "0",
            "--otlp-http-port",
            "0",
            "--otlp-grpc-port",
            "0",
            *self.args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(self.env or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"spyglass serve exited: {err}")
            url = line.split()[-1]
            if "API and UI" in line:
                self.api = url.rstrip("/")
            elif "OTLP/HTTP" in line:
                self.otlp_http = url
            elif "OTLP/gRPC" in line:
                self.otlp_grpc = url
            elif "database" in line:
                break
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if request("GET", self.api + "/-/health", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not answer /-/health")

    def headers(self, token: str | None = None) -> dict[str, str]:
        tok = token or self.token
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    def get(self, path: str, token: str | None = None, **params: Any) -> Response:
        return request("GET", self.api + path, params=params or None, headers=self.headers(token))

    def get_params(self, path: str, params: list[tuple[str, Any]], token: str | None = None) -> Response:
        return request("GET", self.api + path, params=params, headers=self.headers(token))

    def post_json(self, path: str, data: Any, token: str | None = None) -> Response:
        headers = {"content-type": "application/json", **self.headers(token)}
        return request("POST", self.api + path, body=json.dumps(data).encode(), headers=headers)

    def post_otlp(
        self, body: bytes, content_type: str, *, encoding: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        h = {"content-type": content_type, **(headers or {})}
        if encoding:
            h["content-encoding"] = encoding
        return request("POST", self.otlp_http, body=body, headers=h)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            if stream:
                stream.close()

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate: Any, timeout: float = 10, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
