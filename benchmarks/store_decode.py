"""The trace store's request side alone: OTLP body -> records -> rows ready for the writer, CPU per span.

    python benchmarks/store_decode.py [--spans 10000] [--rounds 5] [--baseline /tmp/prev/store] [--no-orjson]

Times what a receiving thread does per span before the writer takes over: protobuf decoding
(``decode_protobuf``), normalising into records with pricing (``to_records`` with the store's pricer) and
preparing the rows (``prepare``: packing, JSON). The spans are ``benchmarks/store.py``'s (2 KB prompt and
2 KB response as ``gen_ai`` message JSON, 5 % errors), in its batches of 500.

Each variant runs in its own process (``PYTHONPATH`` puts a checkout's ``store`` directory first); the
variants alternate round by round so that they share the machine's load, and each round reports thread CPU
time per span (``time.thread_time``) after a warm-up pass. ``--baseline DIR`` names a ``store`` directory of
older code (``git archive <commit> store | tar -x -C /tmp/prev``) to compare with the working tree;
``--no-orjson`` adds the working tree with orjson turned off (what a store without the ``speedups`` extra
does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STORE_DIR = HERE.parent / "store"

_CHILD = r"""
import json, sys, time
from spyglass.store._otlp import decode_protobuf, to_records
from spyglass.store._store import exporter_pricer
from spyglass.store._writer import prepare

payloads = []
with open(sys.argv[1], "rb") as f:
    data = f.read()
at = 0
while at < len(data):
    n = int.from_bytes(data[at : at + 4], "big")
    payloads.append(data[at + 4 : at + 4 + n])
    at += 4 + n
passes = int(sys.argv[2])
if sys.argv[3] == "no-orjson":
    from spyglass.semconv import _fastjson
    _fastjson.ORJSON = None
pricer = exporter_pricer()

def one_pass():
    t_dec = t_norm = t_prep = 0.0
    spans = 0
    for body in payloads:
        t0 = time.thread_time()
        req = decode_protobuf(body)
        t1 = time.thread_time()
        decoded = to_records(req, tenant=None, pricer=pricer)
        t2 = time.thread_time()
        rows = [prepare(r) for r in decoded.records]
        t3 = time.thread_time()
        t_dec += t1 - t0
        t_norm += t2 - t1
        t_prep += t3 - t2
        spans += len(rows)
    return spans, t_dec, t_norm, t_prep

one_pass()  # warm-up: imports, the pricing cache
best = None
for _ in range(passes):
    spans, *times = one_pass()
    if best is None or sum(times) < sum(best):
        best = times
print(json.dumps({"spans": spans, "decode_us": best[0] / spans * 1e6, "normalise_us": best[1] / spans * 1e6,
                  "prepare_us": best[2] / spans * 1e6}))
"""


def _write_payloads(path: Path, spans: int) -> None:
    sys.path.insert(0, str(HERE))
    from store import _batches  # benchmarks/store.py

    with path.open("wb") as f:
        for body in _batches(0, spans, seed=0):
            f.write(len(body).to_bytes(4, "big") + body)


def _run(store_dir: Path, payloads: Path, passes: int, mode: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(store_dir), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(payloads), str(passes), mode],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["total_us"] = result["decode_us"] + result["normalise_us"] + result["prepare_us"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=2, help="timed passes per round (the fastest counts)")
    parser.add_argument("--baseline", type=Path, help="a `store` directory of older code to compare with")
    parser.add_argument("--no-orjson", action="store_true", help="also the working tree with orjson turned off")
    args = parser.parse_args()

    variants: dict[str, tuple[Path, str]] = {}
    if args.baseline:
        variants["baseline"] = (args.baseline, "")
    variants["current"] = (STORE_DIR, "")
    if args.no_orjson:
        variants["no-orjson"] = (STORE_DIR, "no-orjson")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        payloads = Path(tmp) / "payloads.bin"
        _write_payloads(payloads, args.spans)
        for i in range(args.rounds):
            order = list(variants.items())
            if i % 2:
                order.reverse()
            for name, (store_dir, mode) in order:
                r = _run(store_dir, payloads, args.passes, mode)
                results[name].append(r)
                print(
                    f"round {i + 1} {name:>9}: total {r['total_us']:6.1f} us/span "
                    f"(decode {r['decode_us']:5.1f}, normalise {r['normalise_us']:5.1f}, "
                    f"prepare {r['prepare_us']:5.1f})",
                    flush=True,
                )
    print(f"\n{args.spans} spans, {args.rounds} rounds, CPU us per span: median [min-max]")
    for name, rs in results.items():
        cols = []
        for key in ("total_us", "decode_us", "normalise_us", "prepare_us"):
            values = [r[key] for r in rs]
            cols.append(f"{key[:-3]} {statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]")
        print(f"{name:>9}: " + ", ".join(cols))
    if args.baseline:
        ratios = [c["total_us"] / b["total_us"] for b, c in zip(results["baseline"], results["current"], strict=True)]
        per_round = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"current / baseline, per round: {per_round}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
