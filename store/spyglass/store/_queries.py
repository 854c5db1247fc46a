"""The query layer: every read the API, the web UI and the CLI make, as typed functions over a connection.

Each function takes a read connection (``sqlite3.Connection``; see :meth:`spyglass.store.Store.read`) and
returns plain JSON-able data, so one call builds the data dict of a page and of its JSON twin.

- :class:`Filters` (``Filters.from_params(query)``) is the one filter every view shares.
- :func:`search_spans` -> ``{"items": [item], "next_cursor": str | None, "limit", "sort"}``
- :func:`get_span` -> item plus ``attributes``, ``events``, ``links``, ``resource``, ``input_messages``,
  ``output_messages`` (or raises :class:`NotFound`)
- :func:`get_trace` -> ``{"trace_id", "spans": [item + "depth"], "tree": [item + "children"], "summary"}``
- :func:`stats` -> ``{"count", "errors", "failure_rate", "latency_ms": {p50, p90, p95, p99, avg, max},
  "tokens": {...}, "cost", "groups": [{"key", ...}], "buckets": [{"start", "start_ns", ...}]}``
- :func:`iter_items` streams items in id order for exports.
- :func:`list_datasets`, :func:`get_dataset`; writes (:func:`create_dataset`, :func:`add_to_dataset`,
  :func:`delete_dataset`) run on the writer thread (``Store.write``).
- :func:`facets` lists the distinct models, providers, services, tenants, statuses, operations.

An item (one span) has the columns of :mod:`spyglass.store._schema` (minus ``attributes``, ``events``,
``links``, ``resource_id``) plus ``timestamp`` (ISO 8601 UTC of ``start_ns``) and ``metadata`` as an object.

Content a completion hook stored elsewhere: ``input_messages_ref``, ``output_messages_ref``,
``system_instructions_ref`` and ``tool_definitions_ref`` hold the span's reference URL of each kind, or
``None``. A span's detail always has them; list and trace items have them read (:func:`_add_refs`) for LM
calls missing a prompt or a response, the only ones whose list row would otherwise look empty. They are
untrusted text from the span: nothing here opens them.

Percentiles are nearest-rank: the value at position ``ceil(p / 100 * n)`` of the sorted latencies, exact or
from a fine log-scale histogram (see :data:`EXACT_LIMIT`; ``latency_ms.exact`` says which). Statistics read
the rollups of :mod:`spyglass.store._rollups` when the filters allow (:func:`_rollup_stats`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from spyglass.store import _rollups
from spyglass.store._errors import BadRequest, NotFound
from spyglass.store._records import CONTENT_REF_KEYS, content_refs, normalise
from spyglass.store._schema import ATTRIBUTES_SQL, DETAIL_SQL, RECORD_COLUMNS, WORD

DEFAULT_LIMIT = 50
FTS_DRIVE_LIMIT = 2000
"""Up to this many full-text matches, a search reads the matching rows directly; above, it scans an index
in sort order (the matches are then a membership test)."""
MAX_LIMIT = 1000

ITEM_COLUMNS = ["id", *RECORD_COLUMNS]
_SELECT_ITEM = ", ".join(ITEM_COLUMNS)

SORTS: dict[str, str] = {
    "start": "start_ns",
    "duration": "duration_ms",
    "cost": "coalesce(cost, -1.0)",
    "input_tokens": "coalesce(input_tokens, -1)",
    "output_tokens": "coalesce(output_tokens, -1)",
}
"""Sort keys (``?sort=-start`` is newest first, the default)."""

GROUPS: dict[str, str] = {
    "model": "model",
    "provider": "provider",
    "service": "service",
    "tenant": "tenant",
    "status": "status",
    "operation": "operation",
    "alias": "alias",
    "user": "user_id",
    "session": "session_id",
}
"""What :func:`stats` can group by."""

_LIST_FILTERS: dict[str, str] = {
    "model": "model",
    "provider": "provider",
    "status": "status",
    "service": "service",
    "tenant": "tenant",
    "operation": "operation",
    "user": "user_id",
    "session": "session_id",
    "name": "name",
    "alias": "alias",
    "trace_id": "trace_id",
}
_STATUSES = ("success", "error", "timeout")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, name: str = "time") -> int:
    """Unix nanoseconds from ISO 8601, a relative age (``15m``, ``2h``, ``7d``) or a Unix number.

    A number is read as seconds, milliseconds or nanoseconds by its size.
    """
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        return time.time_ns() - int(float(m.group(1)) * _UNITS[m.group(2)] * 1e9)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isnan(number) or math.isinf(number):
            raise BadRequest(f"{name}: {value!r} is not a time")
        if abs(number) >= 1e17:
            return int(number)
        if abs(number) >= 1e11:
            return int(number * 1e6)
        return int(number * 1e9)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name}: {value!r} is not a time (use ISO 8601, a Unix timestamp, or an age such as 15m, 2h, 7d)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e9)


def _number(params: Mapping[str, Sequence[str]], key: str) -> float | None:
    values = params.get(key)
    if not values:
        return None
    try:
        number = float(values[-1])
    except ValueError:
        raise BadRequest(f"{key}: {values[-1]!r} is not a number") from None
    if math.isnan(number):
        raise BadRequest(f"{key}: NaN is not allowed")
    return number


def _bool(params: Mapping[str, Sequence[str]], key: str) -> bool | None:
    values = params.get(key)
    if not values:
        return None
    text = values[-1].strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "all"):
        return False
    raise BadRequest(f"{key}: {values[-1]!r} is not true or false")


@dataclass(frozen=True)
class Filters:
    """Which spans a view shows. Every field narrows; list fields match any of their values."""

    model: tuple[str, ...] = ()
    provider: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    tenant: tuple[str, ...] = ()
    operation: tuple[str, ...] = ()
    user: tuple[str, ...] = ()
    session: tuple[str, ...] = ()
    name: tuple[str, ...] = ()
    alias: tuple[str, ...] = ()
    trace_id: tuple[str, ...] = ()
    since_ns: int | None = None
    until_ns: int | None = None
    q: str | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    min_cost: float | None = None
    llm: bool | None = None
    """True: only LM calls (requests); False/None: every span."""
    attrs: tuple[tuple[str, str], ...] = ()
    """``attr.<key>=<value>``: attribute equality (the value is compared as text and as JSON)."""
    meta: tuple[tuple[str, str], ...] = ()
    """``meta.<key>=<value>``: metadata equality."""
    dataset: int | None = None
    """Only the spans of this dataset (its id)."""

    PARAMS = (
        "model provider status service tenant operation user session name alias trace_id since until q "
        "min_duration_ms max_duration_ms min_cost llm attr.<key> meta.<key>"
    )

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> Filters:
        """Read query parameters (``{name: [values]}``); raises :class:`BadRequest` naming the bad ones."""
        kwargs: dict[str, Any] = {}
        problems: list[str] = []
        for key, _column in _LIST_FILTERS.items():
            values = [v for raw in params.get(key, ()) for v in ([raw] if key != "status" else raw.split(","))]
            values = [v.strip() for v in values if v.strip()]
            if values:
                kwargs[key] = tuple(values)
        for status in kwargs.get("status", ()):
            if status not in _STATUSES:
                problems.append(f"status: {status!r} is not one of {', '.join(_STATUSES)}")
        for tid in kwargs.get("trace_id", ()):
            if not re.fullmatch(r"[0-9a-f]{32}", tid):
                problems.append(f"trace_id: {tid[:40]!r} is not 32 lowercase hex digits")
        try:
            if params.get("since"):
                kwargs["since_ns"] = parse_time(params["since"][-1], "since")
            if params.get("until"):
                kwargs["until_ns"] = parse_time(params["until"][-1], "until")
        except BadRequest as exc:
            problems.append(exc.message)
        q = " ".join(v for v in params.get("q", ()) if v.strip())
        if q.strip():
            kwargs["q"] = q.strip()
        for key in ("min_duration_ms", "max_duration_ms", "min_cost"):
            try:
                kwargs[key] = _number(params, key)
            except BadRequest as exc:
                problems.append(exc.message)
        try:
            kwargs["llm"] = _bool(params, "llm")
        except BadRequest as exc:
            problems.append(exc.message)
        attrs: list[tuple[str, str]] = []
        meta: list[tuple[str, str]] = []
        for key, param_values in params.items():
            for prefix, target in (("attr.", attrs), ("meta.", meta)):
                if key.startswith(prefix) and len(key) > len(prefix):
                    target.extend((key[len(prefix) :], v) for v in param_values)
        kwargs["attrs"] = tuple(attrs)
        kwargs["meta"] = tuple(meta)
        if problems:
            raise BadRequest("invalid query parameters: " + "; ".join(problems), problems)
        return cls(**kwargs)

    def scoped(self, tenant: str | None) -> Filters:
        """These filters limited to one tenant (a tenant-scoped token); ``None`` leaves them as they are."""
        return self if tenant is None else replace(self, tenant=(tenant,))

    def where(self, *, fts_drives: bool = True) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters (everything parameterized).

        ``fts_drives=False`` keeps SQLite from looking up every full-text match by row id (``+id``), so an
        ordered index scan can stop after a page of results: right when the search matches many spans.
        """
        clauses: list[str] = []
        args: list[Any] = []
        for key, column in _LIST_FILTERS.items():
            values: tuple[str, ...] = getattr(self, key)
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        if self.since_ns is not None:
            clauses.append("start_ns >= ?")
            args.append(self.since_ns)
        if self.until_ns is not None:
            clauses.append("start_ns < ?")
            args.append(self.until_ns)
        if self.min_duration_ms is not None:
            clauses.append("duration_ms >= ?")
            args.append(self.min_duration_ms)
        if self.max_duration_ms is not None:
            clauses.append("duration_ms <= ?")
            args.append(self.max_duration_ms)
        if self.min_cost is not None:
            clauses.append("cost >= ?")
            args.append(self.min_cost)
        if self.llm:
            clauses.append("is_llm = 1")
        for column, pairs in ((ATTRIBUTES_SQL, self.attrs), ("metadata", self.meta)):
            for key, value in pairs:
                path = '$."' + key.replace('"', '""') + '"'
                typed = _typed(value)
                clauses.append(f"(json_extract({column}, ?) = ? OR json_extract({column}, ?) = ?)")
                args.extend([path, value, path, typed])
        if self.dataset is not None:
            clauses.append("id IN (SELECT span_id FROM dataset_items WHERE dataset_id = ?)")
            args.append(self.dataset)
        if self.q:
            column = "id" if fts_drives else "+id"
            match, phrases = fts_search(self.q)
            clauses.append(f"{column} IN (SELECT rowid FROM spans_fts WHERE spans_fts MATCH ?)")  # noqa: S608
            args.append(match)
            for phrase in phrases:
                clauses.append(f"phrase_match({_SEARCH_TEXT}, ?)")
                args.append(phrase)
        return (" AND ".join(clauses) or "1"), args

    def to_params(self) -> dict[str, list[str]]:
        """The query parameters that give these filters back (for links and the JSON twin)."""
        out: dict[str, list[str]] = {}
        for key in _LIST_FILTERS:
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        for key, ns in (("since", self.since_ns), ("until", self.until_ns)):
            if ns is not None:
                out[key] = [str(ns)]
        for key in ("q", "min_duration_ms", "max_duration_ms", "min_cost"):
            if getattr(self, key) is not None:
                out[key] = [str(getattr(self, key))]
        if self.llm is not None:
            out["llm"] = ["true" if self.llm else "false"]
        for key, value in self.attrs:
            out.setdefault(f"attr.{key}", []).append(value)
        for key, value in self.meta:
            out.setdefault(f"meta.{key}", []).append(value)
        return out


