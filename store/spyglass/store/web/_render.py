"""One data dict, rendered as an HTML page or as its JSON twin, with the security headers every page sends.

The Content-Security-Policy allows only this origin's own script and style files: no inline script, no
inline event handlers, no inline styles, no ``eval``, no frames, no plugins. Charts and bars are SVG
geometry attributes, which the policy does not treat as styles. Jinja autoescapes every value, so text
from a span (untrusted) can only ever become text.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from spyglass.store.web import _format

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_PREFIX = "/-/static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Pages hold prompts and responses, which may hold secrets: no shared or disk caches.
    "Cache-Control": "no-store",
}


@cache
def _asset_version(name: str) -> str:
    """A content hash, so a new release's assets are never served from a stale browser cache."""
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=_format.duration_ms,
        cost=_format.cost,
        tokens=_format.tokens,
        percent=_format.percent,
        size=_format.size,
        timestamp=_format.timestamp,
        iso=_format.iso,
        short_id=_format.short_id,
    )
    return env


ENV = _environment()


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: send null rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def json_bytes(data: Any) -> bytes:
    return json.dumps(_finite(data), ensure_ascii=False, default=_default, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json_bytes(data),
        status_code=status,
        media_type="application/json",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", **(headers or {})},
    )


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def url(request: Request, path: str, params: dict[str, list[str]] | None = None) -> str:
    """An absolute path under the app's root, with a query string when there are parameters."""
    query = urlencode([(k, v) for k, values in (params or {}).items() for v in values]) if params else ""
    return base_path(request) + path + ("?" + query if query else "")


def page(
    request: Request,
    template: str,
    data: dict[str, Any],
    *,
    as_json: bool,
    alternate: str | None,
    nav: str = "",
    status: int = 200,
    context: dict[str, Any] | None = None,
) -> Response:
    """The page's data as JSON (``as_json``) or as HTML with ``Link: <json twin>; rel="alternate"``.

    ``context`` holds what only the HTML needs (form option lists, links); ``data`` is both.
    """
    if as_json:
        return json_response(data, status)
    base = base_path(request)
    html = ENV.get_template(template).render(
        **data,
        **(context or {}),
        base=base,
        nav=nav,
        page=template.removesuffix(".html"),
        alternate=alternate,
        static=lambda name: f"{base}{STATIC_PREFIX}/{name}?v={_asset_version(name)}",
    )
    headers = dict(SECURITY_HEADERS)
    if alternate:
        headers["Link"] = f'<{alternate}>; rel="alternate"; type="application/json"'
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(request: Request, body: dict[str, Any], *, as_json: bool) -> Response:
    """The store's one error shape, as JSON or as a page."""
    return page(request, "error.html", body, as_json=as_json, alternate=None, status=int(body.get("status", 500)))
