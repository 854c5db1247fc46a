"""The web UI of the trace store: server-rendered pages, each with a JSON twin, and no build step.

The store's app factory (:func:`spyglass.store.create_app`) mounts ``web.routes(context)``.

Pages are Jinja templates (``templates/``, ``base.html`` plus ``_partials``) over the query layer
(:mod:`spyglass.store._queries`); a little hand-written JavaScript and CSS (``static/``) adds keyboard
navigation, toggles, copy buttons and lazily loaded values. A strict Content-Security-Policy goes with
every page (see :mod:`spyglass.store.web._render`).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from spyglass.store._app import AppContext
from spyglass.store.web._pages import Pages
from spyglass.store.web._render import CONTENT_SECURITY_POLICY, STATIC_DIR, STATIC_PREFIX

__all__ = ["CONTENT_SECURITY_POLICY", "Pages", "routes"]


def routes(ctx: AppContext) -> list[BaseRoute]:
    """The UI's routes over the app's store: the pages and ``/-/static``."""
    return [
        *Pages(ctx).routes(),
        Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
