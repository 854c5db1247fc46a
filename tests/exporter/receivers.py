"""Test OTLP receivers on 127.0.0.1: a gRPC one (grpcio + opentelemetry-proto) and an HTTP one (stdlib).

Both decode what they receive into ``ExportTraceServiceRequest`` messages, can be stopped and restarted on
the same port (to simulate an outage), and the HTTP one can answer the next N requests with an error status
and a ``Retry-After`` header.
"""

from __future__ import annotations

import gzip
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []

    def add(self, request: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append(request)
            self.headers.append(headers)

    def spans(self) -> list[Any]:
        with self.lock:
            return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def attributes(self, span: Any) -> dict[str, Any]:
        return {kv.key: _value(kv.value) for kv in span.attributes}


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class GrpcReceiver(_Store):
    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self._server: Any = None

    def _handle(self, request_bytes: bytes, context: Any) -> bytes:
        request = ExportTraceServiceRequest()
        request.ParseFromString(request_bytes)
        self.add(request, {k: v for k, v in context.invocation_metadata()})
        return ExportTraceServiceResponse().SerializeToString()

    def start(self) -> GrpcReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(self._handle)},
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if port == 0:
            raise RuntimeError(f"could not bind 127.0.0.1:{self.port}")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpReceiver(_Store):
    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.fail_next = 0
        self.fail_status = 503
        self.retry_after: str | None = None
        self.failures_served = 0
        self.reject_spans = 0  # answer with an OTLP partial success rejecting this many spans

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    fail = receiver.fail_next > 0
                    if fail:
                        receiver.fail_next -= 1
                        receiver.failures_served += 1
                if fail:
                    self.send_response(receiver.fail_status)
                    if receiver.retry_after is not None:
                        self.send_header("Retry-After", receiver.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                if self.headers.get("Content-Type") == "application/json":
                    doc = json.loads(body)
                    _ids_from_hex(doc)
                    ParseDict(doc, request)
                else:
                    request.ParseFromString(body)
                receiver.add(request, {k.lower(): v for k, v in self.headers.items()})
                response = ExportTraceServiceResponse()
                if receiver.reject_spans:
                    response.partial_success.rejected_spans = receiver.reject_spans
                    response.partial_success.error_message = "span too large"
                out = response.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ids_from_hex(doc: dict[str, Any]) -> None:
    """OTLP/JSON carries ids as hex; ParseDict expects protobuf's base64 for bytes fields."""
    import base64

    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