def _typed(value: str) -> Any:
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, (int, float, str)) else value


_FTS_TOKEN = re.compile(r'"[^"]*"|\S+')
_SEARCH_TEXT = (
    "coalesce(input_text, '') || char(10) || coalesce(output_text, '') || char(10) || coalesce(tool_args, '')"
)


def fts_search(text: str) -> tuple[str, list[str]]:
    """A user's search text as a safe FTS5 query plus the phrases rows must also contain.

    Every word must appear; ``"a b"`` (or a word with punctuation, ``gpt-4o``) is a phrase; a trailing
    ``*`` is a prefix search. FTS5 syntax characters are never interpreted: the index (``detail=none``, see
    migration ``0005``) gets single quoted words, and phrases are checked on the matching rows with
    :func:`spyglass.store._schema.phrase_match`.
    """
    terms: list[str] = []
    phrases: list[str] = []
    for token in _FTS_TOKEN.findall(text):
        quoted = token.startswith('"') and token.endswith('"') and len(token) >= 2
        prefix = token.endswith("*") and not quoted
        raw = token[1:-1] if quoted else token.strip('"').rstrip("*")
        words = WORD.findall(raw)
        if not words:
            continue
        terms.extend(f'"{w}"' for w in words)
        if prefix:
            terms[-1] += "*"
        if len(words) > 1:
            phrases.append(" ".join(w.lower() for w in words))
    if not terms:
        raise BadRequest("q: the search text has no words")
    return " ".join(terms), phrases


