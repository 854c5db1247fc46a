"""The bundled Spyglass trace store (``spyglass serve``): OTLP receiver, storage, API, UI and CLI.

Importing this package must stay cheap and dependency-free: the ``spyglass`` console script starts here,
so the public names below are imported on first use.

Public API:

- :class:`Store`: the database (one writer thread, read-only readers); :class:`Settings`, :class:`Retention`.
- :class:`Filters` and the query functions in :mod:`spyglass.store._queries` (re-exported as ``queries``).
- :class:`Record` and :func:`normalise`: the normalised request record of one span.
- :func:`create_app`: the Starlette app (API, OTLP/HTTP, web UI); :func:`serve`: run everything.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spyglass.store import _queries as queries
    from spyglass.store._app import AppContext, create_app
    from spyglass.store._queries import Filters
    from spyglass.store._records import Record, normalise
    from spyglass.store._server import serve
    from spyglass.store._settings import Settings
    from spyglass.store._store import Store
    from spyglass.store._writer import Retention

__all__ = [
    "AppContext",
    "Filters",
    "Record",
    "Retention",
    "Settings",
    "Store",
    "create_app",
    "normalise",
    "queries",
    "serve",
]

_LAZY = {
    "AppContext": ("spyglass.store._app", "AppContext"),
    "Filters": ("spyglass.store._queries", "Filters"),
    "Record": ("spyglass.store._records", "Record"),
    "Retention": ("spyglass.store._writer", "Retention"),
    "Settings": ("spyglass.store._settings", "Settings"),
    "Store": ("spyglass.store._store", "Store"),
    "create_app": ("spyglass.store._app", "create_app"),
    "normalise": ("spyglass.store._records", "normalise"),
    "queries": ("spyglass.store._queries", None),
    "serve": ("spyglass.store._server", "serve"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'spyglass.store' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
