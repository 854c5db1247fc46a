"""The Starlette application: OTLP/HTTP ingest, the REST API under ``/api/v1``, ``/openapi.json``, the web UI.

:func:`create_app` builds it around a :class:`~spyglass.store.Store`. The web UI package mounts its pages
through ``spyglass.store.web.routes(context) -> list[BaseRoute]`` when that module exists; pages reach the
store with ``request.app.state.spyglass`` (an :class:`AppContext`) and the caller's tenant scope with
:func:`request_tenant`. Pages call the functions of :mod:`spyglass.store._queries` through
``await context.read(fn, ...)``, so a page and its JSON twin build the same data dict.

Every error, on every route, is the one shape of :func:`spyglass.store._errors.error_body`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlencode

from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.store import _export, _queries
from spyglass.store._auth import COOKIE, Authenticator, Principal, effective_tenant
from spyglass.store._errors import BadRequest, StoreError, error_body
from spyglass.store._openapi import openapi_document
from spyglass.store._otlp import PayloadError, PayloadTooLarge, decode
from spyglass.store._schema import connect
from spyglass.store._settings import TENANT_HEADER, Settings
from spyglass.store._store import Store
from spyglass.store._writer import Overloaded, WriterClosed

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

RETRY_AFTER_S = 2
ACK_TIMEOUT_S = 60.0
OPEN_PATHS = frozenset({"/-/health", "/-/login"})
"""Paths served without a token: the liveness probe and the UI's token login page."""
OPEN_PREFIXES = ("/-/static/",)
"""The UI's own CSS/JS/icon (no data in them), so the login page is styled."""