def fts_query(text: str) -> str:
    """The FTS5 part of :func:`fts_search`."""
    return fts_search(text)[0]


# --- items ---------------------------------------------------------------------------------------


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _item(row: Sequence[Any]) -> dict[str, Any]:
    item = dict(zip(ITEM_COLUMNS, row, strict=False))
    item["is_llm"] = bool(item["is_llm"])
    item["metadata"] = json.loads(item["metadata"]) if item["metadata"] else {}
    item["timestamp"] = _iso(item["start_ns"])
    for key in CONTENT_REF_KEYS.values():
        item[key] = None
    return item


def _add_refs(conn: sqlite3.Connection, items: Sequence[dict[str, Any]]) -> None:
    """Fill the content references of the LM calls among ``items`` that lack a prompt or a response."""
    wanted = {it["id"]: it for it in items if it["is_llm"] and (it["input_text"] is None or it["output_text"] is None)}
    if not wanted:
        return
    marks = ", ".join("?" * len(wanted))
    sql = f"SELECT id, {ATTRIBUTES_SQL} FROM spans WHERE id IN ({marks})"  # noqa: S608
    for row_id, attributes_json in conn.execute(sql, list(wanted)):
        try:
            attributes = json.loads(attributes_json)
        except (TypeError, ValueError):
            continue
        if isinstance(attributes, dict):
            wanted[row_id].update(content_refs(attributes))


def _cursor_encode(sort: str, value: Any, row_id: int) -> str:
    raw = json.dumps([sort, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, value, row_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("cursor: not a cursor this API returned") from None
    if got_sort != sort or not isinstance(row_id, int) or not isinstance(value, (int, float)):
        raise BadRequest("cursor: it belongs to a different sort order; start again without a cursor")
    return value, row_id


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}")
    return limit


def search_spans(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    sort: str = "-start",
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """One page of spans matching ``filters`` in ``sort`` order (``-`` prefix = descending).

    ``next_cursor`` is ``None`` on the last page; pass it back as ``cursor`` for the next one.
    """
    n = _limit(limit)
    desc = sort.startswith("-")
    key = sort.lstrip("-+")
    if key not in SORTS:
        raise BadRequest(f"sort: {sort!r} is not one of {', '.join(SORTS)} (prefix - for descending)")
    expr = SORTS[key]
    fts_drives = True
    if filters.q:
        # Many matches: walk the sort order's index and stop at a page; few: fetch the matches by id.
        matches = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM spans_fts WHERE spans_fts MATCH ? LIMIT ?)",
            (fts_query(filters.q), FTS_DRIVE_LIMIT),
        ).fetchone()[0]
        fts_drives = matches < FTS_DRIVE_LIMIT
    where, args = filters.where(fts_drives=fts_drives)
    if cursor:
        value, row_id = _cursor_decode(cursor, sort)
        op = "<" if desc else ">"
        where += f" AND ({expr} {op} ? OR ({expr} = ? AND id {op} ?))"
        args += [value, value, row_id]
    order = "DESC" if desc else "ASC"
    sql = f"SELECT {_SELECT_ITEM}, {expr} FROM spans WHERE {where} ORDER BY {expr} {order}, id {order} LIMIT ?"  # noqa: S608
    rows = conn.execute(sql, [*args, n + 1]).fetchall()
    more = len(rows) > n
    rows = rows[:n]
    items = [_item(r[:-1]) for r in rows]
    _add_refs(conn, items)
    next_cursor = _cursor_encode(sort, rows[-1][-1], rows[-1][0]) if more and rows else None
    return {"items": items, "next_cursor": next_cursor, "limit": n, "sort": sort}


def iter_items(
    conn: sqlite3.Connection, filters: Filters, *, batch: int = 500, details: bool = False
) -> Iterator[dict[str, Any]]:
    """Every matching span in time order, fetched in batches (exports); ``details`` adds messages."""
    where, args = filters.where()
    last_start, last_id = -(2**63), -1
    extra = f", {DETAIL_SQL}" if details else ""
    while True:
        sql = (
            f"SELECT {_SELECT_ITEM}{extra} FROM spans WHERE {where} AND (start_ns > ? OR (start_ns = ? AND id > ?)) "  # noqa: S608
            "ORDER BY start_ns, id LIMIT ?"
        )
        rows = conn.execute(sql, [*args, last_start, last_start, last_id, batch]).fetchall()
        for row in rows:
            item = _item(row[: len(ITEM_COLUMNS)])
            if details:
                _add_details(conn, item, row[len(ITEM_COLUMNS) :])
            yield item
        if len(rows) < batch:
            return
        last_start, last_id = rows[-1][ITEM_COLUMNS.index("start_ns")], rows[-1][0]


def count(conn: sqlite3.Connection, filters: Filters) -> int:
    where, args = filters.where()
    return int(conn.execute(f"SELECT count(*) FROM spans WHERE {where}", args).fetchone()[0])  # noqa: S608


