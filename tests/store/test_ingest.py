"""OTLP ingest into a real server process: the official exporters (HTTP protobuf, gRPC), raw OTLP/JSON,
gzip, partial success, size limits, malformed payloads, and back-pressure."""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind

from spyglass.semconv import gen_ai
from spyglass.semconv import messages as m
from spyglass.store import normalise
from spyglass.store._otlp import to_records
from spyglass.store._writer import prepare
from tests.store.server import StoreServer


def _emit(exporter: SpanExporter, service: str = "ingest-test", marker: str = "zebra") -> tuple[str, str]:
    """One LM call with an event and a link under a root span, exported by ``exporter``."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "ci"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.store.ingest", "1.2.3")
    with tracer.start_as_current_span("workflow") as root:
        link = Link(root.get_span_context(), {"why": "follows"})
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, links=[link]) as span:
            span.set_attribute(gen_ai.OPERATION_NAME, "chat")
            span.set_attribute(gen_ai.PROVIDER_NAME, "openai")
            span.set_attribute(gen_ai.REQUEST_MODEL, "gpt-4o-mini")
            span.set_attribute(gen_ai.USAGE_INPUT_TOKENS, 12)
            span.set_attribute(gen_ai.USAGE_OUTPUT_TOKENS, 3)
            span.set_attribute(gen_ai.INPUT_MESSAGES, m.dumps([m.message("user", [m.text(f"say {marker}")])]))
            span.add_event("first_token", {"gen_ai.response.time_to_first_chunk": 0.25})
            ctx = span.get_span_context()
    provider.shutdown()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def test_http_protobuf_exporter_span_is_stored_whole(server: StoreServer) -> None:
    trace_id, span_id = _emit(HttpExporter(endpoint=server.otlp_http))
    detail = server.get(f"/api/v1/spans/{trace_id}/{span_id}").json()
    assert detail["service"] == "ingest-test"
    assert detail["model"] == "gpt-4o-mini" and detail["is_llm"] is True
    assert detail["input_text"] == "user: say zebra"
    assert detail["resource"]["deployment.environment"] == "ci"
    assert detail["scope_name"] == "tests.store.ingest"
    assert detail["events"][0]["name"] == "first_token"
    assert detail["events"][0]["attributes"] == {"gen_ai.response.time_to_first_chunk": 0.25}
    assert detail["links"][0]["trace_id"] == trace_id and detail["links"][0]["attributes"] == {"why": "follows"}
    assert detail["attributes"][gen_ai.USAGE_INPUT_TOKENS] == 12
    trace = server.get(f"/api/v1/traces/{trace_id}").json()
    assert [s["name"] for s in trace["spans"]] == ["workflow", "chat gpt-4o-mini"]
    assert trace["tree"][0]["children"][0]["span_id"] == span_id


def test_http_protobuf_gzip_exporter(server: StoreServer) -> None:
    _trace_id, span_id = _emit(HttpExporter(endpoint=server.otlp_http, compression=Compression.Gzip), marker="gzipped")
    assert server.get("/api/v1/spans", q="gzipped").json()["items"][0]["span_id"] == span_id


def test_grpc_exporter(server: StoreServer) -> None:
    trace_id, span_id = _emit(GrpcExporter(endpoint=server.otlp_grpc, insecure=True), marker="grpcword")
    items = server.get("/api/v1/spans", q="grpcword").json()["items"]
    assert [(i["trace_id"], i["span_id"]) for i in items] == [(trace_id, span_id)]


def _json_payload(n: int = 2, *, bad: int = 0, name: str = "json-span", first_id: int = 1) -> dict[str, Any]:
    spans: list[dict[str, Any]] = [
        {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": f"{i + first_id:016x}",
            "name": f"{name}-{i}",
            "kind": 3,
            "startTimeUnixNano": str(1_700_000_000_000_000_000 + i),
            "endTimeUnixNano": str(1_700_000_000_250_000_000 + i),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "40"}},
                {"key": "flags", "value": {"arrayValue": {"values": [{"boolValue": True}, {"doubleValue": 1.5}]}}},
            ],
            "status": {"code": 2, "message": "boom"} if i == 0 else {},
        }
        for i in range(n)
    ]
    spans += [{"traceId": "", "spanId": "", "name": f"broken-{i}"} for i in range(bad)]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-app"}}]},
                "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}],
            }
        ]
    }


def test_raw_otlp_json_and_gzip(server: StoreServer) -> None:
    resp = server.post_otlp(json.dumps(_json_payload()).encode(), "application/json")
    assert resp.status == 200 and resp.json() == {}
    resp = server.post_otlp(
        gzip.compress(json.dumps(_json_payload(name="gz", first_id=100)).encode()), "application/json", encoding="gzip"
    )
    assert resp.status == 200
    items = server.get("/api/v1/spans", service="js-app", sort="start", limit=10).json()["items"]
    assert {i["name"] for i in items} == {"json-span-0", "json-span-1", "gz-0", "gz-1"}
    first = next(i for i in items if i["name"] == "json-span-0")
    assert first["status"] == "error" and first["status_message"] == "boom"
    assert first["duration_ms"] == 250.0 and first["input_tokens"] == 40
    detail = server.get(f"/api/v1/spans/{first['trace_id']}/{first['span_id']}").json()
    assert detail["attributes"]["flags"] == [True, 1.5]


def test_partial_success_json_and_protobuf(server: StoreServer) -> None:
    resp = server.post_otlp(json.dumps(_json_payload(1, bad=2)).encode(), "application/json")
    assert resp.status == 200
    assert resp.json()["partialSuccess"]["rejectedSpans"] == 2
    assert "trace_id must be 16 bytes" in resp.json()["partialSuccess"]["errorMessage"]

    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok", start_time_unix_nano=5),
                            Span(trace_id=b"\x01" * 3, span_id=b"\x02" * 8, name="short id"),
                        ]
                    )
                ]
            )
        ]
    )
    resp = server.post_otlp(req.SerializeToString(), "application/x-protobuf")
    assert resp.status == 200
    parsed = ExportTraceServiceResponse.FromString(resp.body)
    assert parsed.partial_success.rejected_spans == 1
    assert "short id" in parsed.partial_success.error_message
    assert server.get("/api/v1/spans", name="ok").json()["items"][0]["span_id"] == "02" * 8


@pytest.mark.parametrize(
    ("body", "ctype", "encoding", "status", "message"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", None, 400, "invalid OTLP protobuf"),
        (b"{not json", "application/json", None, 400, "invalid JSON"),
        (b"[1, 2]", "application/json", None, 400, "must be an object"),
        (
            json.dumps(_json_payload()).replace("5b8efff7", "zzzzzzzz").encode(),
            "application/json",
            None,
            400,
            "is not a hex id",
        ),
        (b"{}", "text/plain", None, 415, "unsupported Content-Type"),
        (b"\x1f\x8b garbage", "application/json", "gzip", 400, "invalid gzip body"),
        (b"{}", "application/json", "br", 400, "unsupported Content-Encoding"),
    ],
)
def test_malformed_payloads_get_a_clear_error(
    server: StoreServer, body: bytes, ctype: str, encoding: str | None, status: int, message: str
) -> None:
    resp = server.post_otlp(body, ctype, encoding=encoding)
    assert resp.status == status
    if ctype == "application/x-protobuf":
        from google.rpc import status_pb2

        text = status_pb2.Status.FromString(resp.body).message
    else:
        text = resp.json()["error"]
    assert message in text
    assert server.get("/-/health").status == 200


def test_protobuf_error_body_is_a_google_rpc_status(server: StoreServer) -> None:
    from google.rpc import status_pb2

    resp = server.post_otlp(b"\xff\xff\xff", "application/x-protobuf")
    status = status_pb2.Status.FromString(resp.body)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "invalid OTLP protobuf" in status.message


def test_size_limit_413_and_grpc_resource_exhausted(make_server: Callable[..., StoreServer]) -> None:
    server = make_server("--max-request-size", "4KiB")
    big = json.dumps(_json_payload(40)).encode()
    assert len(big) > 4096
    resp = server.post_otlp(big, "application/json")
    assert resp.status == 413 and "larger than the limit" in resp.json()["error"]
    # A small gzip body that inflates past the limit is refused too.
    resp = server.post_otlp(gzip.compress(big), "application/json", encoding="gzip")
    assert resp.status == 413
    with grpc.insecure_channel(server.otlp_grpc.removeprefix("http://")) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        req = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    scope_spans=[
                        ScopeSpans(spans=[Span(trace_id=b"\x01" * 16, span_id=b"\x03" * 8, name="x" * 10_000)])
                    ]
                )
            ]
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert server.get("/-/health").status == 200


def _one_span_request(name: str, span_byte: int) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(
                                trace_id=b"\x07" * 16, span_id=bytes([span_byte]) * 8, name=name, start_time_unix_nano=1
                            )
                        ]
                    )
                ]
            )
        ]
    )


def test_back_pressure_503_retry_after_and_grpc_resource_exhausted(make_server: Callable[..., StoreServer]) -> None:
    server = make_server("--max-pending-spans", "1")
    # Another process holding the write lock stalls the writer, so the queue fills.
    blocker = sqlite3.connect(server.db, isolation_level=None, timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")
    results: dict[str, Any] = {}

    def first() -> None:
        results["first"] = server.post_otlp(_one_span_request("held", 1).SerializeToString(), "application/x-protobuf")

    thread = threading.Thread(target=first)
    thread.start()
    try:
        from tests.store.server import wait_for

        assert wait_for(lambda: server.get("/-/status").json()["pending_spans"] == 1)
        resp = server.post_otlp(_one_span_request("refused", 2).SerializeToString(), "application/x-protobuf")
        assert resp.status == 503
        assert int(resp.headers["retry-after"]) >= 1
        with grpc.insecure_channel(server.otlp_grpc.removeprefix("http://")) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.Export(_one_span_request("refused-grpc", 3), timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = dict(err.value.trailing_metadata() or ())
            assert "grpc-status-details-bin" in details
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    thread.join(30)
    assert results["first"].status == 200  # acknowledged once the lock went away
    names = {i["name"] for i in server.get("/api/v1/spans").json()["items"]}
    assert names == {"held"}
    assert server.get("/-/status").json()["spans_rejected_overload"] == 2


def test_otlp_http_is_also_served_on_the_api_port(server: StoreServer) -> None:
    from tests.store.server import request

    body = json.dumps(_json_payload(1, name="via-api-port", first_id=500)).encode()
    resp = request("POST", server.api + "/v1/traces", body=body, headers={"content-type": "application/json"})
    assert resp.status == 200
    assert server.get("/api/v1/spans", name="via-api-port-0").json()["items"][0]["service"] == "js-app"


def test_a_failed_write_is_retryable_and_fails_only_its_own_request(server: StoreServer) -> None:
    # A real SQLite failure for one request's spans: a trigger that aborts inserts of spans named "poison".
    conn = sqlite3.connect(server.db, isolation_level=None)
    conn.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON spans WHEN NEW.name = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    try:
        bad = server.post_otlp(_one_span_request("poison", 9).SerializeToString(), "application/x-protobuf")
        good = server.post_otlp(_one_span_request("fine", 10).SerializeToString(), "application/x-protobuf")
        assert bad.status == 503 and int(bad.headers["retry-after"]) >= 1
        assert good.status == 200
    finally:
        conn.execute("DROP TRIGGER poison")
        conn.close()
    # The exporter's retry now goes through.
    again = server.post_otlp(_one_span_request("poison", 9).SerializeToString(), "application/x-protobuf")
    assert again.status == 200
    assert {i["name"] for i in server.get("/api/v1/spans").json()["items"]} == {"poison", "fine"}


def test_records_of_a_request_share_their_resource_and_match_normalise() -> None:
    """to_records reads each resource once (service, tenant, stored JSON) and gives the records normalise gives."""

    def kv(key: str, value: Any) -> KeyValue:
        if isinstance(value, float):
            return KeyValue(key=key, value=AnyValue(double_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    req = ExportTraceServiceRequest()
    resources = [
        {"service.name": "svc-a", "spyglass.tenant.id": "acme", "z.last": "1", "a.first": 0.5},
        {"service.name": "svc-b"},
        {},
    ]
    attrs = {gen_ai.OPERATION_NAME: "chat", gen_ai.REQUEST_MODEL: "gpt-4o", "spyglass.tenant.id": "span-tenant"}
    for n, resource in enumerate(resources):
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(kv(k, v) for k, v in resource.items())
        scope = rs.scope_spans.add()
        for i in range(2):
            scope.spans.append(
                Span(
                    trace_id=bytes([n + 1]) * 16,
                    span_id=bytes([i + 1]) * 8,
                    name="chat",
                    start_time_unix_nano=10,
                    end_time_unix_nano=20,
                    attributes=[kv(k, v) for k, v in attrs.items()],
                )
            )
    for tenant in (None, "header-tenant"):
        records = to_records(req, tenant=tenant, pricer=None).records
        assert [(r.service, r.tenant) for r in records] == [
            ("svc-a", tenant or "acme"),
            ("svc-a", tenant or "acme"),
            ("svc-b", tenant or "span-tenant"),
            ("svc-b", tenant or "span-tenant"),
            (None, tenant or "span-tenant"),
            (None, tenant or "span-tenant"),
        ]
        assert records[0].resource is records[1].resource and records[0].resource_json is records[1].resource_json
        for rec in records:
            reference = normalise(
                trace_id=rec.trace_id,
                span_id=rec.span_id,
                parent_span_id=rec.parent_span_id,
                name=rec.name,
                kind=rec.kind,
                start_ns=rec.start_ns,
                end_ns=rec.end_ns,
                attributes=rec.attributes,
                events=rec.events,
                links=rec.links,
                resource=rec.resource,
                scope_name=rec.scope_name,
                status_code=0,
                status_message=None,
                tenant=tenant,
            )
            assert reference.resource_json is None
            assert prepare(reference) == prepare(rec)  # the stored row, resource JSON made per span or shared
            reference.resource_json = rec.resource_json
            assert reference == rec
        assert (
            prepare(records[0])[1] == '{"a.first":0.5,"service.name":"svc-a","spyglass.tenant.id":"acme","z.last":"1"}'
        )
