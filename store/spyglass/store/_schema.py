"""The SQLite schema of the trace store, as named migrations applied in order.

One table holds every span whole (attributes, events, links as JSON, resource by reference) with the
normalised request record promoted into typed columns, so that every filter and sort runs on an index.
``spans_fts`` is an FTS5 index over the input text, output text and tool arguments; it is an external
content table over ``spans`` (the text is stored once): the writer indexes each transaction's new rows
with one ``INSERT ... SELECT`` (see :data:`spyglass.store._writer._ROWS_PER_STATEMENT` for why), in a
transaction of its own right after the rows' (``fts_progress`` says how far it got), and a trigger removes
deleted rows.

Columns of ``spans`` (the web UI and the query layer read these names):

=====================  ========  ===========================================================
column                 type      meaning
=====================  ========  ===========================================================
``id``                 int       row id (also the FTS rowid and the dataset reference)
``trace_id``           text      32 lowercase hex digits
``span_id``            text      16 lowercase hex digits
``parent_span_id``     text      16 hex digits or NULL for a root span
``tenant``             text      tenant ('' when none)
``name``               text      span name
``kind``               int       OTLP span kind number (1 internal ... 5 consumer)
``service``            text      ``service.name`` of the resource
``scope_name``         text      instrumentation scope name
``start_ns``           int       start, Unix nanoseconds
``end_ns``             int       end, Unix nanoseconds
``duration_ms``        real      latency in milliseconds
``status``             text      ``success`` | ``error`` | ``timeout``
``status_message``     text      OTel status description or ``error.type``
``is_llm``             int       1 for an LM call (the "requests" of the API)
``operation``          text      ``gen_ai.operation.name`` (or the dialect's equivalent)
``provider``           text      provider name
``model``              text      the answering model (response model, else requested)
``request_model``      text      the requested model
``alias``              text      requested model when it differs from the answering model
``input_tokens``...    int       input, output, cache_read, cache_write, reasoning tokens
``cost``               real      USD (sent by the app, or priced by the store)
``cost_source``        text      ``span`` | ``genai-prices`` | NULL (unpriced)
``user_id``            text      ``user.id``
``session_id``         text      ``session.id`` (or ``gen_ai.conversation.id``)
``input_text``         text      the prompt as readable text (FTS)
``output_text``        text      the response as readable text (FTS)
``tool_args``          text      tool-call arguments (FTS)
``metadata``           text      JSON object of ``spyglass.metadata.*`` / OpenInference metadata
``attributes``         text      JSON object: every span attribute as sent (packed when large, see below)
``events``             text      JSON list of ``{"name", "time_ns", "attributes"}`` or NULL (packed too)
``links``              text      JSON list of ``{"trace_id", "span_id", "attributes"}`` or NULL
``resource_id``        int       ``resources.id``
``ingested_ns``        int       when the store wrote it
=====================  ========  ===========================================================

**Packed JSON.** ``attributes`` and ``events`` do not keep a second copy of the prompt and response text
that ``input_text`` and ``output_text`` hold (:mod:`spyglass.store._packing`): when they would, they are a
blob that refers to those columns. Readers select ``span_json(attributes, input_text, output_text)``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from spyglass.store._errors import StoreError
from spyglass.store._packing import unpack

RECORD_COLUMNS: Final = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "tenant",
    "name",
    "kind",
    "service",
    "scope_name",
    "start_ns",
    "end_ns",
    "duration_ms",
    "status",
    "status_message",
    "is_llm",
    "operation",
    "provider",
    "model",
    "request_model",
    "alias",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "cost_source",
    "user_id",
    "session_id",
    "input_text",
    "output_text",
    "tool_args",
    "metadata",
)
"""The ``spans`` columns of the normalised request record: what searches and lists return."""
DETAIL_COLUMNS: Final = ("attributes", "events", "links", "resource_id")
"""The whole span as received, read only when one span or trace is opened."""
SPAN_COLUMNS: Final = (*RECORD_COLUMNS, *DETAIL_COLUMNS, "ingested_ns")
"""Every column the writer fills, in the order of the rows it is given (``id`` aside)."""
ATTRIBUTES_SQL: Final = "span_json(attributes, input_text, output_text)"
"""The attributes as JSON text in SQL (they may be packed, see "Packed JSON" above)."""
DETAIL_SQL: Final = f"{ATTRIBUTES_SQL}, span_json(events, input_text, output_text), links, resource_id"
""":data:`DETAIL_COLUMNS` as a select list: attributes and events as JSON text."""

MIGRATIONS: Final[tuple[tuple[str, str], ...]] = (
    (
        "0001_initial",
        """
        CREATE TABLE resources (
            id INTEGER PRIMARY KEY,
            attributes TEXT NOT NULL UNIQUE
        );
        CREATE TABLE spans (
            id INTEGER PRIMARY KEY,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            parent_span_id TEXT,
            tenant TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            kind INTEGER NOT NULL DEFAULT 0,
            service TEXT,
            scope_name TEXT,
            start_ns INTEGER NOT NULL,
            end_ns INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            status TEXT NOT NULL,
            status_message TEXT,
            is_llm INTEGER NOT NULL DEFAULT 0,
            operation TEXT,
            provider TEXT,
            model TEXT,
            request_model TEXT,
            alias TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost REAL,
            cost_source TEXT,
            user_id TEXT,
            session_id TEXT,
            input_text TEXT,
            output_text TEXT,
            tool_args TEXT,
            metadata TEXT,
            attributes TEXT NOT NULL,
            events TEXT,
            links TEXT,
            resource_id INTEGER REFERENCES resources(id),
            ingested_ns INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX spans_trace ON spans (trace_id, span_id);
        CREATE INDEX spans_start ON spans (start_ns);
        CREATE INDEX spans_tenant ON spans (tenant, start_ns);
        CREATE INDEX spans_model ON spans (model, start_ns);
        CREATE INDEX spans_provider ON spans (provider, start_ns);
        CREATE INDEX spans_service ON spans (service, start_ns);
        CREATE INDEX spans_status ON spans (status, start_ns);
        CREATE INDEX spans_session ON spans (session_id) WHERE session_id IS NOT NULL;
        CREATE INDEX spans_user ON spans (user_id) WHERE user_id IS NOT NULL;
        CREATE INDEX spans_ingested ON spans (ingested_ns);

        CREATE VIRTUAL TABLE spans_fts USING fts5 (
            input_text, output_text, tool_args,
            content='spans', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER spans_fts_insert AFTER INSERT ON spans BEGIN
            INSERT INTO spans_fts (rowid, input_text, output_text, tool_args)
            VALUES (new.id, new.input_text, new.output_text, new.tool_args);
        END;
        CREATE TRIGGER spans_fts_delete AFTER DELETE ON spans BEGIN
            INSERT INTO spans_fts (spans_fts, rowid, input_text, output_text, tool_args)
            VALUES ('delete', old.id, old.input_text, old.output_text, old.tool_args);
        END;

        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            tenant TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            created_ns INTEGER NOT NULL,
            UNIQUE (tenant, name)
        );
        CREATE TABLE dataset_items (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            span_id INTEGER NOT NULL,
            added_ns INTEGER NOT NULL,
            PRIMARY KEY (dataset_id, span_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0002_fts_insert_by_writer",
        # Row-by-row FTS inserts from a trigger were 3-4x slower than one INSERT ... SELECT per transaction,
        # which the writer now runs (spyglass.store._writer). The delete trigger stays (retention).
        """
        DROP TRIGGER spans_fts_insert;
        """,
    ),
    (
        "0003_stats_covering_index",
        # Statistics read only these columns: scanning this index instead of the rows (which carry kilobytes
        # of prompt text each) keeps a stats query over a million spans to an index scan.
        """
        CREATE INDEX spans_stats ON spans (
            is_llm, start_ns, tenant, model, provider, service, status, operation, alias, user_id, session_id,
            duration_ms, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost
        );
        """,
    ),
    (
        "0004_hourly_rollups",
        # See spyglass.store._rollups: statistics over many spans read these instead of every span.
        """
        CREATE TABLE rollups (
            hour_ns INTEGER NOT NULL,
            is_llm INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            service TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            status TEXT NOT NULL,
            operation TEXT NOT NULL,
            n INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            dur_sum REAL NOT NULL,
            dur_max REAL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost REAL,
            hist TEXT NOT NULL,
            PRIMARY KEY (hour_ns, is_llm, tenant, service, model, provider, status, operation)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0005_fts_detail_none",
        # Positions in the index cost 40-60 % of the writer's throughput; phrases are checked on the matching
        # rows instead (phrase_match). The index is rebuilt from the stored text.
        """
        DROP TRIGGER spans_fts_delete;
        DROP TABLE spans_fts;
        CREATE VIRTUAL TABLE spans_fts USING fts5 (
            input_text, output_text, tool_args,
            content='spans', content_rowid='id', tokenize='unicode61 remove_diacritics 2', detail=none
        );
        INSERT INTO spans_fts (spans_fts) VALUES ('rebuild');
        CREATE TRIGGER spans_fts_delete AFTER DELETE ON spans BEGIN
            INSERT INTO spans_fts (spans_fts, rowid, input_text, output_text, tool_args)
            VALUES ('delete', old.id, old.input_text, old.output_text, old.tool_args);
        END;
        """,
    ),
    (
        "0006_fts_hashsize",
        # FTS5 writes its pending terms out as a new segment whenever they pass 1 MB, and merges those segments
        # later; a writer transaction holds several MB of terms, so a 32 MB hash makes one segment per
        # transaction instead of many (about a fifth less indexing time, measured). Memory stays bounded.
        """
        INSERT INTO spans_fts (spans_fts, rank) VALUES ('hashsize', 33554432);
        """,
    ),
    (
        "0007_rollup_levels",
        # See spyglass.store._rollups: a daily cube and one-dimension slices (hourly and daily), so that a
        # week grouped by model reads about 40 rows instead of 30,000. Filled from the hourly rollups.
        """
        CREATE TABLE rollups_daily (
            day_ns INTEGER NOT NULL,
            is_llm INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            service TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            status TEXT NOT NULL,
            operation TEXT NOT NULL,
            n INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            dur_sum REAL NOT NULL,
            dur_max REAL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost REAL,
            hist TEXT NOT NULL,
            PRIMARY KEY (day_ns, is_llm, tenant, service, model, provider, status, operation)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_slices (
            grain INTEGER NOT NULL,
            dim TEXT NOT NULL,
            is_llm INTEGER NOT NULL,
            t_ns INTEGER NOT NULL,
            value TEXT NOT NULL,
            n INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            dur_sum REAL NOT NULL,
            dur_max REAL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost REAL,
            hist TEXT NOT NULL,
            PRIMARY KEY (grain, dim, is_llm, t_ns, value)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0008_packed_json",
        # No DDL: from here on attributes/events may be packed blobs (spyglass.store._packing), half the bytes
        # of an LM call's row; rows written before stay JSON text and read as before. Marks such databases.
        "",
    ),
    (
        "0009_fts_page_size",
        # FTS5 cuts its segments into 1,000-byte leaves by default; 16,000-byte leaves (one 16 KB database
        # page each) take about a seventh off the indexing time, measured. Segments written before keep theirs.
        """
        INSERT INTO spans_fts (spans_fts, rank) VALUES ('pgsz', 16000);
        """,
    ),
    (
        "0010_fts_progress",
        # The writer indexes a batch's text in a transaction of its own after acknowledging the rows
        # (spyglass.store._writer): rows above indexed_through are not in spans_fts yet. committed_through is
        # the last row this writer committed (rows above it come from an older store, which indexes its own).
        """
        CREATE TABLE fts_progress (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            indexed_through INTEGER NOT NULL,
            committed_through INTEGER NOT NULL
        );
        INSERT INTO fts_progress (id, indexed_through, committed_through)
        SELECT 1, coalesce(max(id), 0), coalesce(max(id), 0) FROM spans;
        """,
    ),
)

PYTHON_STEPS: Final[dict[str, str]] = {"0004_hourly_rollups": "rebuild", "0007_rollup_levels": "rebuild_levels"}
"""Migrations that also run ``spyglass.store._rollups.<function>(conn)`` inside their transaction."""
"""``(name, sql)`` in order; never edit a released migration, add a new one."""

SCHEMA_VERSION: Final = len(MIGRATIONS)


PAGE_SIZE: Final = 16384


def configure(conn: sqlite3.Connection, *, readonly: bool = False) -> None:
    """Per-connection settings: WAL, a busy timeout, and for readers ``query_only``."""
    if readonly:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA query_only = 1")
        return
    # The writer is the only writer: waiting long on an outside lock (a backup, the CLI) beats failing.
    conn.execute("PRAGMA busy_timeout = 30000")
    # A new database gets 16 KB pages (before WAL mode creates the file): a span's row (about 6 KB) fits in
    # one page instead of a chain of overflow pages, and commits write a fifth less (measured). An existing
    # database keeps its page size.
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a committed transaction survives the process being killed (not power loss).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """The block as one transaction on an autocommit connection: committed at its end, rolled back (and the
    error re-raised) when it raises or the commit fails. ``BEGIN IMMEDIATE`` takes the write lock at once."""
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet applied; return their names. Runs on the writer connection."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_ns INTEGER NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        # A newer store changed what the tables mean (e.g. 0010: rows acknowledged before their text is
        # indexed); writing with older code could corrupt them.
        raise StoreError(
            f"the database was written by a newer Spyglass (migrations {', '.join(unknown)}); "
            "upgrade Spyglass to open it"
        )
    applied: list[str] = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        # One transaction per migration, including its bookkeeping row (names are code constants).
        with transaction(conn, "BEGIN"):
            for statement in _statements(sql):
                conn.execute(statement)
            if name in PYTHON_STEPS:
                from spyglass.store import _rollups

                getattr(_rollups, PYTHON_STEPS[name])(conn)
            conn.execute("INSERT INTO migrations (name, applied_ns) VALUES (?, ?)", (name, time.time_ns()))
        applied.append(name)
    from spyglass.store import _rollups

    _rollups.repair(conn)  # rollups a pre-0007 writer left behind
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers contain ``;`` inside BEGIN ... END)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


WORD: Final = re.compile(r"[^\W_]+")
"""A token as FTS5's unicode61 tokenizer sees it (runs of letters and digits)."""


def phrase_match(text: str | None, phrase: str | None) -> bool:
    """SQL ``phrase_match(text, phrase)``: the phrase's words appear consecutively in ``text`` (any case).

    ``phrase`` is lowercase words joined by single spaces (see :func:`spyglass.store._queries.fts_search`).
    """
    if not text or not phrase:
        return False
    lowered = text.lower()
    if phrase.split(" ", 1)[0] not in lowered:  # cheap rejection before tokenizing
        return False
    words = " " + " ".join(WORD.findall(lowered)) + " "
    return f" {phrase} " in words


class WriterConnection(sqlite3.Connection):
    """The writer's connection, with state that must live and die with it."""

    rollup_cache: Any = None
    """A :class:`spyglass.store._rollups.Cache` of the rollup rows this connection wrote, once set."""


def connect(path: str, *, readonly: bool = False, writer: bool = False) -> sqlite3.Connection:
    """Open the database at ``path``: the writer creates it (``writer=True``: a :class:`WriterConnection`),
    readers open it read-only."""
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    elif writer:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, factory=WriterConnection)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    configure(conn, readonly=readonly)
    conn.create_function("phrase_match", 2, phrase_match, deterministic=True)
    conn.create_function("span_json", 3, unpack, deterministic=True)
    return conn
