"""A size-capped, ordered disk spool of encoded batches for when the backend stays down.

One file per batch, named ``<sequence>-<span count>.otlp`` and written atomically (temp file + rename), so a
crash never leaves a half batch and a later process resends what an earlier one spooled, in order. When a
new batch would exceed the cap, the oldest batches are deleted first and their spans counted as dropped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Spool", "SpooledBatch"]

_log = logging.getLogger(__name__)
_SUFFIX = ".otlp"
_FIRST_SEQ = 1_000_000_000


@dataclass(frozen=True)
class SpooledBatch:
    seq: int
    path: Path
    size: int
    spans: int


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("spool max_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._batches: deque[SpooledBatch] = deque()
        self._bytes = 0
        # Start high so put_front() can number batches below the oldest without going negative.
        self._next_seq = _FIRST_SEQ
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            try:
                seq_text, spans_text = path.stem.split("-", 1)
                batch = SpooledBatch(int(seq_text), path, path.stat().st_size, int(spans_text))
            except (ValueError, OSError):
                _log.warning("ignoring unexpected file in the spool: %s", path)
                continue
            self._batches.append(batch)
            self._bytes += batch.size
            self._next_seq = max(self._next_seq, batch.seq + 1)
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        if self._batches:
            _log.info("spool %s holds %d batches from an earlier run; resending", self.directory, len(self._batches))

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def spans(self) -> int:
        with self._lock:
            return sum(b.spans for b in self._batches)

    def put(self, payload: bytes, spans: int, *, front: bool = False) -> int:
        """Append a batch (or put it before all others: a batch that was in flight when the backend failed).

        Returns how many spans were dropped: the oldest first, or this batch if it alone is over the cap.
        """
        size = len(payload)
        if size > self.max_bytes:
            return spans
        dropped = 0
        with self._lock:
            while self._batches and self._bytes + size > self.max_bytes:
                old = self._batches.popleft()
                self._bytes -= old.size
                dropped += old.spans
                old.path.unlink(missing_ok=True)
            if front and self._batches:
                seq = self._batches[0].seq - 1
            else:
                seq = self._next_seq
                self._next_seq += 1
            path = self.directory / f"{seq:016d}-{spans}{_SUFFIX}"
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)
            batch = SpooledBatch(seq, path, size, spans)
            if front:
                self._batches.appendleft(batch)
            else:
                self._batches.append(batch)
            self._bytes += size
        return dropped

    def peek(self) -> tuple[SpooledBatch, bytes] | None:
        """The oldest batch and its bytes (unreadable files are skipped and reported as dropped via ``pop``)."""
        with self._lock:
            if not self._batches:
                return None
            batch = self._batches[0]
        try:
            return batch, batch.path.read_bytes()
        except OSError as exc:
            _log.error("spooled batch %s unreadable (%s); dropping it", batch.path, exc)
            return batch, b""

    def pop(self, batch: SpooledBatch) -> None:
        with self._lock:
            if self._batches and self._batches[0].seq == batch.seq:
                self._batches.popleft()
                self._bytes -= batch.size
        batch.path.unlink(missing_ok=True)
