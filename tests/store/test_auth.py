"""Bearer tokens on the API, UI and both OTLP receivers; tenant-scoped tokens; refusing an open public bind."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from spyglass.semconv import extensions, gen_ai
from spyglass.semconv import messages as m
from tests.store.server import StoreServer

ADMIN = "admin-token-0123456789"
ACME = "acme-token-abcdef"
GLOBEX = "globex-token-uvwxyz"


@pytest.fixture
def secured(make_server: Callable[..., StoreServer]) -> StoreServer:
    return make_server("--auth-token", ADMIN, "--tenant-tokens", f"acme={ACME},globex={GLOBEX}")


class _Recording(SpanExporter):
    """Wraps an exporter and keeps its results."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans):  # type: ignore[no-untyped-def]
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def _send(exporter: SpanExporter, text: str, tenant_attr: str | None = None) -> list[SpanExportResult]:
    resource = {"service.name": "auth-test"}
    if tenant_attr:
        resource[extensions.TENANT_ID] = tenant_attr
    recording = _Recording(exporter)
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(recording))
    attrs = {gen_ai.OPERATION_NAME: "chat", gen_ai.INPUT_MESSAGES: m.dumps([m.message("user", [m.text(text)])])}
    with provider.get_tracer("t").start_as_current_span("chat", attributes=attrs):
        pass
    provider.shutdown()
    return recording.results


def test_api_and_ui_need_a_token(secured: StoreServer) -> None:
    for path in ("/api/v1/spans", "/api/v1/stats", "/openapi.json", "/-/status", "/"):
        resp = secured.get(path)
        assert resp.status == 401, path
        assert resp.json() == {
            "ok": False,
            "error": resp.json()["error"],
            "errors": [resp.json()["error"]],
            "status": 401,
        }
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert secured.get(path, token="wrong").status == 401
    assert secured.get("/api/v1/spans", token=ADMIN).status == 200
    assert secured.get("/-/health").status == 200  # liveness stays open
    cookie = {"Cookie": f"spyglass_token={ADMIN}"}
    from tests.store.server import request

    assert request("GET", secured.api + "/api/v1/spans", headers=cookie).status == 200


def test_otlp_http_and_grpc_need_a_token(secured: StoreServer) -> None:
    assert _send(HttpExporter(endpoint=secured.otlp_http), "no token http") == [SpanExportResult.FAILURE]
    assert _send(GrpcExporter(endpoint=secured.otlp_grpc, insecure=True, timeout=5), "no token grpc") == [
        SpanExportResult.FAILURE
    ]
    raw = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="x")])])
        ]
    )
    with grpc.insecure_channel(secured.otlp_grpc.removeprefix("http://")) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(raw, timeout=5, metadata=[("authorization", "Bearer nope")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    headers = {"Authorization": f"Bearer {ADMIN}"}
    assert _send(HttpExporter(endpoint=secured.otlp_http, headers=headers), "admin http") == [SpanExportResult.SUCCESS]
    grpc_exporter = GrpcExporter(
        endpoint=secured.otlp_grpc, insecure=True, headers=(("authorization", f"Bearer {ADMIN}"),)
    )
    assert _send(grpc_exporter, "admin grpc") == [SpanExportResult.SUCCESS]
    texts = {i["input_text"] for i in secured.get("/api/v1/spans", token=ADMIN).json()["items"]}
    assert texts == {"user: admin http", "user: admin grpc"}


def test_tenant_isolation(secured: StoreServer) -> None:
    # A tenant token writes into its own tenant whatever the resource says.
    acme = {"Authorization": f"Bearer {ACME}"}
    assert _send(HttpExporter(endpoint=secured.otlp_http, headers=acme), "acme secret", tenant_attr="globex") == [
        SpanExportResult.SUCCESS
    ]
    assert _send(
        GrpcExporter(endpoint=secured.otlp_grpc, insecure=True, headers=(("authorization", f"Bearer {GLOBEX}"),)),
        "globex secret",
    ) == [SpanExportResult.SUCCESS]
    # The admin token can tag a tenant with the header.
    admin_tenant = {"Authorization": f"Bearer {ADMIN}", "X-Spyglass-Tenant": "initech"}
    assert _send(HttpExporter(endpoint=secured.otlp_http, headers=admin_tenant), "initech secret") == [
        SpanExportResult.SUCCESS
    ]
    everything = secured.get("/api/v1/spans", token=ADMIN).json()["items"]
    assert {(i["tenant"], i["input_text"]) for i in everything} == {
        ("acme", "user: acme secret"),
        ("globex", "user: globex secret"),
        ("initech", "user: initech secret"),
    }

    acme_items = secured.get("/api/v1/spans", token=ACME).json()["items"]
    assert [i["input_text"] for i in acme_items] == ["user: acme secret"]
    # Asking for another tenant is forbidden, not silently empty.
    resp = secured.get("/api/v1/spans", token=ACME, tenant="globex")
    assert resp.status == 403 and resp.json()["status"] == 403
    assert secured.get("/api/v1/spans", token=ACME, q="secret").json()["items"] == acme_items
    assert secured.get("/api/v1/stats", token=ACME, llm="false").json()["count"] == 1
    globex_item = next(i for i in everything if i["tenant"] == "globex")
    assert secured.get(f"/api/v1/traces/{globex_item['trace_id']}", token=ACME).status == 404
    assert secured.get(f"/api/v1/spans/{globex_item['trace_id']}/{globex_item['span_id']}", token=ACME).status == 404
    assert secured.get(f"/api/v1/traces/{globex_item['trace_id']}", token=GLOBEX).status == 200
    export = secured.get("/api/v1/export", token=ACME, format="jsonl", llm="false").text.splitlines()
    assert [json.loads(x)["tenant"] for x in export] == ["acme"]
    # A tenant token cannot write into another tenant with the header either.
    forged = {"Authorization": f"Bearer {ACME}", "X-Spyglass-Tenant": "globex"}
    assert _send(HttpExporter(endpoint=secured.otlp_http, headers=forged), "forged") == [SpanExportResult.FAILURE]
    # Datasets are per tenant.
    assert secured.post_json("/api/v1/datasets", {"name": "mine"}, token=ACME).status == 201
    assert secured.get("/api/v1/datasets", token=GLOBEX).json()["items"] == []
    assert secured.post_json("/api/v1/datasets/mine/items", {"ids": [1]}, token=GLOBEX).status == 404
    added = secured.post_json(
        "/api/v1/datasets/mine/items", {"spans": [[globex_item["trace_id"], globex_item["span_id"]]]}, token=ACME
    )
    assert added.status == 200
    assert added.json()["size"] == 0  # another tenant's span cannot be added


def test_non_loopback_bind_is_refused_without_a_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cmd = [
        sys.executable,
        "-m",
        "spyglass.store",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--otlp-http-port",
        "0",
        "--otlp-grpc-port",
        "0",
        "--db",
        str(tmp_path / "x.db"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0 without an auth token" in done.stderr
    assert "Traceback" not in done.stderr


def test_admin_token_sets_the_tenant_with_grpc_metadata(secured: StoreServer) -> None:
    exporter = GrpcExporter(
        endpoint=secured.otlp_grpc,
        insecure=True,
        headers=(("authorization", f"Bearer {ADMIN}"), ("x-spyglass-tenant", "umbrella")),
    )
    assert _send(exporter, "umbrella via grpc") == [SpanExportResult.SUCCESS]
    (item,) = secured.get("/api/v1/spans", token=ADMIN, tenant="umbrella").json()["items"]
    assert item["input_text"] == "user: umbrella via grpc"