def _add_details(conn: sqlite3.Connection, item: dict[str, Any], extra: Sequence[Any]) -> None:
    attributes_json, events_json, links_json, resource_id = extra
    attributes = json.loads(attributes_json)
    events = json.loads(events_json) if events_json else []
    links = json.loads(links_json) if links_json else []
    row = conn.execute("SELECT attributes FROM resources WHERE id = ?", (resource_id,)).fetchone()
    resource = json.loads(row[0]) if row else {}
    # Messages are derived again from the span as stored: the normaliser is a pure function of it.
    rec = normalise(
        trace_id=item["trace_id"],
        span_id=item["span_id"],
        parent_span_id=item["parent_span_id"],
        name=item["name"],
        kind=item["kind"],
        start_ns=item["start_ns"],
        end_ns=item["end_ns"],
        attributes=attributes,
        events=events,
        links=links,
        resource=resource,
        scope_name=item["scope_name"],
        status_code=0,
        status_message=None,
    )
    item.update(
        attributes=attributes,
        events=events,
        links=links,
        resource=resource,
        input_messages=rec.input_messages,
        output_messages=rec.output_messages,
        **rec.content_refs,
    )


def get_span(conn: sqlite3.Connection, trace_id: str, span_id: str, *, tenant: str | None = None) -> dict[str, Any]:
    """One span with everything stored about it; :class:`NotFound` if absent (or another tenant's)."""
    args: list[Any] = [trace_id, span_id]
    extra = ""
    if tenant is not None:
        extra, args = " AND tenant = ?", [*args, tenant]
    row = conn.execute(
        f"SELECT {_SELECT_ITEM}, {DETAIL_SQL} FROM spans "  # noqa: S608
        f"WHERE trace_id = ? AND span_id = ?{extra}",
        args,
    ).fetchone()
    if row is None:
        raise NotFound(f"span {span_id} of trace {trace_id} not found")
    item = _item(row[: len(ITEM_COLUMNS)])
    _add_details(conn, item, row[len(ITEM_COLUMNS) :])
    return item


def get_trace(conn: sqlite3.Connection, trace_id: str, *, tenant: str | None = None) -> dict[str, Any]:
    """Every span of a trace, flat (in depth-first order, with ``depth``) and as a tree.

    Spans whose parent is missing are roots. :class:`NotFound` when the trace has no span (for this tenant).
    """
    if not re.fullmatch(r"[0-9a-f]{32}", trace_id):
        raise BadRequest("trace_id: expected 32 lowercase hex digits")
    args: list[Any] = [trace_id]
    extra = ""
    if tenant is not None:
        extra, args = " AND tenant = ?", [*args, tenant]
    rows = conn.execute(
        f"SELECT {_SELECT_ITEM} FROM spans WHERE trace_id = ?{extra} ORDER BY start_ns, id",  # noqa: S608
        args,
    ).fetchall()
    if not rows:
        raise NotFound(f"trace {trace_id} not found")
    items = [_item(r) for r in rows]
    _add_refs(conn, items)
    by_id = {it["span_id"]: it for it in items}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for it in items:
        parent = it["parent_span_id"] if it["parent_span_id"] in by_id else None
        children.setdefault(parent, []).append(it)
    flat: list[dict[str, Any]] = []

    def build(node: dict[str, Any], depth: int) -> dict[str, Any]:
        node["depth"] = depth
        flat.append(node)
        kids = [build(c, depth + 1) for c in children.get(node["span_id"], [])]
        return {**node, "children": kids}

    tree = [build(root, 0) for root in children.get(None, [])]
    start = min(it["start_ns"] for it in items)
    end = max(it["end_ns"] for it in items)
    summary = {
        "span_count": len(items),
        "llm_count": sum(1 for it in items if it["is_llm"]),
        "error_count": sum(1 for it in items if it["status"] != "success"),
        "start_ns": start,
        "timestamp": _iso(start),
        "duration_ms": (end - start) / 1e6,
        "cost": _sum(it["cost"] for it in items),
        "input_tokens": _sum(it["input_tokens"] for it in items),
        "output_tokens": _sum(it["output_tokens"] for it in items),
        "services": sorted({it["service"] for it in items if it["service"]}),
        "tenant": items[0]["tenant"],
    }
    return {"trace_id": trace_id, "spans": flat, "tree": tree, "summary": summary}


def _sum(values: Any) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


# --- statistics ----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return float(sorted_values[rank - 1])


_BUCKET = re.compile(r"^(\d+)\s*(s|m|h|d)$")


def parse_bucket(value: str | None, span_ns: int | None = None) -> int | None:
    """Bucket width in ns from ``30s``/``5m``/``1h``/``1d``, a number of seconds, or ``auto`` (about 60 buckets)."""
    if value is None or value == "":
        return None
    if value == "auto":
        if not span_ns:
            return 3600 * 10**9
        for seconds in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
            if span_ns / (seconds * 1e9) <= 60:
                return seconds * 10**9
        return 30 * 86400 * 10**9
    m = _BUCKET.match(value.strip())
    if m:
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    else:
        try:
            seconds = int(value)
        except ValueError:
            raise BadRequest(f"bucket: {value!r} is not a width such as 30s, 5m, 1h, 1d or auto") from None
    if seconds < 1:
        raise BadRequest("bucket: width must be at least 1s")
    return seconds * 10**9


EXACT_LIMIT = 50_000
"""Percentiles are exact (nearest rank) when the spans answer and at most this many match; otherwise they
come from a log-scale histogram (bins 1.2 % wide: the value reported is the bin's geometric centre, within
0.58 % of the exact one) and ``latency_ms.exact`` is false. When the rollups can answer (filters on tenant,
service, model, provider, status, operation and time only), the spans answer only if the time range holds
at most this many spans whatever the other filters: reading them is then bounded, and the rollups' histograms
answer the rest."""
_BINS_PER_DECADE = 200


