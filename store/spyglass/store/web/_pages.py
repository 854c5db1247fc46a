"""The page views. Each builds one data dict from the query layer and renders it as HTML or as JSON.

Routes (every page also answers with ``.json`` appended; HTML pages link to it with ``Link: rel=alternate``):

=============================================  ====================================================
``/traces``                                    LLM requests, newest first, with filters in the URL
``/-/summary.json``                            the list's summary cards and charts
``/-/facets.json``                             values the filter fields suggest
``/traces/{trace_id}``                         waterfall and one panel per span
``/traces/{trace_id}/spans/{span_id}.json``    one span, whole (the JSON toggle loads it)
``/traces/{trace_id}/spans/{span_id}/part.json``  one text in full (``?path=``, "show all")
``/stats``                                     totals by model, provider, service; time series
``/datasets``, ``/datasets/{name}``            named datasets and their items
``POST /datasets/-/add``                       add a span to a dataset (creating it if needed)
=============================================  ====================================================

The list page reads one indexed page of spans and nothing else, so it stays fast on a large store; its
summary and charts aggregate every matching span and are fetched by the page after it renders.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from spyglass.store import _queries as q
from spyglass.store._app import AppContext, request_tenant
from spyglass.store._auth import COOKIE
from spyglass.store._errors import BadRequest, Forbidden, NotFound, StoreError, error_body
from spyglass.store._records import CONTENT_REF_KEYS
from spyglass.store.web import _charts, _conversation, _format
from spyglass.store.web._render import base_path, error_page, json_response, page, url

PAGE_SIZE = 50
PREVIEW_CHARS = 160
MAX_PANELS = 300
"""Spans of one trace rendered as panels; the waterfall still lists every span."""

# Filters the pages offer, in the order their chips are shown.
FILTER_LABELS: tuple[tuple[str, str], ...] = (
    ("q", "text"),
    ("model", "model"),
    ("provider", "provider"),
    ("status", "status"),
    ("attr." + gen_ai.ERROR_TYPE, "error code"),
    ("service", "service"),
    ("tenant", "tenant"),
    ("user", "user"),
    ("session", "session"),
    ("trace_id", "trace"),
    ("llm", "show"),
    ("since", "from"),
    ("until", "to"),
)
_STATUS_NAMES = {"ok": "success", "failed": "error"}


def _wants_json(request: Request, name: str) -> tuple[bool, str]:
    value = str(request.path_params.get(name, ""))
    return (True, value.removesuffix(".json")) if value.endswith(".json") else (False, value)


def _params(request: Request) -> dict[str, list[str]]:
    """Query parameters without empty values (an empty filter field means "any")."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if value.strip():
            out.setdefault(key, []).append(value)
    for i, status in enumerate(out.get("status", [])):
        out["status"][i] = _STATUS_NAMES.get(status, status)
    return out


