"""The writer's rollup cache (rows it wrote are not read back) never lets the rollups drift from the spans:
after a rolled-back transaction whose jobs are retried one by one, after another connection changed a rollup
row, after retention, and when the cache is trimmed to its bounds. Each check recomputes every rollup table
from the stored spans and compares it row by row."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from spyglass.store import Record, Retention, Store, _rollups

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
