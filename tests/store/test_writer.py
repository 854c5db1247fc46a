"""The writer's rollup cache (rows it wrote are not read back) never lets the rollups drift from the spans:
after a rolled-back transaction whose jobs are retried one by one, after another connection changed a rollup
row, after retention, and when the cache is trimmed to its bounds. Each check recomputes every rollup table
from the stored spans and compares it row by row.

The text of acknowledged spans is indexed in a transaction after the rows': a search started after an
acknowledgement still finds the span, a writer that stopped before indexing leaves its rows to the next one,
and rows an older store indexed itself are not indexed twice (FTS5's integrity-check)."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from spyglass.store import Filters, Record, Retention, Store, _rollups, _writer, queries
from spyglass.store._errors import StoreError
from spyglass.store._writer import Writer

HOUR = 3600 * 10**9


def _records(rng: random.Random, first: int, n: int, lo: int, hi: int, tenant: str = "acme") -> list[Record]:
    out = []
    for i in range(first, first + n):
        start = rng.randrange(lo, hi)
        duration_ms = round(rng.lognormvariate(6, 1.0), 3) + 0.2
        out.append(
            Record(
                trace_id=f"{i + 1:032x}",
                span_id=f"{i + 1:016x}",
                parent_span_id=None,
                name="chat",
                kind=3,
                start_ns=start,
                end_ns=start + int(duration_ms * 1e6),
                tenant=tenant,
                service=rng.choice(["bot", "rag"]),
                status=rng.choice(["success", "success", "error"]),
                is_llm=True,
                operation="chat",
                provider="openai",
                model=rng.choice(["gpt-4o", "gpt-4o-mini"]),
                input_tokens=rng.randrange(5000),
                output_tokens=rng.randrange(900),
                cost=round(rng.random() / 100, 6),
            )
        )
    return out


def _table(conn: sqlite3.Connection, table: _rollups.Table) -> dict[tuple[Any, ...], list[Any]]:
    n_key = len(table.key)
    rows = conn.execute(f"SELECT {', '.join(table.key)}, {_rollups.VALUES} FROM {table.name}")
    return {tuple(r[:n_key]): _values(_rollups.load(r[n_key:])) for r in rows}


def _values(acc: _rollups.Acc) -> list[Any]:
    sums = [round(v, 9) if isinstance(v, float) else v for v in acc.sums]
    return [acc.n, acc.errors, round(acc.dur_sum, 6), *sums, sorted(acc.hist.items())]


def _assert_rollups_match_spans(store: Store) -> None:
    def check(conn: sqlite3.Connection) -> None:
        fields = "start_ns, " + ", ".join(_rollups.DIMS) + ", duration_ms, " + ", ".join(_rollups.SUMS)
        hourly = _rollups.aggregate(conn.execute(f"SELECT {fields} FROM spans"))
        daily, slices = _rollups.levels(hourly)
        for table, cells in ((_rollups.HOURLY, hourly), (_rollups.DAILY, daily), (_rollups.SLICES, slices)):
            want = {key: _values(acc) for key, acc in cells.items()}
            assert _table(conn, table) == want, table.name

    store.read(check)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "w.db", pricer=False)
    yield s
    s.close()


def test_a_rolled_back_batch_retried_job_by_job_counts_each_span_once(store: Store) -> None:
    rng = random.Random(1)
    base = time.time_ns() // HOUR * HOUR - 5 * HOUR
    store.submit(_records(rng, 0, 200, base, base + 2 * HOUR)).result()  # the cache now holds these rows
    # A trigger fails the daily rollup write of one tenant's spans: the transaction holding both jobs rolls
    # back after the hourly rows were merged, and each job is retried alone.
    store.write(
        lambda conn: conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON rollups_daily WHEN new.tenant = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    )
    started, release = threading.Event(), threading.Event()

    def block(conn: sqlite3.Connection) -> bool:
        started.set()
        return release.wait(10)

    blocker = store.writer.call(block)  # both jobs queue behind it and go in one batch without it
    assert started.wait(10)
    good = store.submit(_records(rng, 1000, 150, base, base + 2 * HOUR))
    bad = store.submit(_records(rng, 2000, 20, base, base + 2 * HOUR, tenant="boom"))
    release.set()
    blocker.result()
    assert good.result() == 150
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        bad.result()
    assert store.read(lambda conn: conn.execute("SELECT sum(n) FROM rollups").fetchone()[0]) == 350
    _assert_rollups_match_spans(store)


def test_rows_another_connection_changed_are_read_again(store: Store) -> None:
    rng = random.Random(2)
    base = time.time_ns() // HOUR * HOUR - 3 * HOUR
    store.submit(_records(rng, 0, 300, base, base + HOUR)).result()
    # Another connection commits a change to rollup rows the writer's cache holds (what a second writer
    # would do): the writer must merge its next spans into the changed rows, not its cached copies.
    with sqlite3.connect(store.path) as other:
        other.execute("UPDATE rollups SET n = n + 1000")
        other.execute("UPDATE rollups_daily SET n = n + 1000")
    cells = store.read(lambda conn: conn.execute("SELECT count(*), sum(n) FROM rollups").fetchone())
    store.submit(_records(rng, 1000, 300, base, base + HOUR)).result()
    total = store.read(lambda conn: conn.execute("SELECT sum(n) FROM rollups").fetchone()[0])
    assert total == cells[1] + 300
    assert total == 600 + 1000 * cells[0]


def test_rollups_match_the_spans_through_retention_and_a_small_cache(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(3)
    cache = store.writer._rollups
    monkeypatch.setattr(cache, "max_rows", 40)  # far fewer than the rows each batch touches
    monkeypatch.setattr(cache, "max_bins", 300)
    base = time.time_ns() // HOUR * HOUR - 30 * HOUR
    n = 0
    for hours in range(0, 30, 6):
        batch = _records(rng, n, 250, base + hours * HOUR, base + (hours + 8) * HOUR)
        n += len(batch)
        store.submit(batch).result()
        assert len(cache.rows) <= 40
        assert sum(len(acc.hist) for acc in cache.rows.values()) <= 300
    _assert_rollups_match_spans(store)
    store.writer.retain(Retention(max_age_s=(time.time_ns() - base - 14 * HOUR) / 1e9)).result()
    late = _records(rng, n, 300, base, base + 30 * HOUR)  # late spans into hours retention just cut
    store.submit(late).result()
    _assert_rollups_match_spans(store)


def test_the_cache_keeps_the_rows_last_written_within_its_bounds() -> None:
    cache = _rollups.Cache(max_rows=3, max_bins=100)
    for i in range(5):
        acc = _rollups.Acc()
        acc.add_span("success", 10.0 + i, [None] * len(_rollups.SUMS))
        cache.rows[("rollups", (i,))] = acc
    cache.trim()
    assert list(cache.rows) == [("rollups", (2,)), ("rollups", (3,)), ("rollups", (4,))]
    big = _rollups.Acc()
    for ms in range(1, 200):
        big.add_span("success", float(ms), [None] * len(_rollups.SUMS))
    cache.rows[("rollups", (9,))] = big  # more bins than the bound alone: everything goes
    cache.trim()
    assert cache.rows == {}


def _texts(records: list[Record], word: str) -> list[Record]:
    for i, rec in enumerate(records):
        rec.input_text = f"user: tell me about {word} number {i}"
        rec.output_text = f"assistant: {word} is a word"
    return records


def _fts_check(store: Store) -> None:
    store.write(lambda conn: conn.execute("INSERT INTO spans_fts (spans_fts, rank) VALUES ('integrity-check', 1)"))


def _found(store: Store, word: str) -> int:
    page = store.read(queries.search_spans, Filters(q=word), limit=1000)
    return len(page["items"])


def test_a_search_after_an_acknowledgement_finds_the_spans(store: Store) -> None:
    rng = random.Random(4)
    base = time.time_ns() // HOUR * HOUR - 2 * HOUR
    errors: list[str] = []

    def sender(k: int) -> None:
        for b in range(6):
            word = f"w{k}x{b}q"
            batch = _texts(_records(rng, (k * 10 + b) * 1000, 300, base, base + HOUR), word)
            store.submit(batch).result()
            found = _found(store, word)  # right after the acknowledgement, while other batches are indexed
            if found != 300:
                errors.append(f"{word}: {found} of 300")

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _fts_check(store)


def _left_unindexed(path: Path, monkeypatch: pytest.MonkeyPatch, rng: random.Random, n: int, word: str) -> int:
    """A database whose writer stopped after committing ``n`` spans holding ``word``, before indexing them."""
    base = time.time_ns() // HOUR * HOUR - 2 * HOUR
    with monkeypatch.context() as patch:
        patch.setattr(Writer, "_index", lambda self: None)
        store = Store(path, pricer=False)
        store.submit(_texts(_records(rng, 0, n, base, base + HOUR), word)).result()
        store.close()
    return base


def test_rows_a_stopped_writer_left_unindexed_are_indexed_when_the_store_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _left_unindexed(tmp_path / "k.db", monkeypatch, random.Random(5), 200, "kiwi")
    with sqlite3.connect(tmp_path / "k.db") as conn:
        assert conn.execute("SELECT count(*) FROM spans_fts WHERE spans_fts MATCH 'kiwi'").fetchone()[0] == 0
    store = Store(tmp_path / "k.db", pricer=False)
    try:
        assert _found(store, "kiwi") == 200
        _fts_check(store)
    finally:
        store.close()


def test_rows_an_older_store_indexed_itself_are_not_indexed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(6)
    base = _left_unindexed(tmp_path / "o.db", monkeypatch, rng, 50, "plum")
    # A store from before migration 0010 adds rows and indexes them in the same transaction.
    with sqlite3.connect(tmp_path / "o.db") as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(spans)") if r[1] not in ("id", "span_id")]
        conn.execute(
            f"INSERT INTO spans (id, span_id, {', '.join(cols)}) "
            f"SELECT id + 1000, printf('%016x', id + 1000), {', '.join(cols)} FROM spans"
        )
        conn.execute(
            "INSERT INTO spans_fts (rowid, input_text, output_text, tool_args) "
            "SELECT id, input_text, output_text, tool_args FROM spans WHERE id > 1000"
        )
    store = Store(tmp_path / "o.db", pricer=False)
    try:
        _fts_check(store)
        assert _found(store, "plum") == 100
        store.submit(_texts(_records(rng, 5000, 50, base, base + HOUR), "plum")).result()
        assert _found(store, "plum") == 150
        _fts_check(store)
    finally:
        store.close()


def test_retention_waits_while_rows_are_not_indexed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting a row takes its text out of the index: with rows not in it (indexing failing), retention
    deletes nothing and says why; once they are indexed it runs."""
    rng = random.Random(7)
    old = time.time_ns() - 48 * HOUR
    store.submit(_texts(_records(rng, 0, 100, old, old + HOUR), "fig")).result()
    with monkeypatch.context() as patch:
        patch.setattr(store.writer, "_index", lambda: None)
        store.submit(_texts(_records(rng, 1000, 100, old + 30 * HOUR, old + 31 * HOUR), "fig")).result()
        with pytest.raises(StoreError, match="index is behind"):
            store.writer.retain(Retention(max_age_s=36 * 3600)).result()
    assert store.writer.retain(Retention(max_age_s=36 * 3600)).result() == 100
    assert _found(store, "fig") == 100
    _fts_check(store)


