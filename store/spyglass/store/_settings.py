"""Settings of ``spyglass serve``: one frozen object built once at start (flags > env vars > defaults)."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4319
"""API and web UI (next to the OTLP ports)."""
DEFAULT_OTLP_GRPC_PORT: Final = 4317
DEFAULT_OTLP_HTTP_PORT: Final = 4318
DEFAULT_MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
DEFAULT_MAX_PENDING_SPANS: Final = 200_000
TENANT_HEADER: Final = "x-spyglass-tenant"
"""Request header naming the tenant of ingested spans (a tenant-scoped token wins over it)."""


def default_db_path() -> Path:
    """``spyglass.db`` under the user's data directory (XDG on Linux, Application Support, LOCALAPPDATA)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "spyglass" / "spyglass.db"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 1024, "mi": 1024**2, "gi": 1024**3}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$", re.I)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """``500MB``, ``2GiB``, ``10g``, or bytes; raises ``ValueError`` with the accepted forms."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size such as 500MB, 2GiB or a number of bytes")
    unit = (m.group(2) or "").lower().rstrip("b")
    if unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r}: unknown unit")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m`` or seconds; raises ``ValueError``."""
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an age such as 30d, 12h or 90m")
    return float(m.group(1)) * _AGE_UNITS[(m.group(2) or "s").lower()]


def parse_tenant_tokens(text: str) -> dict[str, str]:
    """``tenant=token,tenant2=token2`` -> ``{token: tenant}``."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        tenant, sep, token = item.partition("=")
        if not sep or not tenant.strip() or not token.strip():
            raise ValueError(f"{item.strip()!r} is not tenant=token")
        out[token.strip()] = tenant.strip()
    return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything ``spyglass serve`` needs; build it once and pass it down."""

    db: Path = field(default_factory=default_db_path)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    otlp_grpc_port: int | None = DEFAULT_OTLP_GRPC_PORT
    """``None`` disables the gRPC receiver; 0 picks a free port."""
    otlp_http_port: int | None = DEFAULT_OTLP_HTTP_PORT
    """``None`` serves ``/v1/traces`` only on the API port; 0 picks a free port."""
    auth_token: str | None = None
    tenant_tokens: dict[str, str] = field(default_factory=dict)
    """``{token: tenant}``: tokens that see and write one tenant only."""
    allow_insecure: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_pending_spans: int = DEFAULT_MAX_PENDING_SPANS
    retention_age_s: float | None = None
    retention_bytes: int | None = None

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_token or self.tenant_tokens)

    def check(self) -> None:
        """Refuse unsafe or impossible settings with a message that says what to do."""
        if not is_loopback(self.host) and not self.auth_enabled and not self.allow_insecure:
            raise ValueError(
                f"refusing to listen on {self.host} without an auth token: anyone who can reach it could read "
                "every prompt. Set --auth-token (or OTEL_SPYGLASS_STORE_AUTH_TOKEN), or pass --insecure."
            )
        if self.max_request_bytes < 1024:
            raise ValueError("max request size must be at least 1024 bytes")
        if self.max_pending_spans < 1:
            raise ValueError("max pending spans must be at least 1")
