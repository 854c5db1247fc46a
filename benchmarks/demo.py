"""How long ``spyglass demo`` takes to show a populated UI, against the same sample app run untraced.

Each round, interleaved so machine noise hits both alike:

- baseline: ``python -m spyglass.testing.sample_app`` (replay server, no tracing, no store), start to exit;
- demo: ``spyglass demo`` on free ports and a fresh database, from start to the moment ``/api/v1/requests``
  returns every LLM call of the run (the "populated UI" the README promises within 30 seconds).

Usage: ``python benchmarks/demo.py [--rounds 3]``. Prints a table with the medians and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from spyglass.testing.sample_app import CALLS

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_"))}


def baseline() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "spyglass.testing.sample_app"], env=CLEAN_ENV, check=True, capture_output=True
    )
    return time.perf_counter() - start


def demo(workdir: Path) -> tuple[float, float]:
    """Seconds until the demo printed its URL, and until the API listed every call."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "spyglass.store", "demo", "--port", "0", "--otlp-grpc-port", "0"]
    command += ["--otlp-http-port", "0", "--db", str(workdir / "demo.db")]
    process = subprocess.Popen(command, env=CLEAN_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    api = ""
    url_at = populated_at = 0.0
    try:
        while not populated_at:
            if time.perf_counter() - start > 120:
                raise RuntimeError("the demo did not populate the store within 120 s")
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                line = ""
            if "API and UI" in line:
                api = line.split()[-1].rstrip("/")
            if line.startswith("demo: open "):
                url_at = time.perf_counter() - start
            if api:
                try:
                    with urllib.request.urlopen(f"{api}/api/v1/requests?limit=100", timeout=2) as r:
                        if len(json.loads(r.read())["items"]) >= CALLS:
                            populated_at = time.perf_counter() - start
                except OSError:
                    pass
        while not url_at:
            if lines.get(timeout=30).startswith("demo: open "):
                url_at = time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    return url_at, populated_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base, url, populated = [], [], []
    for i in range(args.rounds):
        base.append(baseline())
        with tempfile.TemporaryDirectory() as tmp:
            u, p = demo(Path(tmp))
        url.append(u)
        populated.append(p)
        print(f"round {i + 1}: untraced app {base[-1]:.2f} s, demo URL {u:.2f} s, populated {p:.2f} s", flush=True)
    b, u, p = statistics.median(base), statistics.median(url), statistics.median(populated)
    print()
    print(f"| what (median of {args.rounds} rounds) | seconds | vs untraced app |")
    print("| --- | --- | --- |")
    print(f"| sample app alone, untraced ({CALLS} LLM calls on the replay server) | {b:.2f} | 1.00x |")
    print(f"| `spyglass demo`: every call visible in the store's API | {p:.2f} | {p / b:.2f}x |")
    print(f"| `spyglass demo`: UI URL printed | {u:.2f} | {u / b:.2f}x |")


if __name__ == "__main__":
    main()