def _latency(hist: dict[int, int] | None, durations: list[float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if durations is not None:
        durations.sort()
        for p in (50, 90, 95, 99):
            out[f"p{p}"] = percentile(durations, p)
        out["exact"] = True
        return out
    assert hist is not None
    n = sum(hist.values())
    # One walk up the sorted bins for all four ranks.
    wanted = [(max(math.ceil(p / 100 * n), 1), f"p{p}") for p in (50, 90, 95, 99)] if n else []
    out.update(dict.fromkeys(("p50", "p90", "p95", "p99")))
    seen = 0
    i = 0
    for b in sorted(hist) if wanted else ():
        seen += hist[b]
        while i < len(wanted) and seen >= wanted[i][0]:
            out[wanted[i][1]] = 10 ** (b / _BINS_PER_DECADE)
            i += 1
        if i == len(wanted):
            break
    out["exact"] = False
    return out


def _summarise(latency: dict[str, Any], agg: Sequence[Any]) -> dict[str, Any]:
    n, errors, avg, mx, tin, tout, tcr, tcw, treas, cost = agg
    return {
        "count": n,
        "errors": errors or 0,
        "failure_rate": ((errors or 0) / n) if n else 0.0,
        "latency_ms": {**latency, "avg": avg, "max": mx},
        "tokens": {
            "input": tin or 0,
            "output": tout or 0,
            "cache_read": tcr or 0,
            "cache_write": tcw or 0,
            "reasoning": treas or 0,
        },
        "cost": cost or 0.0,
    }


_AGG = (
    "count(*), sum(status != 'success'), sum(duration_ms), max(duration_ms), sum(input_tokens), "
    "sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(cost)"
)


def _merge(parts: Sequence[Sequence[Any]]) -> list[Any]:
    """Combine ``_AGG`` rows (count, errors, duration sum, max, token and cost sums) into one."""
    n = sum(p[0] for p in parts)

    def total(i: int) -> Any:
        present = [p[i] for p in parts if p[i] is not None]
        return sum(present) if present else None

    maxes = [p[3] for p in parts if p[3] is not None]
    duration_sum = total(2)
    avg = duration_sum / n if n and duration_sum is not None else None
    return [n, total(1) or 0, avg, max(maxes) if maxes else None, *(total(i) for i in range(4, 10))]


def stats(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    group_by: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Totals for the filtered spans, and optionally per group and per time bucket.

    When ``filters.llm`` is ``None`` the statistics cover LM calls only (requests), which is what the
    numbers mean to a reader; pass ``llm=false`` to count every span. ``failure_rate`` counts ``error``
    and ``timeout``. Groups are sorted by count, largest first. Percentiles: see :data:`EXACT_LIMIT`.
    ``bucket="auto"`` gives about 60 buckets; over 6 hours or more, whole-hour buckets when the filters let
    the rollups answer (:mod:`spyglass.store._rollups`, see :func:`_rollup_stats`).
    From the spans: two scans of the (covering) statistics index, sums per (group, bucket), then latencies.
    Every read is in one transaction: the total, groups and buckets agree while spans are being written.
    """
    if filters.llm is None:
        filters = replace(filters, llm=True)
    if group_by is not None and group_by not in GROUPS:
        raise BadRequest(f"group_by: {group_by!r} is not one of {', '.join(GROUPS)}")
    if conn.in_transaction:
        return _stats(conn, filters, group_by, bucket)
    conn.execute("BEGIN")
    try:
        return _stats(conn, filters, group_by, bucket)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _stats(conn: sqlite3.Connection, filters: Filters, group_by: str | None, bucket: str | None) -> dict[str, Any]:
    where, args = filters.where()
    width = parse_bucket(bucket, None) if bucket not in (None, "", "auto") else None
    if _rollups_apply(filters, group_by) and _spans_in_range(conn, filters) > EXACT_LIMIT:
        rollup_width = _auto_width(conn, filters) if bucket == "auto" else width
        whole_hours = rollup_width is None or rollup_width % _rollups.HOUR == 0
        # Buckets shorter than an hour: one pass over the spans of the range (histogram percentiles).
        return _rollup_stats(conn, filters, group_by, rollup_width, spans_only=not whole_hours)
    spans, where = _stats_source(filters, group_by, where)
    if bucket == "auto":
        first, last = conn.execute(f"SELECT min(start_ns), max(start_ns) FROM {spans} WHERE {where}", args).fetchone()  # noqa: S608
        width = parse_bucket("auto", (last - first) if first is not None else None)
    group_col = GROUPS[group_by] if group_by else "NULL"
    bucket_col = f"(start_ns / {width}) * {width}" if width else "NULL"
    cells = conn.execute(
        f"SELECT {group_col}, {bucket_col}, {_AGG} FROM {spans} WHERE {where} GROUP BY 1, 2",  # noqa: S608
        args,
    ).fetchall()
    n = sum(c[2] for c in cells)
    exact = n <= EXACT_LIMIT
    overall_durations: list[float] = []
    overall_hist: dict[int, int] = {}
    by_group: dict[Any, Any] = {}
    by_bucket: dict[Any, Any] = {}
    if exact:
        for g, b, d in conn.execute(f"SELECT {group_col}, {bucket_col}, duration_ms FROM {spans} WHERE {where}", args):  # noqa: S608
            overall_durations.append(d)
            if group_by:
                by_group.setdefault(g, []).append(d)
            if width:
                by_bucket.setdefault(b, []).append(d)
    else:
        bin_col = f"CAST(round(log(max(duration_ms, 0.001)) * {_BINS_PER_DECADE}) AS INTEGER)"
        rows = conn.execute(
            f"SELECT {group_col}, {bucket_col}, {bin_col}, count(*) FROM {spans} WHERE {where} GROUP BY 1, 2, 3",  # noqa: S608
            args,
        )
        for g, b, binned, c in rows:
            overall_hist[binned] = overall_hist.get(binned, 0) + c
            if group_by:
                gh = by_group.setdefault(g, {})
                gh[binned] = gh.get(binned, 0) + c
            if width:
                bh = by_bucket.setdefault(b, {})
                bh[binned] = bh.get(binned, 0) + c

    def latency(data: Any) -> dict[str, Any]:
        return _latency(None, data if data is not None else []) if exact else _latency(data or {}, None)

    out = _summarise(latency(overall_durations if exact else overall_hist), _merge([c[2:] for c in cells]))
    out["filters"] = filters.to_params()
    out["group_by"] = group_by
    out["groups"] = []
    out["buckets"] = []
    if group_by:
        groups: dict[Any, list[Sequence[Any]]] = {}
        for c in cells:
            groups.setdefault(c[0], []).append(c[2:])
        merged = [(key, _merge(parts)) for key, parts in groups.items()]
        merged.sort(key=lambda kv: (-kv[1][0], "" if kv[0] is None else str(kv[0])))
        out["groups"] = [{"key": key, **_summarise(latency(by_group.get(key)), agg)} for key, agg in merged]
    if width:
        buckets: dict[int, list[Sequence[Any]]] = {}
        for c in cells:
            buckets.setdefault(c[1], []).append(c[2:])
        out["bucket_ns"] = width
        out["buckets"] = [
            {"start_ns": key, "start": _iso(key), **_summarise(latency(by_bucket.get(key)), _merge(buckets[key]))}
            for key in sorted(buckets)
        ]
    return out


_WHOLE_HOURS_FROM = 6 * 3600 * 10**9
"""``bucket=auto`` over a range this long, when the rollups answer, gives whole hours (at least 6 bars): finer
buckets would need a pass over every span of the range (about 4 us each: 0.25 s for 63,000 spans)."""
_HOUR_WIDTHS = tuple(h * 3600 * 10**9 for h in (1, 2, 3, 6, 12, 24, 48, 168, 720))
_ROLLUP_FILTERS = _rollups.SLICE_DIMS
"""The filters (and groups) the rollups keep: tenant, service, model, provider, status, operation."""
_LOW, _HIGH = -(2**62), 2**62


def _rollups_apply(filters: Filters, group_by: str | None) -> bool:
    """Whether the rollups can answer: filters and grouping on their dimensions and time only.

    Everything else (user, session, name, alias, trace id, attributes, metadata, text, latency or cost
    bounds, datasets, grouping by alias, user or session) is answered from the spans.
    """
    others = (
        filters.user,
        filters.session,
        filters.name,
        filters.alias,
        filters.trace_id,
        filters.attrs,
        filters.meta,
    )
    if any(others) or filters.q or filters.dataset is not None:
        return False
    if filters.min_duration_ms is not None or filters.max_duration_ms is not None or filters.min_cost is not None:
        return False
    return group_by is None or group_by in _ROLLUP_FILTERS


def _rollup_source(
    filters: Filters, dims: set[str], key: str, grain: int, lo: int, hi: int, *, values: str = _rollups.VALUES
) -> tuple[str, list[Any]]:
    """SQL over the smallest rollup table keeping ``dims`` for the rows of ``grain`` in ``[lo, hi)``: the
    row's key (``key``: ``"time"``, ``"none"`` or the group's dimension), then ``values`` (columns or
    aggregates of them, :data:`spyglass.store._rollups.VALUES` by default; ``""``: none)."""
    args: list[Any]
    if len(dims) <= 1:
        # No dimension, or one: its slice (a few rows per hour or day).
        dim = next(iter(dims), "")
        table, time_col, key_col = _rollups.SLICES.name, "t_ns", "value"
        clauses = ["grain = ?", "dim = ?", "is_llm = 1" if filters.llm else "is_llm IN (0, 1)", "t_ns >= ?", "t_ns < ?"]
        args = [grain, dim, lo, hi]
        chosen: tuple[str, ...] = getattr(filters, dim) if dim else ()
        if chosen:
            clauses.append(f"value IN ({', '.join('?' * len(chosen))})")
            args.extend(chosen)
    else:
        cube = _rollups.HOURLY if grain == _rollups.HOUR else _rollups.DAILY
        table, time_col, key_col = cube.name, cube.time, key
        clauses = [f"{time_col} >= ?", f"{time_col} < ?"]
        args = [lo, hi]
        if filters.llm:
            clauses.append("is_llm = 1")
        for dim in _ROLLUP_FILTERS:
            chosen = getattr(filters, dim)
            if chosen:
                clauses.append(f"{dim} IN ({', '.join('?' * len(chosen))})")
                args.extend(chosen)
    column = {"time": time_col, "none": "NULL"}.get(key, key_col)
    columns = f"{column}, {values}" if values else column
    return f"SELECT {columns} FROM {table} WHERE {' AND '.join(clauses)}", args  # noqa: S608


def _rollup_part(
    conn: sqlite3.Connection, filters: Filters, group_by: str | None, width: int | None, lo: int, hi: int
) -> dict[Any, _rollups.Acc]:
    """Sums per group (``group_by``), per time bucket (``width``) or in total (neither) over the whole
    hours ``[lo, hi)``: whole UTC days from the daily tables when the buckets allow, the rest hourly."""
    dims = {d for d in _ROLLUP_FILTERS if getattr(filters, d)}
    if group_by:
        dims.add(group_by)
    key = "time" if width else (group_by or "none")
    out: dict[Any, _rollups.Acc] = {}
    for grain, start, end in _segments(lo, hi, width):
        sql, args = _rollup_source(filters, dims, key, grain, start, end)
        for row in conn.execute(sql, args):
            k = row[0]
            if width:
                k = k // width * width
            elif k == "" and group_by != "tenant":
                k = None
            acc = out.get(k)
            if acc is None:
                acc = out[k] = _rollups.Acc()
            acc.add_stored(row[1:])
    return out


def _segments(lo: int, hi: int, width: int | None) -> list[tuple[int, int, int]]:
    """``(grain, start, end)``: the whole hours ``[lo, hi)`` as whole UTC days (when buckets of ``width``
    allow) and the hours either side."""
    hour, day = _rollups.HOUR, _rollups.DAY
    segments = [(hour, lo, hi)]
    if width is None or width % day == 0:
        day_lo = lo if lo == _LOW else -(-lo // day) * day
        day_hi = hi if hi == _HIGH else hi // day * day
        if day_lo < day_hi:
            segments = [(hour, lo, day_lo), (day, day_lo, day_hi), (hour, day_hi, hi)]
    return [(grain, start, end) for grain, start, end in segments if start < end]


def _stats_source(filters: Filters, group_by: str | None, where: str) -> tuple[str, str]:
    """``FROM`` and ``WHERE`` for a statistics scan of the spans, with the index it should use.

    Without statistics (no ``ANALYZE``) SQLite counts ``is_llm = ?`` on the covering index as selective and
    picks it even for a filter on one user, reading every LM call's index entry: name the index instead.
    """
    if filters.q or filters.dataset is not None:
        return "spans", where
    if _rollups_apply(filters, group_by):
        # The covering index holds every column these filters, groups and sums read, in time order: never
        # let SQLite pick a one-column index and read kilobyte-wide rows (a model filter: 1 in 5 rows).
        return "spans INDEXED BY spans_stats", where if filters.llm else where + " AND is_llm IN (0, 1)"
    for values, index in (
        (filters.trace_id, "spans_trace"),
        (filters.session, "spans_session"),
        (filters.user, "spans_user"),
    ):
        if values:
            return f"spans INDEXED BY {index}", where
    return "spans", where


def _spans_in_range(conn: sqlite3.Connection, filters: Filters) -> int:
    """How many spans (LM calls when ``filters.llm``) the hours touching the time range hold, from the
    rollups: an upper bound on what a scan of the covering index reads for these filters."""
    hour = _rollups.HOUR
    lo = _LOW if filters.since_ns is None else filters.since_ns // hour * hour
    hi = _HIGH if filters.until_ns is None else -(-filters.until_ns // hour) * hour
    everything = Filters(llm=filters.llm)
    total = 0
    for grain, start, end in _segments(lo, hi, None):
        sql, args = _rollup_source(everything, set(), "none", grain, start, end, values="sum(n)")
        total += conn.execute(sql, args).fetchone()[1] or 0
    return total


def _hour_range(filters: Filters) -> tuple[int, int]:
    """The whole hours inside the filters' time range (``[lo, hi)``; empty when ``lo >= hi``)."""
    hour = _rollups.HOUR
    lo = _LOW if filters.since_ns is None else -(-filters.since_ns // hour) * hour
    hi = _HIGH if filters.until_ns is None else filters.until_ns // hour * hour
    return lo, hi


def _auto_width(conn: sqlite3.Connection, filters: Filters) -> int | None:
    """``bucket=auto`` from the hours holding matching spans: whole hours over :data:`_WHOLE_HOURS_FROM` or
    more (so the rollups can answer), else the finer widths of :func:`parse_bucket`."""
    hour = _rollups.HOUR
    lo = _LOW if filters.since_ns is None else filters.since_ns // hour * hour
    hi = _HIGH if filters.until_ns is None else filters.until_ns
    dims = {d for d in _ROLLUP_FILTERS if getattr(filters, d)}
    sql, args = _rollup_source(filters, dims, "time", hour, lo, hi, values="")
    first = conn.execute(sql + " ORDER BY 1 LIMIT 1", args).fetchone()
    last = conn.execute(sql + " ORDER BY 1 DESC LIMIT 1", args).fetchone()
    span = (last[0] + hour - first[0]) if first is not None and last is not None else None
    if span is not None and span >= _WHOLE_HOURS_FROM:
        return next((w for w in _HOUR_WIDTHS if span / w <= 60), _HOUR_WIDTHS[-1])
    return parse_bucket("auto", span)


def _edge_cells(
    conn: sqlite3.Connection, filters: Filters, group_by: str | None, width: int | None, lo: int, hi: int
) -> dict[tuple[Any, Any], _rollups.Acc]:
    """(group, bucket) -> sums and histogram of the partial hours at either end of the range, from the spans."""
    since, until = filters.since_ns, filters.until_ns
    edges = []
    if lo >= hi:
        edges.append((since, until))
    else:
        if since is not None and since < lo:
            edges.append((since, lo))
        if until is not None and hi < until:
            edges.append((hi, until))
    bucket_col = f"(start_ns / {width}) * {width}" if width else "NULL"
    span_group = GROUPS[group_by] if group_by else "NULL"
    bin_col = f"CAST(round(log(max(duration_ms, 0.001)) * {_BINS_PER_DECADE}) AS INTEGER)"
    cells: dict[tuple[Any, Any], _rollups.Acc] = {}
    for start, end in edges:
        edge = replace(filters, since_ns=start, until_ns=end)
        where, edge_args = edge.where()
        spans, where = _stats_source(edge, group_by, where)
        rows = conn.execute(
            f"SELECT {span_group}, {bucket_col}, {bin_col}, {_AGG} FROM {spans} WHERE {where} GROUP BY 1, 2, 3",  # noqa: S608
            edge_args,
        )
        for row in rows:
            acc = cells.get((row[0], row[1]))
            if acc is None:
                acc = cells[(row[0], row[1])] = _rollups.Acc()
            acc.add_bin(row[2], row[3:])
    return cells


def _rollup_stats(
    conn: sqlite3.Connection, filters: Filters, group_by: str | None, width: int | None, *, spans_only: bool = False
) -> dict[str, Any]:
    """The :func:`stats` answer from the rollups (whole hours) and the spans (partial hours at the ends).

    The total, the groups and the buckets are each read from the smallest table that answers them: a week
    grouped by model at hourly buckets reads the daily total and per-model slices and the hourly totals.
    Counts and token sums are exact, cost and latency sums up to float rounding, percentiles from the
    merged histograms (within 0.58 %), the maximum too once retention has taken spans out of a row.
    ``spans_only`` (buckets shorter than an hour): the whole range in one pass over the covering index.
    """
    lo, hi = (0, 0) if spans_only else _hour_range(filters)
    edges = _edge_cells(conn, filters, group_by, width, lo, hi)
    total = _rollups.Acc()
    if lo < hi:
        for acc in _rollup_part(conn, filters, None, None, lo, hi).values():
            total.merge(acc)
    for acc in edges.values():
        total.merge(acc)
    groups: dict[Any, _rollups.Acc] = {}
    buckets: dict[Any, _rollups.Acc] = {}
    if group_by and lo < hi:
        groups = _rollup_part(conn, filters, group_by, None, lo, hi)
    if width and lo < hi:
        buckets = _rollup_part(conn, filters, None, width, lo, hi)
    for (g, b), acc in edges.items():
        for into, k, wanted in ((groups, g, group_by), (buckets, b, width)):
            if wanted:
                cell = into.get(k)
                if cell is None:
                    cell = into[k] = _rollups.Acc()
                cell.merge(acc)

    def summary(acc: _rollups.Acc) -> dict[str, Any]:
        return _summarise(_latency(acc.hist, None), _merge([acc.agg()]))

    out = summary(total)
    out["filters"] = filters.to_params()
    out["group_by"] = group_by
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1].n, "" if kv[0] is None else str(kv[0])))
    out["groups"] = [{"key": key, **summary(acc)} for key, acc in ordered]
    out["buckets"] = [{"start_ns": key, "start": _iso(key), **summary(buckets[key])} for key in sorted(buckets)]
    if width:
        out["bucket_ns"] = width
    return out


