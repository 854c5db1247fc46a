"""The web UI of the trace store: server-rendered pages, each with a JSON twin, and no build step.

Usage (the store's app factory does this)::

    from spyglass.store import web

    app = Starlette(routes=[*api_routes, *web.routes(store)])

Pages are Jinja templates (``templates/``, ``base.html`` plus ``_partials``) over the query layer
(:mod:`spyglass.store._queries`); a little hand-written JavaScript and CSS (``static/``) adds keyboard
navigation, toggles, copy buttons and lazily loaded values. A strict Content-Security-Policy goes with
every page (see :mod:`spyglass.store.web._render`).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from spyglass.store._store import Store
from spyglass.store.web._pages import Pages, TenantOf
from spyglass.store.web._render import CONTENT_SECURITY_POLICY, STATIC_DIR, STATIC_PREFIX

__all__ = ["CONTENT_SECURITY_POLICY", "Pages", "routes"]


def routes(store: Store, *, tenant_of: TenantOf | None = None) -> list[BaseRoute]:
    """The UI's routes over ``store``: the pages and ``/-/static``.

    ``tenant_of(request)`` names the tenant a request is limited to (``None``: all tenants); by default
    it reads ``request.state.tenant``, which the store's auth middleware sets for tenant-scoped tokens.
    """
    return [
        *Pages(store, tenant_of=tenant_of).routes(),
        Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
