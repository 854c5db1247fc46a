"""``spyglass serve``: the store, the OTLP/gRPC receiver and one uvicorn server on the HTTP ports.

The API/UI port and the OTLP/HTTP port serve the same application (both answer ``/v1/traces`` and the
API, behind the same authentication), so one event loop runs everything HTTP.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from spyglass.store._settings import Settings
from spyglass.store._writer import Retention


@dataclass(frozen=True)
class Addresses:
    api: str
    otlp_http: str
    otlp_grpc: str | None
    db: str

    def lines(self) -> list[str]:
        out = [
            f"spyglass serve: API and UI   {self.api}/",
            f"spyglass serve: OTLP/HTTP    {self.otlp_http}/v1/traces",
        ]
        if self.otlp_grpc:
            out.append(f"spyglass serve: OTLP/gRPC    {self.otlp_grpc}")
        out.append(f"spyglass serve: database     {self.db}")
        return out


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{shown}:{port}"


def serve(settings: Settings, *, ready: Callable[[Addresses], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM. ``ready`` is called with the bound addresses before serving."""
    import uvicorn

    from spyglass.store._app import create_app
    from spyglass.store._auth import Authenticator
    from spyglass.store._grpc import start_grpc
    from spyglass.store._store import Store

    settings.check()
    retention = Retention(max_age_s=settings.retention_age_s, max_bytes=settings.retention_bytes)
    store = Store(settings.db, max_pending=settings.max_pending_spans, retention=retention)
    grpc_server = None
    try:
        api_sock = _bind(settings.host, settings.port)
        sockets = [api_sock]
        api_port = api_sock.getsockname()[1]
        http_port = api_port
        if settings.otlp_http_port is not None:
            otlp_sock = _bind(settings.host, settings.otlp_http_port)
            sockets.append(otlp_sock)
            http_port = otlp_sock.getsockname()[1]
        grpc_address = None
        if settings.otlp_grpc_port is not None:
            auth = Authenticator(settings.auth_token, settings.tenant_tokens)
            grpc_server, grpc_port = start_grpc(
                store, auth, settings.host, settings.otlp_grpc_port, max_message_bytes=settings.max_request_bytes
            )
            grpc_address = _url("http", settings.host, grpc_port)
        app = create_app(store, settings)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            server_header=False,
        )
        server = uvicorn.Server(config)
        addresses = Addresses(
            api=_url("http", settings.host, api_port),
            otlp_http=_url("http", settings.host, http_port),
            otlp_grpc=grpc_address,
            db=str(settings.db),
        )
        if ready is not None:
            ready(addresses)
        server.run(sockets=sockets)
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait(10)
        store.close()
        sys.stdout.flush()