def test_reads_do_not_wait_while_indexing_fails_and_the_rows_are_indexed_after(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)
    base = time.time_ns() // HOUR * HOUR - 2 * HOUR
    with monkeypatch.context() as patch:
        patch.setattr(_writer, "_INDEX_RANGE", "INSERT INTO no_such_table VALUES (?, ?)")
        store.submit(_texts(_records(rng, 0, 100, base, base + HOUR), "pear")).result()
        started = time.monotonic()
        assert store.writer.wait_indexed(60) is False
        assert time.monotonic() - started < 30  # told at once that the index is behind, not after the timeout
        assert store.read(lambda conn: conn.execute("SELECT count(*) FROM spans").fetchone()[0]) == 100
    store.submit(_texts(_records(rng, 1000, 100, base, base + HOUR), "pear")).result()
    assert _found(store, "pear") == 200
    _fts_check(store)


def test_the_cli_reading_the_file_waits_for_the_index_and_once_for_a_stopped_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spyglass.store._source import LocalSource

    _left_unindexed(tmp_path / "c.db", monkeypatch, random.Random(7), 40, "fig")
    source = LocalSource(tmp_path / "c.db")
    source.index_wait_s = 0.3
    started = time.monotonic()
    assert source.search({"q": ["fig"]}, sort="-start", limit=100)["items"] == []  # nobody indexes them
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    source.search({"q": ["fig"]}, sort="-start", limit=100)
    assert time.monotonic() - started < 0.25  # a stopped writer is waited for once
    # A writer that indexes while the CLI waits: the search finds every acknowledged span.
    waiting = LocalSource(tmp_path / "c.db")
    waiting.index_wait_s = 30.0
    opener = threading.Timer(0.2, lambda: Store(tmp_path / "c.db", pricer=False).close())
    opener.start()
    try:
        assert len(waiting.search({"q": ["fig"]}, sort="-start", limit=100)["items"]) == 40
    finally:
        opener.join()


def test_a_database_from_a_newer_spyglass_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    Store(tmp_path / "n.db", pricer=False).close()
    with sqlite3.connect(tmp_path / "n.db") as conn:
        conn.execute("INSERT INTO migrations (name, applied_ns) VALUES ('9999_from_the_future', 0)")
    conn.close()
    with pytest.raises(StoreError, match=r"newer Spyglass.*9999_from_the_future"):
        Store(tmp_path / "n.db", pricer=False)