@dataclass
class AppContext:
    """What routes need: the store, the settings, the authenticator."""

    store: Store
    settings: Settings
    auth: Authenticator

    async def read(self, fn: Callable[Concatenate[Any, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a query function on a reader thread (never blocks the event loop or ingest)."""
        return await run_in_threadpool(partial(self.store.read, fn, *args, **kwargs))

    async def write(self, fn: Callable[Concatenate[Any, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await run_in_threadpool(partial(self.store.write, fn, *args, **kwargs))


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.spyglass
    return ctx


def request_principal(request: Request) -> Principal:
    principal: Principal = request.scope.get("spyglass.principal", Principal(None))
    return principal


def request_tenant(request: Request) -> str | None:
    """The tenant this request is limited to (a tenant-scoped token), or ``None`` for all tenants."""
    return request_principal(request).tenant


class AuthMiddleware:
    """Bearer (or the UI cookie) on every path except :data:`OPEN_PATHS`; sets ``scope["spyglass.principal"]``."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or not self.auth.enabled:
            scope["spyglass.principal"] = Principal(None)
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = Authenticator.bearer(request.headers.get("authorization")) or request.cookies.get(COOKIE)
        try:
            scope["spyglass.principal"] = self.auth.check(token)
        except StoreError as exc:
            if _is_page_visit(request):
                # A browser cannot send a bearer header on a link: send a person to the login page instead.
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                login = f"{scope.get('root_path', '').rstrip('/')}/-/login?{urlencode({'next': target})}"
                await RedirectResponse(login, status_code=303)(scope, receive, send)
                return
            response = _error_response(exc.status, exc.message, exc.errors, request)
            response.headers["WWW-Authenticate"] = 'Bearer realm="spyglass"'
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_page_visit(request: Request) -> bool:
    """A browser navigating to an HTML page (not an API, JSON twin, export or OTLP call)."""
    path = request.url.path
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and not path.startswith(("/api/", "/v1/"))
        and not path.endswith(".json")
    )


def _wants_protobuf(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return request.url.path == "/v1/traces" and ctype in ("application/x-protobuf", "application/protobuf")


def _error_response(status: int, message: str, errors: list[str] | None, request: Request | None) -> Response:
    if request is not None and _wants_protobuf(request):
        # OTLP/HTTP errors are a google.rpc.Status in the request's encoding.
        body = status_pb2.Status(code=_GRPC_CODES.get(status, code_pb2.UNKNOWN), message=message)
        return Response(body.SerializeToString(), status_code=status, media_type="application/x-protobuf")
    return JSONResponse(error_body(status, message, errors), status_code=status)


_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    503: code_pb2.UNAVAILABLE,
}


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    return _error_response(exc.status, exc.message, exc.errors, request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_response(exc.status_code, str(exc.detail), None, request)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return _error_response(500, f"internal error: {type(exc).__name__}", None, request)


# --- OTLP/HTTP -----------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"payload of {declared} bytes is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"payload is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def otlp_traces(request: Request) -> Response:
    """``POST /v1/traces``: OTLP/HTTP, protobuf or JSON, optionally gzip; answers after the spans are committed."""
    ctx = context(request)
    limit = ctx.settings.max_request_bytes
    ctype = request.headers.get("content-type", "")
    is_json = ctype.split(";")[0].strip().lower() == "application/json"
    try:
        tenant = effective_tenant(request_principal(request), request.headers.get(TENANT_HEADER))
        body = await _read_body(request, limit)
        req = await run_in_threadpool(decode, body, ctype, request.headers.get("content-encoding", ""), limit)
        decoded, future = await run_in_threadpool(ctx.store.ingest, req, tenant=tenant)
    except PayloadTooLarge as exc:
        return _error_response(413, str(exc), None, request)
    except PayloadError as exc:
        status = 415 if "Content-Type" in str(exc) else 400
        return _error_response(status, str(exc), None, request)
    except (Overloaded, WriterClosed) as exc:
        response = _error_response(503, f"the store is busy ({exc}); retry later", None, request)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    try:
        await asyncio.wait_for(asyncio.wrap_future(future), ACK_TIMEOUT_S)
    except Exception as exc:
        # Not written (disk full, locked too long...): a retryable answer, so the exporter sends them again.
        log.warning("writing spans failed", exc_info=True)
        response = _error_response(503, f"writing spans failed ({type(exc).__name__}); retry later", None, request)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    resp = ExportTraceServiceResponse()
    if decoded.rejected:
        resp.partial_success.rejected_spans = decoded.rejected
        resp.partial_success.error_message = decoded.message()
    if is_json:
        body_json: dict[str, Any] = {}
        if decoded.rejected:
            body_json["partialSuccess"] = {"rejectedSpans": decoded.rejected, "errorMessage": decoded.message()}
        return JSONResponse(body_json)
    return Response(resp.SerializeToString(), media_type="application/x-protobuf")


# --- API -----------------------------------------------------------------------------------------


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def request_filters(request: Request, *, llm: bool | None = None) -> _queries.Filters:
    """The :class:`~spyglass.store._queries.Filters` of a request's query string, scoped to its tenant."""
    params = _params(request)
    filters = _queries.Filters.from_params(params)
    if llm is not None and filters.llm is None:
        filters = replace(filters, llm=llm)
    principal = request_principal(request)
    for tenant in filters.tenant:
        effective_tenant(principal, tenant)  # a scoped token asking for another tenant is Forbidden
    return filters.scoped(principal.tenant)


def _int_param(request: Request, key: str) -> int | None:
    value = request.query_params.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{key}: {value!r} is not an integer") from None


async def api_spans(request: Request) -> Response:
    return await _search(request, llm=None)


async def api_requests(request: Request) -> Response:
    return await _search(request, llm=True)


async def _search(request: Request, *, llm: bool | None) -> Response:
    filters = request_filters(request, llm=llm)
    data = await context(request).read(
        _queries.search_spans,
        filters,
        sort=request.query_params.get("sort") or "-start",
        cursor=request.query_params.get("cursor") or None,
        limit=_int_param(request, "limit"),
    )
    return JSONResponse(data)


async def api_span(request: Request) -> Response:
    trace_id, span_id = request.path_params["trace_id"], request.path_params["span_id"]
    data = await context(request).read(_queries.get_span, trace_id, span_id, tenant=request_tenant(request))
    return JSONResponse(data)


async def api_trace(request: Request) -> Response:
    data = await context(request).read(
        _queries.get_trace, request.path_params["trace_id"], tenant=request_tenant(request)
    )
    return JSONResponse(data)


async def api_stats(request: Request) -> Response:
    filters = request_filters(request)
    data = await context(request).read(
        _queries.stats,
        filters,
        group_by=request.query_params.get("group_by") or None,
        bucket=request.query_params.get("bucket") or None,
    )
    return JSONResponse(data)


async def api_facets(request: Request) -> Response:
    return JSONResponse(await context(request).read(_queries.facets, request_filters(request)))


def _export_stream(store: Store, filters: _queries.Filters, fmt: str) -> Iterator[str]:
    # A connection of its own: the stream is consumed across threadpool threads. Like Store.read, it starts
    # once the full-text index holds every span acknowledged so far.
    store.writer.wait_indexed(store.read_timeout_s)
    conn = connect(str(store.path), readonly=True)
    try:
        items = _queries.iter_items(conn, filters, details=_export.NEEDS_DETAILS[fmt])
        yield from _export.WRITERS[fmt](items)
    finally:
        conn.close()


def _export_response(request: Request, filters: _queries.Filters, stem: str) -> Response:
    fmt = request.query_params.get("format") or "jsonl"
    if fmt not in _export.FORMATS:
        raise BadRequest(f"format: {fmt!r} is not one of {', '.join(_export.FORMATS)}")
    ext = "csv" if fmt == "csv" else "jsonl"
    return StreamingResponse(
        iterate_in_threadpool(_export_stream(context(request).store, filters, fmt)),
        media_type=_export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{stem}-{fmt}.{ext}"'},
    )


async def api_export(request: Request) -> Response:
    fmt = request.query_params.get("format") or "jsonl"
    filters = request_filters(request, llm=True if fmt == "finetune" else None)
    return _export_response(request, filters, "spyglass")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _dataset_tenant(request: Request, body: dict[str, Any] | None = None) -> str:
    requested = (body or {}).get("tenant") or request.query_params.get("tenant")
    if requested is not None and not isinstance(requested, str):
        raise BadRequest("tenant: must be a string")
    return effective_tenant(request_principal(request), requested) or ""


async def api_datasets(request: Request) -> Response:
    ctx = context(request)
    if request.method == "POST":
        body = await _json_body(request)
        name, description = body.get("name"), body.get("description", "")
        if not isinstance(name, str) or not isinstance(description, str):
            raise BadRequest("name and description must be strings")
        data = await ctx.write(
            _queries.create_dataset, name, tenant=_dataset_tenant(request, body), description=description
        )
        return JSONResponse(data, status_code=201)
    return JSONResponse({"items": await ctx.read(_queries.list_datasets, tenant=request_tenant(request))})


async def api_dataset(request: Request) -> Response:
    ctx = context(request)
    name = request.path_params["name"]
    tenant = _dataset_tenant(request)
    if request.method == "DELETE":
        await ctx.write(_queries.delete_dataset, name, tenant=tenant)
        return JSONResponse({"ok": True})
    return JSONResponse(await ctx.read(_queries.get_dataset, name, tenant=tenant))


async def api_dataset_items(request: Request) -> Response:
    """``POST {"ids": [..]}``, ``{"spans": [[trace_id, span_id], ..]}`` or ``{"filters": {query params}}``;
    ``GET`` lists the dataset's spans like ``/api/v1/spans``."""
    ctx = context(request)
    name = request.path_params["name"]
    if request.method == "GET":
        tenant = _dataset_tenant(request)
        ds = await ctx.read(_queries.get_dataset, name, tenant=tenant)
        filters = _queries.Filters(dataset=ds["id"]).scoped(request_tenant(request))
        data = await ctx.read(
            _queries.search_spans,
            filters,
            sort=request.query_params.get("sort") or "-start",
            cursor=request.query_params.get("cursor") or None,
            limit=_int_param(request, "limit"),
        )
        return JSONResponse(data)
    body = await _json_body(request)
    tenant = _dataset_tenant(request, body)
    ids = body.get("ids") or []
    spans = body.get("spans") or []
    raw_filters = body.get("filters")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BadRequest("ids: must be a list of span row ids (integers)")
    if not isinstance(spans, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in spans
    ):
        raise BadRequest("spans: must be a list of [trace_id, span_id] pairs")
    add_filters: _queries.Filters | None = None
    if raw_filters is not None:
        if not isinstance(raw_filters, dict):
            raise BadRequest("filters: must be an object of query parameters")
        params = {k: (v if isinstance(v, list) else [v]) for k, v in raw_filters.items()}
        add_filters = _queries.Filters.from_params({k: [str(x) for x in v] for k, v in params.items()})
    if not ids and not spans and add_filters is None:
        raise BadRequest("give ids, spans or filters to add")
    data = await ctx.write(
        _queries.add_to_dataset,
        name,
        tenant=tenant,
        ids=ids,
        spans=[(s[0], s[1]) for s in spans],
        filters=add_filters,
    )
    return JSONResponse(data)


async def api_dataset_export(request: Request) -> Response:
    ctx = context(request)
    name = request.path_params["name"]
    ds = await ctx.read(_queries.get_dataset, name, tenant=_dataset_tenant(request))
    filters = _queries.Filters(dataset=ds["id"]).scoped(request_tenant(request))
    return _export_response(request, filters, f"dataset-{name}")


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def status(request: Request) -> Response:
    ctx = context(request)
    from spyglass.store.cli import version

    data = await ctx.read(_queries.overview)
    data.update(
        version=version(),
        db=str(ctx.store.path),
        pending_spans=ctx.store.writer.pending,
        spans_written=ctx.store.writer.spans_written,
        spans_rejected_overload=ctx.store.writer.spans_rejected_overload,
        tenant=request_tenant(request),
    )
    return JSONResponse(data)


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def api_routes() -> list[BaseRoute]:
    return [
        Route("/v1/traces", otlp_traces, methods=["POST"]),
        Route("/api/v1/spans", api_spans),
        Route("/api/v1/requests", api_requests),
        Route("/api/v1/spans/{trace_id}/{span_id}", api_span),
        Route("/api/v1/traces/{trace_id}", api_trace),
        Route("/api/v1/stats", api_stats),
        Route("/api/v1/facets", api_facets),
        Route("/api/v1/export", api_export),
        Route("/api/v1/datasets", api_datasets, methods=["GET", "POST"]),
        Route("/api/v1/datasets/{name}", api_dataset, methods=["GET", "DELETE"]),
        Route("/api/v1/datasets/{name}/items", api_dataset_items, methods=["GET", "POST"]),
        Route("/api/v1/datasets/{name}/export", api_dataset_export),
        Route("/openapi.json", openapi),
        Route("/-/health", health),
        Route("/-/status", status),
    ]


def web_routes(ctx: AppContext) -> Sequence[BaseRoute]:
    """The web UI's routes, from ``spyglass.store.web.routes(ctx)`` when that package provides it."""
    try:
        web = importlib.import_module("spyglass.store.web")
    except ImportError:
        return []
    factory = getattr(web, "routes", None)
    if factory is None:
        return []
    routes: Sequence[BaseRoute] = factory(ctx)
    return routes


def create_app(store: Store, settings: Settings, *, close_store: bool = False) -> Starlette:
    """The ASGI app for ``store``. With ``close_store`` the app closes the store at shutdown."""
    auth = Authenticator(settings.auth_token, settings.tenant_tokens)
    ctx = AppContext(store=store, settings=settings, auth=auth)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if close_store:
            await run_in_threadpool(store.close)

    app = Starlette(
        routes=[*api_routes(), *web_routes(ctx)],
        middleware=[Middleware(AuthMiddleware, auth=auth)],
        exception_handlers={
            StoreError: _store_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.spyglass = ctx
    return app
