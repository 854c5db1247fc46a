"""The trace store's writer alone: CPU and wall time per span, against another copy of the store code.

    python benchmarks/store_writer.py [--spans 20000] [--rounds 3] [--prev /tmp/prev_store/store]

Each measurement is a fresh child process on a fresh database on disk. Before the clock starts, the child
builds ``benchmarks/store.py``'s spans (2 KB prompt and response, six models, five tenants, time-ordered
through a week), decodes them (``to_records`` with the exporter's pricing) and prepares their rows, 500 per
request as the senders send them. Then three submitter threads (the three senders of ``store.py``) each
submit a request and wait for its commit, as the receivers do, until every span is written (and its text
indexed, where that comes after the acknowledgement). Reported: wall time, the writer thread's CPU time
(user + system, from ``/proc``) and the whole process's CPU, per span.

``--busy`` runs each variant also with one more thread spinning in Python beside the writer (a request
thread decoding): sqlite3 gives the GIL up around every statement it steps, so the writer's wall time then
depends on how many statements it runs. ``--prev`` points at another checkout's ``store`` directory (for
example ``git archive <commit> store | tar -x -C /tmp/prev``), run as the baseline in the same rounds,
interleaved. Medians and per-round ranges are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SENDERS = 3


def _thread_cpu(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _requests(spans: int, as_of: int) -> list[list[Any]]:
    """Prepared rows, one list per 500-span request, the senders' requests interleaved.

    The first ``spans`` of a load of ``as_of`` spans: time advances through the week as it does in
    ``store.py --spans <as_of>``, so each transaction touches as many rollup cells as it does there.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spyglass.store._otlp import to_records
    from spyglass.store._store import exporter_pricer
    from spyglass.store._writer import prepare

    spec = importlib.util.spec_from_file_location("store_bench", HERE / "store.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pricer = exporter_pricer()
    n = -(-spans // (SENDERS * bench.BATCH))
    per_sender = [list(itertools.islice(bench._batches(w, as_of // SENDERS, seed=w), n)) for w in range(SENDERS)]
    out: list[list[Any]] = []
    for batch in zip(*per_sender, strict=False):
        for payload in batch:
            records = to_records(ExportTraceServiceRequest.FromString(payload), tenant=None, pricer=pricer).records
            out.append([prepare(r) for r in records])
    return out


def child(spans: int, as_of: int, busy: bool, switch_ms: float | None) -> dict[str, float]:
    from spyglass.store._writer import Writer

    if switch_ms is not None:
        sys.setswitchinterval(switch_ms / 1000)

    requests = _requests(spans, as_of)
    total = sum(len(r) for r in requests)
    with tempfile.TemporaryDirectory(dir=os.environ.get("SPYGLASS_BENCH_DIR")) as tmp:
        writer = Writer(str(Path(tmp) / "w.db"))
        stop = threading.Event()

        def spin() -> None:
            x = 0
            while not stop.is_set():
                for _ in range(1000):
                    x += 1

        def sender(mine: list[Any]) -> None:
            for rows in mine:
                writer.submit(rows).result()

        if busy:
            threading.Thread(target=spin, daemon=True).start()
        assert writer._thread.native_id is not None
        tid = writer._thread.native_id
        threads = [threading.Thread(target=sender, args=(requests[i::SENDERS],)) for i in range(SENDERS)]
        cpu0, wcpu0, t0 = time.process_time(), _thread_cpu(tid), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if hasattr(writer, "wait_indexed"):  # text indexed after the acknowledgement: until it is all in
            writer.wait_indexed(600)
        wall, wcpu, cpu = time.perf_counter() - t0, _thread_cpu(tid) - wcpu0, time.process_time() - cpu0
        stop.set()
        writer.close()
    us = 1e6 / total
    return {"spans": total, "wall_us": wall * us, "writer_cpu_us": wcpu * us, "process_cpu_us": cpu * us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--as-of", type=int, default=1_000_000, help="time advances as in a load of this size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prev", type=Path, default=None, help="the baseline's store directory (on PYTHONPATH)")
    parser.add_argument("--busy", action="store_true", help="also measure beside a busy Python thread")
    parser.add_argument("--switch-ms", type=float, default=None, help="sys.setswitchinterval in the children (ms)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.spans, args.as_of, args.busy, args.switch_ms)))
        return
    codes = [("this code", None)] + ([("baseline", args.prev)] if args.prev else [])
    modes = [False, True] if args.busy else [False]
    results: dict[tuple[str, bool], list[dict[str, float]]] = {(c, b): [] for c, _ in codes for b in modes}
    for r in range(args.rounds):
        order = codes if r % 2 == 0 else codes[::-1]
        for busy in modes:
            for label, path in order:
                env = dict(os.environ)
                if path is not None:
                    env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
                cmd = [sys.executable, __file__, "--child", "--spans", str(args.spans), "--as-of", str(args.as_of)]
                cmd += ["--busy"] if busy else []
                cmd += ["--switch-ms", str(args.switch_ms)] if args.switch_ms is not None else []
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                res = json.loads(out.strip().splitlines()[-1])
                results[(label, busy)].append(res)
                print(f"round {r + 1} {label:9} busy={busy!s:5} " + " ".join(f"{k}={v:.1f}" for k, v in res.items()))
    spans = int(next(iter(results.values()))[0]["spans"])  # whole requests: --spans rounded up
    print(f"\n{spans:,} spans per run (time as in a {args.as_of:,}-span load), ", end="")
    print(f"medians of {args.rounds} interleaved rounds [range]\n")
    print("| code | busy thread | wall µs/span | writer CPU µs/span | process CPU µs/span |")
    print("| --- | --- | --: | --: | --: |")
    for busy in modes:
        for label, _ in codes:
            runs = results[(label, busy)]
            cells = []
            for key in ("wall_us", "writer_cpu_us", "process_cpu_us"):
                values = [x[key] for x in runs]
                cells.append(f"{statistics.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]")
            print(f"| {label} | {'yes' if busy else 'no'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
