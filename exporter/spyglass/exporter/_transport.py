"""Where encoded batches go: OTLP over gRPC, HTTP (protobuf or JSON), or a file of OTLP-JSON lines.

Every transport takes serialized ``ExportTraceServiceRequest`` bytes and either returns or raises
:class:`SendError`, which says whether the failure is worth retrying and how long the server asked us to
wait (``Retry-After``). Retrying, spooling and counting are the exporter's job, not the transport's.

Exception tree::

    SendError
      retryable=True   connection refused/reset, timeouts, HTTP 429/502/503/504, gRPC UNAVAILABLE...
      retryable=False  HTTP 400/401/403/404/413..., gRPC INVALID_ARGUMENT/UNAUTHENTICATED...: the batch is dropped
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from spyglass.exporter._encoding import to_otlp_json

__all__ = [
    "FileTransport",
    "GrpcTransport",
    "HttpTransport",
    "SendError",
    "Transport",
    "make_transport",
    "parse_retry_after",
    "rejected_spans",
]

_log = logging.getLogger(__name__)
_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE_HTTP = frozenset({408, 429, 502, 503, 504})
_MAX_RETRY_AFTER_S = 300.0


class SendError(Exception):
    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Transport(Protocol):
    description: str

    def send(self, payload: bytes, timeout: float) -> int:
        """Deliver the batch; returns how many spans the backend rejected in a partial success (usually 0)."""
        ...

    def close(self) -> None: ...


def rejected_spans(response_body: bytes, *, json_body: bool = False) -> int:
    """``partial_success.rejected_spans`` of an ``ExportTraceServiceResponse`` (0 when absent or unreadable)."""
    if not response_body:
        return 0
    try:
        if json_body:
            import json

            doc = json.loads(response_body)
            return int((doc.get("partialSuccess") or {}).get("rejectedSpans") or 0)
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        response = ExportTraceServiceResponse()
        response.ParseFromString(response_body)
        if response.HasField("partial_success"):
            if response.partial_success.error_message:
                _log.warning("OTLP partial success: %s", response.partial_success.error_message)
            return int(response.partial_success.rejected_spans)
    except Exception:  # a backend's odd body is not our failure
        return 0
    return 0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped; ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


class HttpTransport:
    """OTLP/HTTP with ``http.client`` (a plain socket the httpx instrumentation never sees), one kept-alive
    connection per exporter, ``application/x-protobuf`` or ``application/json`` bodies, optional gzip."""

    def __init__(
        self,
        endpoint: str,
        *,
        json_body: bool = False,
        headers: Mapping[str, str] | None = None,
        compression: str | None = None,
        certificate: str | None = None,
    ) -> None:
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"OTLP/HTTP endpoint must be an http(s) URL, got {endpoint!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._path = (url.path or "/v1/traces") + (f"?{url.query}" if url.query else "")
        self._json = json_body
        self._gzip = compression == "gzip"
        self._headers = {
            **dict(headers or {}),
            "Content-Type": "application/json" if json_body else "application/x-protobuf",
            "User-Agent": "spyglass-exporter",
        }
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._ssl = ssl.create_default_context(cafile=certificate) if self._https else None
        self._conn: http.client.HTTPConnection | None = None
        self.description = f"{'http/json' if json_body else 'http/protobuf'} {endpoint}"

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._conn.timeout = timeout
        return self._conn

    def send(self, payload: bytes, timeout: float) -> int:
        body = to_otlp_json(payload).encode("utf-8") if self._json else payload
        if self._gzip:
            body = gzip.compress(body, compresslevel=5)
        conn = self._connection(timeout)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            response_body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"{self.description}: {type(exc).__name__}: {exc}", retryable=True) from exc
        status = response.status
        if 200 <= status < 300:
            is_json = (response.getheader("Content-Type") or "").startswith("application/json")
            return rejected_spans(response_body, json_body=is_json)
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        raise SendError(
            f"{self.description}: HTTP {status} {response.reason}",
            retryable=status in _RETRYABLE_HTTP,
            retry_after=parse_retry_after(response.getheader("Retry-After")),
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class GrpcTransport:
    """OTLP/gRPC: the serialized request is sent as-is through a generic unary call (no re-encoding)."""

    _RETRYABLE = frozenset(
        {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED", "OUT_OF_RANGE", "DATA_LOSS"}
    )

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        compression: str | None = None,
        certificate: str | None = None,
    ) -> None:
        import grpc

        self._grpc: Any = grpc
        url = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if not url.hostname:
            raise ValueError(f"OTLP/gRPC endpoint needs a host, got {endpoint!r}")
        target = f"{url.hostname}:{url.port or 4317}"
        # gRPC's own reconnect backoff grows to 120 s by default; keep it short so a backend that comes back
        # is used within seconds (our retry loop does the pacing).
        options = [
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        comp = grpc.Compression.Gzip if compression == "gzip" else grpc.Compression.NoCompression
        if url.scheme == "https" or certificate:
            root = Path(certificate).read_bytes() if certificate else None
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            self._channel = grpc.secure_channel(target, creds, options=options, compression=comp)
        else:
            self._channel = grpc.insecure_channel(target, options=options, compression=comp)
        self._call = self._channel.unary_unary(_EXPORT_METHOD)  # bytes in, bytes out
        self._metadata = tuple((k.lower(), v) for k, v in (headers or {}).items())
        self.description = f"grpc {target}"

    def send(self, payload: bytes, timeout: float) -> int:
        grpc = self._grpc
        try:
            response = self._call(payload, timeout=timeout, metadata=self._metadata or None)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            name = code.name if code is not None else "UNKNOWN"
            retry_after = None
            for key, value in (exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else ():
                if key == "retry-after" and isinstance(value, str):
                    retry_after = parse_retry_after(value)
            raise SendError(
                f"{self.description}: {name}: {exc.details() if hasattr(exc, 'details') else exc}",
                retryable=name in self._RETRYABLE,
                retry_after=retry_after,
            ) from exc
        return rejected_spans(response)

    def close(self) -> None:
        self._channel.close()


class FileTransport:
    """Appends one OTLP-JSON ``ExportTraceServiceRequest`` per line (traces without any backend)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.description = f"file {self.path}"

    def send(self, payload: bytes, timeout: float) -> int:
        line = to_otlp_json(payload) + "\n"
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError as exc:
            raise SendError(f"{self.description}: {exc}", retryable=True) from exc
        return 0

    def close(self) -> None:
        return None


def make_transport(
    protocol: str,
    endpoint: str,
    *,
    headers: Mapping[str, str] | None = None,
    compression: str | None = None,
    certificate: str | None = None,
    export_file: str | Path | None = None,
) -> Transport:
    if export_file is not None:
        return FileTransport(export_file)
    if protocol == "grpc":
        return GrpcTransport(endpoint, headers=headers, compression=compression, certificate=certificate)
    if protocol in ("http/protobuf", "http/json"):
        return HttpTransport(
            endpoint,
            json_body=protocol == "http/json",
            headers=headers,
            compression=compression,
            certificate=certificate,
        )
    raise ValueError(f"unknown OTLP protocol {protocol!r}; expected grpc, http/protobuf or http/json")