def facets(conn: sqlite3.Connection, filters: Filters, *, limit: int = 100) -> dict[str, list[dict[str, Any]]]:
    """Distinct values with counts for the filter dropdowns (models, providers, services, ...).

    Over all time with rollup filters only (what the UI asks: none, or a token's tenant), the daily rollups
    answer: a few hundred rows instead of an index scan per column over every span.
    """
    if filters.since_ns is None and filters.until_ns is None and _rollups_apply(filters, None):
        return _facets_from_rollups(conn, filters, limit)
    where, args = filters.where()
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("model", "provider", "service", "tenant", "status", "operation"):
        column = GROUPS[name]
        rows = conn.execute(
            f"SELECT {column}, count(*) FROM spans WHERE {where} AND {column} IS NOT NULL "  # noqa: S608
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
            [*args, limit],
        ).fetchall()
        out[name] = [{"value": r[0], "count": r[1]} for r in rows]
    return out


def _facets_from_rollups(conn: sqlite3.Connection, filters: Filters, limit: int) -> dict[str, list[dict[str, Any]]]:
    dims = {d for d in _ROLLUP_FILTERS if getattr(filters, d)}
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("model", "provider", "service", "tenant", "status", "operation"):
        sql, args = _rollup_source(filters, {*dims, name}, name, _rollups.DAY, _LOW, _HIGH, values="sum(n)")
        counts = conn.execute(sql + " GROUP BY 1", args).fetchall()
        # The rollups keep a missing value as '' (for the tenant, '' is the value of spans without one).
        rows = sorted((-n, v) for v, n in counts if n > 0 and (v != "" or name == "tenant"))[:limit]
        out[name] = [{"value": v, "count": -n} for n, v in rows]
    return out


