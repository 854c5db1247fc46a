"""The OTLP/gRPC receiver: ``opentelemetry-proto``'s ``TraceService`` on a ``grpc.server``.

Errors follow the OTLP spec: ``UNAUTHENTICATED``/``PERMISSION_DENIED`` for tokens, ``INVALID_ARGUMENT``
(never retried) for unreadable spans, ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` detail when
the write queue is full (retried by exporters), and partial success when some spans were rejected.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spyglass.store._auth import Authenticator, effective_tenant
from spyglass.store._errors import Forbidden, StoreError, Unauthorized
from spyglass.store._settings import TENANT_HEADER
from spyglass.store._store import Store
from spyglass.store._writer import Overloaded, WriterClosed

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2
ACK_TIMEOUT_S = 60.0


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, store: Store, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        metadata = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
        try:
            principal = self.auth.check(Authenticator.bearer(metadata.get("authorization")))
            tenant = effective_tenant(principal, metadata.get(TENANT_HEADER))
        except Unauthorized as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
        except Forbidden as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.message)
        try:
            decoded, future = self.store.ingest(request, tenant=tenant)
        except (Overloaded, WriterClosed) as exc:
            retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_DELAY_S))
            detail = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=f"the store is busy ({exc})")
            detail.details.add().Pack(retry)
            context.set_trailing_metadata((("grpc-status-details-bin", detail.SerializeToString()),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"the store is busy ({exc}); retry later")
        except StoreError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        try:
            future.result(ACK_TIMEOUT_S)
        except Exception as exc:  # the write failed: the sender should retry
            log.warning("writing spans failed", exc_info=True)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"writing spans failed: {type(exc).__name__}")
        response = ExportTraceServiceResponse()
        if decoded.rejected:
            if not decoded.records:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, decoded.message())
            response.partial_success.rejected_spans = decoded.rejected
            response.partial_success.error_message = decoded.message()
        return response


def start_grpc(store: Store, auth: Authenticator, host: str, port: int, *, max_message_bytes: int) -> tuple[Any, int]:
    """Start the receiver; returns the server and the port it bound (``port=0`` picks a free one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="spyglass-otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(store, auth), server)  # type: ignore[no-untyped-call]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    return server, bound