def _last(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def _filter_params(params: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in params.items() if k not in ("cursor", "format", "group_by", "bucket")}


def _local_input(value: str | None) -> str:
    """A ``since``/``until`` value as a ``datetime-local`` field value (UTC, seconds)."""
    if not value:
        return ""
    try:
        ns = q.parse_time(value)
    except BadRequest:
        return ""
    moment = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _preview(item: dict[str, Any]) -> str:
    """The start of the response (else of the prompt) on one line, without the store's role prefix."""
    text = item.get("output_text") or item.get("input_text") or ""
    line = " ".join(text[: PREVIEW_CHARS * 2].split())
    return line.removeprefix("assistant: ")[:PREVIEW_CHARS]


def _content_refs(item: dict[str, Any]) -> dict[str, str]:
    """The content references an API item or span detail carries (by field name), only those set."""
    return {key: item[key] for key in CONTENT_REF_KEYS.values() if item.get(key)}


def _status(value: str | None) -> str:
    return "ok" if value == "success" else "error" if value in ("error", "timeout") else "unset"


class Pages:
    """The web UI over the store of one app (:class:`~spyglass.store.AppContext`).

    Every read is limited to the request's tenant when its token is scoped to one
    (:func:`~spyglass.store._app.request_tenant`).
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.tenant_of = request_tenant

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/-/login", self.login, methods=["GET", "POST"]),
            Route("/-/logout", self.logout, methods=["POST"]),
            Route("/-/summary.json", self.summary),
            Route("/-/facets.json", self.facets),
            Route("/traces", self.traces),
            Route("/traces.json", self.traces, name="traces_json"),
            Route("/traces/{trace_id}/spans/{span_id}/part.json", self.part),
            Route("/traces/{trace_id}/spans/{span_id}", self.span),
            Route("/traces/{trace_id}", self.trace),
            Route("/stats", self.stats),
            Route("/stats.json", self.stats, name="stats_json"),
            Route("/datasets", self.datasets),
            Route("/datasets.json", self.datasets, name="datasets_json"),
            Route("/datasets/-/add", self.add_to_dataset, methods=["POST"]),
            Route("/datasets/{name}", self.dataset),
        ]

    # --- plumbing --------------------------------------------------------------------------------

    async def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.ctx.read(fn, *args, **kwargs)

    async def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.ctx.write(fn, *args, **kwargs)

    def _filters(self, request: Request, params: dict[str, list[str]], *, llm_default: bool = True) -> q.Filters:
        given = _filter_params(params)
        if llm_default and "llm" not in given:
            given["llm"] = ["true"]
        return q.Filters.from_params(given).scoped(self.tenant_of(request))

    @staticmethod
    def _error(request: Request, exc: StoreError, as_json: bool) -> Response:
        return error_page(request, error_body(exc.status, exc.message, exc.errors), as_json=as_json)

    def _filter_context(self, request: Request, params: dict[str, list[str]], path: str) -> dict[str, Any]:
        """Form values, the removable chips and the option lists of the filter bar."""
        single = {k: v[-1] for k, v in params.items()}
        status = single.get("status")
        form = {
            "q": single.get("q"),
            "model": single.get("model"),
            "provider": single.get("provider"),
            "status": status,
            "llm": "false" if single.get("llm", "").lower() in ("false", "0", "no", "off", "all") else "",
            "error_type": single.get("attr." + gen_ai.ERROR_TYPE),
            "service": single.get("service"),
            "tenant": single.get("tenant"),
            "user": single.get("user"),
            "since_local": _local_input(single.get("since")),
            "until_local": _local_input(single.get("until")),
        }
        chips = []
        for key, label in FILTER_LABELS:
            if key in params:
                rest = {k: v for k, v in _filter_params(params).items() if k != key}
                value = single[key]
                if key == "llm":
                    value = "all spans" if form["llm"] == "false" else "LLM calls"
                if key in ("since", "until"):
                    value = (form[f"{key}_local"] or "").replace("T", " ") or value
                chips.append({"label": label, "value": value, "remove_url": url(request, path, rest)})
        return {"form": form, "active_filters": chips, "error_type_param": "attr." + gen_ai.ERROR_TYPE}

    # --- pages -----------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse(url(request, "/traces"), status_code=302)

    async def traces(self, request: Request) -> Response:
        as_json = request.url.path.endswith(".json")
        params = _params(request)
        try:
            filters = self._filters(request, params)
            sort = _last(params, "sort") or "-start"
            result = await self._read(
                q.search_spans, filters, sort=sort, cursor=_last(params, "cursor"), limit=PAGE_SIZE
            )
        except StoreError as exc:
            return self._error(request, exc, as_json)
        fparams = _filter_params(params)
        rows = []
        for item in result["items"]:
            rows.append(
                {
                    "trace_id": item["trace_id"],
                    "span_id": item["span_id"],
                    "url": url(request, f"/traces/{item['trace_id']}") + f"#span-{item['span_id']}",
                    "start_time": item["timestamp"],
                    "name": item["name"],
                    "operation": item["operation"],
                    "model": item["model"],
                    "provider": item["provider"],
                    "service": item["service"],
                    "tenant": item["tenant"],
                    "user": item["user_id"],
                    "input_tokens": item["input_tokens"],
                    "output_tokens": item["output_tokens"],
                    "cost": item["cost"],
                    "duration_ms": item["duration_ms"],
                    "status": _status(item["status"]),
                    "error": item["status_message"] if item["status"] != "success" else None,
                    "preview": _preview(item),
                    "content_refs": _content_refs(item),
                }
            )
        next_cursor = result["next_cursor"]
        data = {
            "filters": filters.to_params(),
            "items": rows,
            "next_cursor": next_cursor,
            "next_url": url(request, "/traces", {**fparams, "cursor": [next_cursor]}) if next_cursor else None,
            "summary_url": url(request, "/-/summary.json", fparams),
            "exports": {
                fmt: url(request, "/api/v1/export", {**fparams, "format": [fmt], "llm": fparams.get("llm", ["true"])})
                for fmt in ("csv", "jsonl", "finetune")
            },
        }
        context = self._filter_context(request, params, "/traces")
        context["first_url"] = url(request, "/traces", fparams) if "cursor" in params else None
        context["sorts"] = _sort_links(request, fparams, result["sort"])
        return page(
            request,
            "traces.html",
            data,
            as_json=as_json,
            alternate=url(request, "/traces.json", params),
            nav="traces",
            context=context,
        )

    async def summary(self, request: Request) -> Response:
        """Cards, charts and filter options for the list page (aggregates every matching span)."""
        params = _params(request)
        try:
            filters = self._filters(request, params)
            totals = await self._read(q.stats, filters, bucket="auto")
        except StoreError as exc:
            return self._error(request, exc, True)
        cards = _cards(totals)
        return json_response(
            {
                "summary": cards,
                "text": {
                    "count": _format.tokens(cards["count"]),
                    "latency": " / ".join(_format.duration_ms(cards[k]) for k in ("p50_ms", "p90_ms", "p99_ms")),
                    "failure_rate": _format.percent(cards["failure_rate"]),
                    "errors": f"{_format.tokens(cards['errors'])} failed",
                    "tokens": f"{_format.tokens(cards['input_tokens'])} / {_format.tokens(cards['output_tokens'])}",
                    "cost": _format.cost(cards["cost"]),
                },
                "charts": {"cost": _cost_chart(totals), "latency": _latency_chart(totals)},
            }
        )

    async def facets(self, request: Request) -> Response:
        """Values the filter fields suggest: the models, providers, services and tenants seen."""
        try:
            # Over every span, not just LM calls: the value columns are indexed, is_llm is not, and only
            # LM calls carry a model or provider anyway.
            options = await self._read(q.facets, q.Filters().scoped(self.tenant_of(request)))
        except StoreError as exc:
            return self._error(request, exc, True)
        return json_response({"options": {k: [o["value"] for o in v] for k, v in options.items()}})

    async def trace(self, request: Request) -> Response:
        as_json, trace_id = _wants_json(request, "trace_id")
        tenant = self.tenant_of(request)
        try:
            tree = await self._read(q.get_trace, trace_id, tenant=tenant)
            details = await self._read(
                _span_details, [s["span_id"] for s in tree["spans"][:MAX_PANELS]], trace_id, tenant
            )
            datasets = await self._read(q.list_datasets, tenant=tenant)
        except StoreError as exc:
            return self._error(request, exc, as_json)
        summary = tree["summary"]
        total_ms = max(summary["duration_ms"], 1e-6)
        start_ns = summary["start_ns"]
        waterfall = []
        spans = []
        for item in tree["spans"]:
            attrs = details.get(item["span_id"], {}).get("attributes", {})
            kind = "llm" if item["is_llm"] else str(attrs.get(ext.STEP_KIND) or "span")
            waterfall.append(
                {
                    "span_id": item["span_id"],
                    "name": item["name"],
                    "depth": item["depth"],
                    "kind": kind,
                    "status": _status(item["status"]),
                    "duration_ms": item["duration_ms"],
                    "offset_pct": min(max((item["start_ns"] - start_ns) / 1e6 / total_ms * 100, 0.0), 100.0),
                    "share_pct": min(item["duration_ms"] / total_ms * 100, 100.0),
                }
            )
            if item["span_id"] in details:
                spans.append(self._span_view(request, item, details[item["span_id"]]))
        roots = [s for s in tree["spans"] if s["depth"] == 0]
        data = {
            "trace": {
                "trace_id": trace_id,
                "root_name": roots[0]["name"] if roots else None,
                "start_time": summary["timestamp"],
                "duration_ms": summary["duration_ms"],
                "span_count": summary["span_count"],
                "llm_count": summary["llm_count"],
                "errors": summary["error_count"],
                "cost": summary["cost"],
                "input_tokens": summary["input_tokens"],
                "output_tokens": summary["output_tokens"],
                "service": ", ".join(summary["services"]),
                "tenant": summary["tenant"],
            },
            "waterfall": waterfall,
            "spans": spans,
            "omitted_spans": max(len(tree["spans"]) - MAX_PANELS, 0),
        }
        return page(
            request,
            "trace.html",
            data,
            as_json=as_json,
            alternate=url(request, f"/traces/{trace_id}.json"),
            nav="traces",
            context={"dataset_names": [d["name"] for d in datasets], "back_url": url(request, "/traces")},
        )

    def _span_view(self, request: Request, item: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
        attrs = detail.get("attributes", {})
        view: dict[str, Any] = {
            "span_id": item["span_id"],
            "name": item["name"],
            "status": _status(item["status"]),
            "duration_ms": item["duration_ms"],
            "json_url": url(request, f"/traces/{item['trace_id']}/spans/{item['span_id']}.json"),
            "attribute_count": len(attrs),
            # Content a completion hook stored elsewhere: shown as text, never fetched (untrusted URLs).
            "content_refs": _content_refs(detail),
            "error": _error_of(item, detail) if item["status"] != "success" else None,
            "conversation": None,
            "step": None,
            "chunk_events": [],
            "per_chunk_ms": None,
            # Who the call was for, each a link to the list filtered to it.
            "context": [
                {"label": label, "value": item[column], "url": url(request, "/traces", {param: [str(item[column])]})}
                for label, param, column in (
                    ("tenant", "tenant", "tenant"),
                    ("user", "user", "user_id"),
                    ("session", "session", "session_id"),
                )
                if item[column]
            ],
        }
        if item["is_llm"]:
            conv = _conversation.conversation(
                attrs,
                detail.get("input_messages", []),
                detail.get("output_messages", []),
                stored_cost=item["cost"],
                stored_cost_source=item["cost_source"],
                stored_tokens={key: item[f"{key}_tokens"] for key in _conversation.TOKEN_KEYS},
            )
            view["conversation"] = conv
            # Senders that record every chunk as a span event (OpenLLMetry's llm.content.completion.chunk,
            # gen_ai.content.chunk) give the stream's raw timing; others keep only the count and TTFT.
            view["chunk_events"] = chunk_events = [
                {
                    "name": e.get("name", ""),
                    "offset_ms": (int(e.get("time_ns") or item["start_ns"]) - item["start_ns"]) / 1e6,
                    "text": json.dumps(e.get("attributes") or {}, ensure_ascii=False)[:500],
                }
                for e in detail.get("events", [])
                if "chunk" in str(e.get("name", "")).lower()
            ]
            stream = conv["stream"]
            if chunk_events:
                stream["streamed"] = True
                if stream["chunk_count"] is None:
                    stream["chunk_count"] = len(chunk_events)
                if stream["ttft_ms"] is None:
                    stream["ttft_ms"] = min(e["offset_ms"] for e in chunk_events)
            chunks, ttft = stream["chunk_count"], stream["ttft_ms"]
            if isinstance(chunks, int) and chunks > 1 and ttft is not None:
                view["per_chunk_ms"] = max(item["duration_ms"] - ttft, 0.0) / (chunks - 1)
        else:
            view["step"] = _conversation.step(attrs)
        return view

    async def span(self, request: Request) -> Response:
        as_json, span_id = _wants_json(request, "span_id")
        if not as_json:  # a span has no page of its own: its panel lives on the trace page
            trace_id = request.path_params["trace_id"]
            return RedirectResponse(url(request, f"/traces/{trace_id}") + f"#span-{span_id}", status_code=302)
        try:
            item = await self._read(
                q.get_span, request.path_params["trace_id"], span_id, tenant=self.tenant_of(request)
            )
        except StoreError as exc:
            return self._error(request, exc, True)
        return json_response({"span": item})

    async def part(self, request: Request) -> Response:
        """The full text behind a "show all" button: the same parsing as the page, without the cut."""
        path = request.query_params.get("path", "")
        try:
            item = await self._read(
                q.get_span,
                request.path_params["trace_id"],
                request.path_params["span_id"],
                tenant=self.tenant_of(request),
            )
            text = _conversation.full_text(item["attributes"], item["input_messages"], item["output_messages"], path)
        except StoreError as exc:
            return self._error(request, exc, True)
        return json_response({"path": path, "text": text})

    async def stats(self, request: Request) -> Response:
        """Aggregates over a time range: the last 24 hours unless the URL says otherwise (``since=0``: all)."""
        as_json = request.url.path.endswith(".json")
        params = _params(request)
        ranged = {"since": [STATS_DEFAULT_SINCE]} if "since" not in params and "until" not in params else {}
        try:
            filters = self._filters(request, {**params, **ranged})
            totals = await self._read(q.stats, filters, bucket=(params.get("bucket") or ["auto"])[-1])
            grouped = {
                key: await self._read(q.stats, filters, group_by=key) for key in ("model", "provider", "service")
            }
        except StoreError as exc:
            return self._error(request, exc, as_json)
        fparams = _filter_params(params)
        groups = []
        for key, label in (("model", "model"), ("provider", "provider"), ("service", "service")):
            total_cost = sum(g["cost"] or 0 for g in grouped[key]["groups"]) or 1.0
            rows = []
            for g in grouped[key]["groups"]:
                row = _cards(g)
                row["name"] = g["key"]
                row["cost_share"] = (g["cost"] or 0) / total_cost * 100
                row["url"] = (
                    url(request, "/traces", {**fparams, key: [str(g["key"])]}) if g["key"] is not None else None
                )
                rows.append(row)
            groups.append({"key": key, "label": label, "rows": rows})
        data = {
            "filters": filters.to_params(),
            "summary": _cards(totals),
            "buckets": [{"start": b["start"], **_cards(b)} for b in totals["buckets"]],
            "bucket_seconds": (totals.get("bucket_ns") or 0) / 1e9,
            "groups": groups,
        }
        context = self._filter_context(request, params, "/stats")
        current = _last(params, "since") or STATS_DEFAULT_SINCE if "until" not in params else None
        context["ranges"] = [
            {"label": label, "url": url(request, "/stats", {**fparams, "since": [value]}), "current": value == current}
            for value, label in STATS_RANGES
        ]
        context["charts"] = {
            "error_rate": _charts.bar_chart(
                _series(totals, "failure_rate"),
                label="Error rate",
                fmt=_format.percent,
            ),
            "cost": _cost_chart(totals),
            "requests": _charts.bar_chart(_series(totals, "count"), label="Requests", fmt=_format.tokens),
            "latency": _latency_chart(totals),
        }
        return page(
            request,
            "stats.html",
            data,
            as_json=as_json,
            alternate=url(request, "/stats.json", params),
            nav="stats",
            context=context,
        )

    async def datasets(self, request: Request) -> Response:
        as_json = request.url.path.endswith(".json")
        rows = await self._read(q.list_datasets, tenant=self.tenant_of(request))
        data = {"datasets": [self._dataset_view(request, d) for d in rows]}
        return page(
            request, "datasets.html", data, as_json=as_json, alternate=url(request, "/datasets.json"), nav="datasets"
        )

    def _dataset_view(self, request: Request, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": d["name"],
            "description": d["description"],
            "tenant": d["tenant"],
            "count": d["size"],
            "created": d["created"],
            "url": url(request, f"/datasets/{d['name']}"),
            "exports": {
                fmt: url(request, f"/api/v1/datasets/{d['name']}/export", {"format": [fmt]})
                for fmt in ("jsonl", "finetune")
            },
        }

    async def dataset(self, request: Request) -> Response:
        as_json, name = _wants_json(request, "name")
        tenant = self.tenant_of(request)
        try:
            ds = await self._read(q.get_dataset, name, tenant=tenant or "")
            items = await self._read(
                q.search_spans,
                q.Filters(dataset=ds["id"]).scoped(tenant),
                cursor=_last(_params(request), "cursor"),
                limit=q.MAX_LIMIT,
            )
        except StoreError as exc:
            return self._error(request, exc, as_json)
        data = {
            "dataset": self._dataset_view(request, ds),
            "items": [
                {
                    "trace_id": it["trace_id"],
                    "span_id": it["span_id"],
                    "url": url(request, f"/traces/{it['trace_id']}") + f"#span-{it['span_id']}",
                    "added": it["timestamp"],
                    "model": it["model"],
                    "status": _status(it["status"]),
                    "preview": _preview(it),
                }
                for it in items["items"]
            ],
            "next_cursor": items["next_cursor"],
        }
        return page(
            request,
            "dataset.html",
            data,
            as_json=as_json,
            alternate=url(request, f"/datasets/{name}.json"),
            nav="datasets",
        )

    async def add_to_dataset(self, request: Request) -> Response:
        """Add one span to a dataset, creating the dataset on first use.

        The page's script posts JSON and gets JSON. Without script the form posts
        ``application/x-www-form-urlencoded`` and is sent back to the span (303) or shown the error page.
        """
        is_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        if not _same_origin(request):
            return self._error(request, Forbidden("cross-site request refused"), not is_form)
        try:
            raw = await request.body()
            if is_form:
                form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                body: Any = {"dataset": form.get("dataset_name"), **form}
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise BadRequest("the body must be a JSON object") from None
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            name = str(body.get("dataset") or "").strip()
            trace_id, span_id = str(body.get("trace_id") or ""), str(body.get("span_id") or "")
            if not name:
                raise BadRequest("dataset: give a name")
            tenant = self.tenant_of(request) or ""
            await self._read(q.get_span, trace_id, span_id, tenant=self.tenant_of(request))
            ds = await self._write(_add_span, name, tenant, trace_id, span_id)
        except StoreError as exc:
            return self._error(request, exc, not is_form)
        if is_form:
            return RedirectResponse(url(request, f"/traces/{trace_id}") + f"#span-{span_id}", status_code=303)
        return json_response({"ok": True, "dataset": ds["name"], "count": ds["size"]})

    async def login(self, request: Request) -> Response:
        """A token form for browsers (which cannot send a bearer header on a link); sets the UI cookie.

        The cookie is HttpOnly and SameSite=Strict, so page scripts cannot read it and other sites cannot
        make the browser send it. ``next`` only ever names a path on this site.
        """
        target = _local_path(request.query_params.get("next"))
        if request.method == "GET":
            return self._login_page(request, target, error=None)
        if not _same_origin(request):
            return self._error(request, Forbidden("cross-site request refused"), False)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        token = form.get("token", "").strip()
        target = _local_path(form.get("next")) or target
        try:
            self.ctx.auth.check(token)
        except StoreError:
            return self._login_page(request, target, error="That token is not valid.", status=401)
        response = RedirectResponse(url(request, target or "/traces"), status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=base_path(request) or "/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        if not _same_origin(request):
            return self._error(request, Forbidden("cross-site request refused"), False)
        response = RedirectResponse(url(request, "/-/login"), status_code=303)
        response.delete_cookie(COOKIE, path=base_path(request) or "/")
        return response

    def _login_page(self, request: Request, target: str, *, error: str | None, status: int = 200) -> Response:
        data = {"next": target, "error": error, "auth_enabled": self.ctx.auth.enabled}
        return page(request, "login.html", data, as_json=False, alternate=None, status=status)


def _local_path(value: str | None) -> str:
    """``value`` when it is a path on this site (``/x``), else ``""``: no open redirect to another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return ""
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else ""


STATS_DEFAULT_SINCE = "24h"
"""The Stats page aggregates every span in its range: bound it by default on a large store."""
STATS_RANGES = (("1h", "Last hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"), ("0", "All time"))

SORTABLE = ("start", "input_tokens", "output_tokens", "cost", "duration")
"""List columns a header click sorts by (keys of :data:`spyglass.store._queries.SORTS`)."""


def _sort_links(request: Request, fparams: dict[str, list[str]], current: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the URL that sorts by it (descending first, again to flip) and its state."""
    links = {}
    for key in SORTABLE:
        state = "descending" if current == f"-{key}" else "ascending" if current.lstrip("+") == key else "none"
        target = key if state == "descending" else f"-{key}"
        links[key] = {"url": url(request, "/traces", {**fparams, "sort": [target]}), "state": state}
    return links


def _same_origin(request: Request) -> bool:
    """Refuse writes another site's page makes the browser send (CSRF): Fetch metadata, else Origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _add_span(conn: Any, name: str, tenant: str, trace_id: str, span_id: str) -> dict[str, Any]:
    """Runs on the writer thread: create the dataset if needed, then add the span, in one transaction."""
    try:
        q.get_dataset(conn, name, tenant=tenant)
    except NotFound:
        q.create_dataset(conn, name, tenant=tenant)
    return q.add_to_dataset(conn, name, tenant=tenant, spans=[(trace_id, span_id)])


def _span_details(conn: Any, span_ids: list[str], trace_id: str, tenant: str | None) -> dict[str, dict[str, Any]]:
    """Every span's full record, read on one connection in one go."""
    return {sid: q.get_span(conn, trace_id, sid, tenant=tenant) for sid in span_ids}


def _error_of(item: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    attrs = detail.get("attributes", {})
    message = item.get("status_message") or ""
    body_parts = []
    for event in detail.get("events", []):
        if event.get("name") == "exception" or "exception" in str(event.get("name")):
            ev = event.get("attributes") or {}
            text = str(ev.get("exception.message") or "")
            if text and text.strip() != message.strip():
                body_parts.append(text.removeprefix(message).strip() if message and text.startswith(message) else text)
            if ev.get("exception.stacktrace"):
                body_parts.append(str(ev["exception.stacktrace"]))
    error_type = attrs.get(gen_ai.ERROR_TYPE)
    return {
        "type": str(error_type) if error_type is not None else ("Timeout" if item["status"] == "timeout" else "Error"),
        "message": message if message != error_type else "",
        "body": _conversation.pretty(_conversation.parse_json("\n\n".join(body_parts))) if body_parts else "",
    }


def _cards(s: dict[str, Any]) -> dict[str, Any]:
    latency = s.get("latency_ms") or {}
    tokens = s.get("tokens") or {}
    return {
        "count": s.get("count", 0),
        "errors": s.get("errors", 0),
        "failure_rate": s.get("failure_rate"),
        "p50_ms": latency.get("p50"),
        "p90_ms": latency.get("p90"),
        "p99_ms": latency.get("p99"),
        "input_tokens": tokens.get("input"),
        "output_tokens": tokens.get("output"),
        "cost": s.get("cost"),
        "error_rate": s.get("failure_rate"),
    }


def _bucket_labels(totals: dict[str, Any]) -> list[str]:
    return [b["start"][:16].replace("T", " ") for b in totals["buckets"]]


def _series(totals: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    """``(bucket label, value)`` per time bucket."""
    return [(label, b[key]) for label, b in zip(_bucket_labels(totals), totals["buckets"], strict=True)]


def _cost_chart(totals: dict[str, Any]) -> dict[str, Any]:
    return _charts.bar_chart(_series(totals, "cost"), label="Cost", fmt=_format.cost)


def _latency_chart(totals: dict[str, Any]) -> dict[str, Any]:
    buckets = totals["buckets"]
    return _charts.line_chart(
        _bucket_labels(totals),
        {
            "p50": [b["latency_ms"]["p50"] for b in buckets],
            "p90": [b["latency_ms"]["p90"] for b in buckets],
            "p99": [b["latency_ms"]["p99"] for b in buckets],
        },
        label="Latency",
        fmt=_format.duration_ms,
    )
