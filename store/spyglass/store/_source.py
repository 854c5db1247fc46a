"""Where the CLI reads from: the database file directly, or a running server's REST API.

Both give the same data (the dicts of :mod:`spyglass.store._queries`); the remote one sends the same
query parameters the API documents.
"""

from __future__ import annotations

import codecs
import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from spyglass.store import _export, _queries
from spyglass.store._errors import StoreError
from spyglass.store._schema import connect

Params = Mapping[str, Sequence[str]]


class Source(Protocol):
    def search(self, params: Params, *, sort: str, limit: int, cursor: str | None = None) -> dict[str, Any]: ...

    def span(self, trace_id: str, span_id: str) -> dict[str, Any]: ...

    def stats(self, params: Params, *, group_by: str | None, bucket: str | None) -> dict[str, Any]: ...

    def count(self, params: Params) -> int | None: ...

    def export(self, params: Params, fmt: str) -> Iterator[str]: ...


class LocalSource:
    """Reads the database file read-only (works while a server is writing to it).

    A server acknowledges spans before their text is in the full-text index and indexes it right after
    (``fts_progress``, see :mod:`spyglass.store._writer`); like the server's own readers, each read first
    waits, up to :attr:`index_wait_s`, for the index to cover every span committed when the read started,
    so a ``q=`` search finds what the server acknowledged. A writer that is not running (killed, the index
    left behind until it restarts) is waited for once: later reads go ahead at once.
    """

    index_wait_s = 2.0

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise StoreError(f"no database at {path} (start `spyglass serve`, or pass --db / --url)")
        self.path = path
        self.conn: sqlite3.Connection = connect(str(path), readonly=True)
        self._wait = True

    def _progress(self) -> tuple[int, int] | None:
        try:
            row = self.conn.execute("SELECT indexed_through, committed_through FROM fts_progress").fetchone()
        except sqlite3.OperationalError:  # a database from before migration 0010: indexed with its rows
            return None
        return None if row is None else (int(row[0]), int(row[1]))

    def _wait_indexed(self) -> None:
        progress = self._progress() if self._wait else None
        if progress is None or progress[0] >= progress[1]:
            return
        target, deadline = progress[1], time.monotonic() + self.index_wait_s
        while time.monotonic() < deadline:
            time.sleep(0.01)
            progress = self._progress()
            if progress is None or progress[0] >= target:
                return
        self._wait = False  # no writer is indexing: the rest of the rows come when one starts

    def search(self, params: Params, *, sort: str, limit: int, cursor: str | None = None) -> dict[str, Any]:
        self._wait_indexed()
        return _queries.search_spans(
            self.conn, _queries.Filters.from_params(params), sort=sort, limit=limit, cursor=cursor
        )

    def span(self, trace_id: str, span_id: str) -> dict[str, Any]:
        return _queries.get_span(self.conn, trace_id, span_id)

    def stats(self, params: Params, *, group_by: str | None, bucket: str | None) -> dict[str, Any]:
        self._wait_indexed()
        return _queries.stats(self.conn, _queries.Filters.from_params(params), group_by=group_by, bucket=bucket)

    def count(self, params: Params) -> int | None:
        self._wait_indexed()
        return _queries.count(self.conn, _queries.Filters.from_params(params))

    def export(self, params: Params, fmt: str) -> Iterator[str]:
        self._wait_indexed()
        filters = _queries.Filters.from_params(params)
        items = _queries.iter_items(self.conn, filters, details=_export.NEEDS_DETAILS[fmt])
        return _export.WRITERS[fmt](items)


class RemoteSource:
    """Talks to ``spyglass serve`` over its REST API (``Authorization: Bearer`` when a token is given)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _open(self, path: str, params: Mapping[str, Any]) -> Any:
        pairs = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
        query = urllib.parse.urlencode([(k, v) for k, v in pairs if v is not None])
        request = urllib.request.Request(f"{self.url}{path}?{query}")  # noqa: S310 (the user's own URL)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 (the user's own URL)
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise StoreError(f"{self.url}: {message}") from None
        except urllib.error.URLError as exc:
            raise StoreError(f"cannot reach {self.url}: {exc.reason}") from None

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        with self._open(path, params) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def search(self, params: Params, *, sort: str, limit: int, cursor: str | None = None) -> dict[str, Any]:
        return self._get("/api/v1/spans", {**params, "sort": sort, "limit": limit, "cursor": cursor})

    def span(self, trace_id: str, span_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/spans/{trace_id}/{span_id}", {})

    def stats(self, params: Params, *, group_by: str | None, bucket: str | None) -> dict[str, Any]:
        return self._get("/api/v1/stats", {**params, "group_by": group_by, "bucket": bucket})

    def count(self, params: Params) -> int | None:
        return None  # unknown: the progress bar counts up without a total

    def export(self, params: Params, fmt: str) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._open("/api/v1/export", {**params, "format": fmt}) as response:
            while True:
                chunk = response.read(65536)
                if not chunk:
                    yield decoder.decode(b"", final=True)
                    return
                yield decoder.decode(chunk)
