"""The store's errors, each carrying its HTTP status, and the one JSON error shape.

::

    StoreError (500)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    └── NotFound (404)

Every API error response is :func:`error_body`: ``{"ok": false, "error": str, "errors": [str], "status": int}``.
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    status = 500

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or [message]


class BadRequest(StoreError):
    status = 400


class Unauthorized(StoreError):
    status = 401


class Forbidden(StoreError):
    status = 403


class NotFound(StoreError):
    status = 404


def error_body(status: int, message: str, errors: list[str] | None = None) -> dict[str, Any]:
    return {"ok": False, "error": message, "errors": errors or [message], "status": status}