# --- datasets ------------------------------------------------------------------------------------

_DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _dataset(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "tenant": row[2],
        "description": row[3],
        "created": _iso(row[4]),
        "size": row[5],
    }


_DATASET_SELECT = (
    "SELECT d.id, d.name, d.tenant, d.description, d.created_ns, "
    "(SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id) FROM datasets d"
)


def list_datasets(conn: sqlite3.Connection, *, tenant: str | None = None) -> list[dict[str, Any]]:
    if tenant is None:
        rows = conn.execute(_DATASET_SELECT + " ORDER BY d.name, d.tenant").fetchall()
    else:
        rows = conn.execute(_DATASET_SELECT + " WHERE d.tenant = ? ORDER BY d.name", (tenant,)).fetchall()
    return [_dataset(r) for r in rows]


def get_dataset(conn: sqlite3.Connection, name: str, *, tenant: str = "") -> dict[str, Any]:
    row = conn.execute(_DATASET_SELECT + " WHERE d.name = ? AND d.tenant = ?", (name, tenant)).fetchone()
    if row is None:
        raise NotFound(f"dataset {name!r} not found")
    return _dataset(row)


def create_dataset(conn: sqlite3.Connection, name: str, *, tenant: str = "", description: str = "") -> dict[str, Any]:
    """Create a dataset (writer thread). Names: letters, digits, ``_.-``; unique per tenant."""
    if not _DATASET_NAME.match(name):
        raise BadRequest("name: 1-100 characters of letters, digits, '_', '.', '-', starting with a letter or digit")
    try:
        conn.execute(
            "INSERT INTO datasets (name, tenant, description, created_ns) VALUES (?, ?, ?, ?)",
            (name, tenant, description, time.time_ns()),
        )
    except sqlite3.IntegrityError:
        raise BadRequest(f"dataset {name!r} already exists") from None
    return get_dataset(conn, name, tenant=tenant)


