"""The OpenAPI 3.1 document served at ``/openapi.json`` (written by hand next to the routes it describes)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from spyglass.store._export import FORMATS
from spyglass.store._queries import GROUPS, SORTS


def _q(name: str, description: str, schema: dict[str, Any] | None = None, *, many: bool = False) -> dict[str, Any]:
    s = schema or {"type": "string"}
    if many:
        s = {"type": "array", "items": s}
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description, "schema": s}
    if many:
        out.update(style="form", explode=True)
    return out


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


FILTER_PARAMETERS: list[dict[str, Any]] = [
    _q("model", "answering model (repeat for any of several)", many=True),
    _q("provider", "provider name, e.g. openai, anthropic", many=True),
    _q("status", "success | error | timeout (comma-separated or repeated)", many=True),
    _q("service", "service.name of the sender", many=True),
    _q("tenant", "tenant (a tenant-scoped token is limited to its own)", many=True),
    _q("operation", "gen_ai.operation.name, e.g. chat, embeddings, execute_tool", many=True),
    _q("user", "user.id", many=True),
    _q("session", "session.id", many=True),
    _q("alias", "requested model when it differs from the answering model", many=True),
    _q("name", "span name", many=True),
    _q("trace_id", "32 hex digits", many=True),
    _q("since", "ISO 8601, Unix time, or an age such as 15m, 2h, 7d"),
    _q("until", "ISO 8601, Unix time, or an age"),
    _q("q", 'full-text search over input, output and tool arguments ("a phrase", prefix*)'),
    _q("min_duration_ms", "minimum latency", {"type": "number"}),
    _q("max_duration_ms", "maximum latency", {"type": "number"}),
    _q("min_cost", "minimum cost in USD", {"type": "number"}),
    _q("llm", "true: LM calls only", {"type": "boolean"}),
]
ERROR = {
    "type": "object",
    "required": ["ok", "error", "errors", "status"],
    "properties": {
        "ok": {"const": False},
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "integer"},
    },
}
ITEM = {
    "type": "object",
    "description": "One span with its normalised request record (see spyglass.store._schema).",
    "properties": {
        "id": {"type": "integer"},
        "trace_id": {"type": "string"},
        "span_id": {"type": "string"},
        "parent_span_id": {"type": ["string", "null"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "tenant": {"type": "string"},
        "service": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "operation": {"type": ["string", "null"]},
        "provider": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "request_model": {"type": ["string", "null"]},
        "alias": {"type": ["string", "null"]},
        "status": {"enum": ["success", "error", "timeout"]},
        "duration_ms": {"type": "number"},
        "input_tokens": {"type": ["integer", "null"]},
        "output_tokens": {"type": ["integer", "null"]},
        "cache_read_tokens": {"type": ["integer", "null"]},
        "cache_write_tokens": {"type": ["integer", "null"]},
        "reasoning_tokens": {"type": ["integer", "null"]},
        "cost": {"type": ["number", "null"]},
        "user_id": {"type": ["string", "null"]},
        "session_id": {"type": ["string", "null"]},
        "input_text": {"type": ["string", "null"]},
        "output_text": {"type": ["string", "null"]},
        "metadata": {"type": "object"},
        **{
            key: {
                "type": ["string", "null"],
                "description": f"where a completion hook stored the span's {what} (a URL from the span, "
                "untrusted, never fetched by the store); set on a span's detail, and on list items of LM "
                "calls missing a prompt or a response",
            }
            for key, what in (
                ("input_messages_ref", "input messages"),
                ("output_messages_ref", "output messages"),
                ("system_instructions_ref", "system instructions"),
                ("tool_definitions_ref", "tool definitions"),
            )
        },
    },
}
PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        "next_cursor": {"type": ["string", "null"]},
        "limit": {"type": "integer"},
        "sort": {"type": "string"},
    },
}


def _json(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


_ERRORS = {
    str(code): _json(text, "#/components/schemas/Error")
    for code, text in (
        (400, "bad parameters"),
        (401, "missing or wrong token"),
        (403, "another tenant"),
        (404, "not found"),
    )
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    from spyglass.store.cli import version

    paging = [
        _q("sort", "sort key, - prefix for descending", {"enum": [p + k for k in SORTS for p in ("", "-")]}),
        _q("cursor", "next_cursor of the previous page"),
        _q("limit", "page size (1-1000, default 50)", {"type": "integer"}),
    ]
    search = {
        "parameters": FILTER_PARAMETERS + paging,
        "responses": {"200": _json("a page of spans", "#/components/schemas/Page"), **_ERRORS},
    }
    export = {
        "parameters": [*FILTER_PARAMETERS, _q("format", "export format", {"enum": list(FORMATS)})],
        "responses": {
            "200": {
                "description": "CSV (formula-safe), JSONL, or OpenAI chat fine-tuning JSONL, streamed",
                "content": {"text/csv": {}, "application/x-ndjson": {}},
            },
            **_ERRORS,
        },
    }
    generic = {"200": {"description": "JSON", "content": {"application/json": {}}}, **_ERRORS}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Spyglass trace store", "version": version()},
        "components": {
            "schemas": {"Error": ERROR, "Item": ITEM, "Page": PAGE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/traces": {
                "post": {
                    "summary": "OTLP/HTTP trace ingest (protobuf or JSON, gzip); answers after a durable write",
                    "requestBody": {"content": {"application/x-protobuf": {}, "application/json": {}}},
                    "responses": {
                        "200": {"description": "ExportTraceServiceResponse (partial success when spans were rejected)"},
                        "400": {"description": "malformed payload"},
                        "413": {"description": "payload too large"},
                        "503": {"description": "busy; retry after Retry-After seconds"},
                    },
                }
            },
            "/api/v1/spans": {"get": {"summary": "search spans", **search}},
            "/api/v1/requests": {"get": {"summary": "search LM calls (spans with llm=true)", **search}},
            "/api/v1/spans/{trace_id}/{span_id}": {
                "get": {
                    "summary": "one span with attributes, events, links, resource and messages",
                    "parameters": [_path("trace_id", "32 hex digits"), _path("span_id", "16 hex digits")],
                    "responses": generic,
                }
            },
            "/api/v1/traces/{trace_id}": {
                "get": {
                    "summary": "a trace: flat spans with depth, a tree, a summary",
                    "parameters": [_path("trace_id", "32 hex digits")],
                    "responses": generic,
                }
            },
            "/api/v1/stats": {
                "get": {
                    "summary": "count, latency percentiles, failure rate, tokens, cost; grouped and bucketed",
                    "parameters": [
                        *FILTER_PARAMETERS,
                        _q("group_by", "group", {"enum": list(GROUPS)}),
                        _q("bucket", "time bucket width: 30s, 5m, 1h, 1d or auto"),
                    ],
                    "responses": generic,
                }
            },
            "/api/v1/facets": {
                "get": {"summary": "distinct values with counts", "parameters": FILTER_PARAMETERS, "responses": generic}
            },
            "/api/v1/export": {"get": {"summary": "export the filtered spans", **export}},
            "/api/v1/datasets": {
                "get": {"summary": "list datasets", "responses": generic},
                "post": {
                    "summary": "create a dataset: {name, description?, tenant?}",
                    "requestBody": {"content": {"application/json": {}}},
                    "responses": {"201": {"description": "created"}, **_ERRORS},
                },
            },
            "/api/v1/datasets/{name}": {
                "get": {"summary": "one dataset", "parameters": [_path("name", "dataset name")], "responses": generic},
                "delete": {"summary": "delete it", "parameters": [_path("name", "dataset name")], "responses": generic},
            },
            "/api/v1/datasets/{name}/items": {
                "get": {
                    "summary": "its spans, paged",
                    "parameters": [_path("name", "dataset name"), *paging],
                    "responses": generic,
                },
                "post": {
                    "summary": "add spans: {ids: [..]} | {spans: [[trace_id, span_id]]} | {filters: {..}}",
                    "parameters": [_path("name", "dataset name")],
                    "requestBody": {"content": {"application/json": {}}},
                    "responses": generic,
                },
            },
            "/api/v1/datasets/{name}/export": {
                "get": {
                    "summary": "export a dataset",
                    "parameters": [_path("name", "dataset name"), _q("format", "format", {"enum": list(FORMATS)})],
                    "responses": export["responses"],
                }
            },
            "/-/health": {"get": {"summary": "liveness (no token needed)", "security": [], "responses": generic}},
            "/-/status": {"get": {"summary": "version, counts, queue", "responses": generic}},
        },
    }