def add_to_dataset(
    conn: sqlite3.Connection,
    name: str,
    *,
    tenant: str = "",
    ids: Sequence[int] = (),
    spans: Sequence[tuple[str, str]] = (),
    filters: Filters | None = None,
) -> dict[str, Any]:
    """Add spans (writer thread) by row id, by ``(trace_id, span_id)`` or by filter; returns the dataset.

    Only spans of the dataset's tenant can be added when the dataset has one.
    """
    ds = get_dataset(conn, name, tenant=tenant)
    now = time.time_ns()
    tenant_clause = " AND tenant = ?" if tenant else ""
    tenant_args = [tenant] if tenant else []
    for row_id in ids:
        conn.execute(
            f"INSERT OR IGNORE INTO dataset_items (dataset_id, span_id, added_ns) "  # noqa: S608
            f"SELECT ?, id, ? FROM spans WHERE id = ?{tenant_clause}",
            [ds["id"], now, int(row_id), *tenant_args],
        )
    for trace_id, span_id in spans:
        conn.execute(
            f"INSERT OR IGNORE INTO dataset_items (dataset_id, span_id, added_ns) "  # noqa: S608
            f"SELECT ?, id, ? FROM spans WHERE trace_id = ? AND span_id = ?{tenant_clause}",
            [ds["id"], now, trace_id, span_id, *tenant_args],
        )
    if filters is not None:
        f = filters.scoped(tenant) if tenant else filters
        where, args = f.where()
        conn.execute(
            f"INSERT OR IGNORE INTO dataset_items (dataset_id, span_id, added_ns) "  # noqa: S608
            f"SELECT ?, id, ? FROM spans WHERE {where}",
            [ds["id"], now, *args],
        )
    return get_dataset(conn, name, tenant=tenant)


def delete_dataset(conn: sqlite3.Connection, name: str, *, tenant: str = "") -> None:
    ds = get_dataset(conn, name, tenant=tenant)
    conn.execute("DELETE FROM dataset_items WHERE dataset_id = ?", (ds["id"],))
    conn.execute("DELETE FROM datasets WHERE id = ?", (ds["id"],))


def overview(conn: sqlite3.Connection) -> dict[str, Any]:
    """Store-wide numbers for ``/-/status``: span count, LM calls, first and last span time."""
    n, llm, first, last = conn.execute(
        "SELECT count(*), coalesce(sum(is_llm), 0), min(start_ns), max(start_ns) FROM spans"
    ).fetchone()
    return {
        "spans": n,
        "llm_calls": llm,
        "first": _iso(first) if first else None,
        "last": _iso(last) if last else None,
    }
