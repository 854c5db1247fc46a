"""Spyglass's upload hook: LM-call content written to files, references on the span.

For people who keep prompts and responses out of their tracing backend: with
``OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK=spyglass_upload`` (or ``completion_hook=UploadCompletionHook(...)``)
every LM call's messages go to ``OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH`` and the span carries
``gen_ai.input.messages_ref``, ``gen_ai.output.messages_ref``, ``gen_ai.system_instructions_ref`` and
``gen_ai.tool.definitions_ref`` (util-genai's names and file layout, so readers of either hook's output
read both). Combine it with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=NO_CONTENT`` to keep only
the references on the span.

Contract
--------
- Files: ``{id}_inputs.{fmt}``, ``{id}_outputs.{fmt}`` (``id``: 32 hex digits, a random per-process prefix
  and a counter, where util-genai uses a ``uuid4``), ``{sha256}_system_instruction.{fmt}`` and
  ``{sha256}_tool.definitions.{fmt}`` (instructions and tool lists are content-addressed, so a system prompt
  sent a million times is written once per process). ``json``: one JSON array per file, exactly the value
  the span attribute would hold, before the size limit (binary payloads are placeholders, as on spans).
  ``jsonl``: one item per line with an ``index``.
- The base path is a local directory (no extra dependency) or, with ``fsspec`` installed
  (``pip install 'spyglass[upload]'``), any fsspec URL. Like util-genai's hook, files are written in place:
  a reader that finds a file not yet parseable is looking at one still being written (the reference is on
  the span before the file is complete).
  Construction writes and removes a probe file and raises :class:`ValueError` if it cannot.
- Writes run in the background: for a local directory one thread writes whatever has queued up (it waits
  20 ms after waking, so files of calls close together share a wake-up); for an fsspec store four threads
  write one file each. At most ``max_queue_size`` files wait or run at once; past that a
  file is dropped, counted in :attr:`UploadCompletionHook.dropped` (and logged once) and gets no reference.
  A write that fails is counted in :attr:`UploadCompletionHook.failed` (logged once); its reference, already
  on the span, then points at nothing.
  :meth:`force_flush` waits for the queue; :meth:`shutdown` (also at interpreter exit) flushes and stops.
- ``on_completion`` never blocks on I/O; the message lists it receives are serialized by the writer (the
  instrumentation never changes them after the call).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import logging
import os
import posixpath
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.trace import Span

from spyglass.semconv import environment as env
from spyglass.semconv import gen_ai
from spyglass.semconv.messages import dumps

from ._config import (
    DEFAULT_UPLOAD_FORMAT,
    DEFAULT_UPLOAD_MAX_QUEUE_SIZE,
    UPLOAD_FORMATS,
    load_upload_settings,
)

_log = logging.getLogger("spyglass.instrumentation")

_Item = tuple[str, str, Callable[[], str], bool]
"""A file to write: (reference attribute, file name, renders the file's text, content-addressed)."""
_LINGER = 0.02
"""Seconds a local writer waits after waking, so files of calls close together are written in one batch."""
_REMOTE_THREADS = 4
"""Writer threads for an fsspec store (network round trips overlap); a local directory uses one."""
_SEEN = 1024
"""Content-addressed files remembered as written (an LRU)."""


class _LocalStore:
    """A local directory, written with plain ``os`` calls (no temporary file: a rename costs more than the
    write itself on ext4, measured in ``benchmarks/hooks.py``)."""

    def __init__(self, base: str) -> None:
        path = base[len("file://") :] if base.startswith("file://") else base
        self.root = Path(path).expanduser().resolve()
        self._dir = str(self.root)
        self._uri = self.root.as_uri().rstrip("/") + "/"  # file names are [0-9a-z_.]: nothing to quote

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def url(self, name: str) -> str:
        return self._uri + name

    def write(self, name: str, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        fd = os.open(os.path.join(self._dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class _FsspecStore:
    """Any fsspec URL (``s3://``, ``gs://``, ``memory://``...)."""

    def __init__(self, base: str) -> None:
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ValueError(
                f"{env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH}={base!r} needs fsspec: "
                "pip install 'spyglass[upload]' (or use a local directory)"
            ) from exc
        self.fs, self.root = fsspec.url_to_fs(base)

    def prepare(self) -> None:
        # Object stores have no directories: the probe write decides.
        with contextlib.suppress(Exception):
            self.fs.makedirs(self.root, exist_ok=True)

    def url(self, name: str) -> str:
        return str(self.fs.unstrip_protocol(posixpath.join(self.root, name)))

    def write(self, name: str, text: str) -> None:
        with self.fs.open(posixpath.join(self.root, name), "w", encoding="utf-8") as f:
            f.write(text)

    def remove(self, name: str) -> None:
        with contextlib.suppress(Exception):  # a store that forbids deletes keeps the probe file
            self.fs.rm_file(posixpath.join(self.root, name))


def _store_for(base: str) -> _LocalStore | _FsspecStore:
    scheme, sep, _ = base.partition("://")
    if not sep or scheme == "file":
        return _LocalStore(base)
    return _FsspecStore(base)


class UploadCompletionHook:
    """Writes each LM call's messages to files and puts their URLs on the span; see the module docstring."""

    spyglass_message_dicts = True
    """Take Spyglass's message dicts as they are (see :mod:`._hooks`)."""

    def __init__(
        self,
        base_path: str,
        *,
        upload_format: str = DEFAULT_UPLOAD_FORMAT,
        max_queue_size: int = DEFAULT_UPLOAD_MAX_QUEUE_SIZE,
    ) -> None:
        if upload_format not in UPLOAD_FORMATS:
            raise ValueError(f"upload_format must be one of {UPLOAD_FORMATS}, got {upload_format!r}")
        if max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        self._store = _store_for(base_path)
        probe = f".spyglass-upload-probe-{uuid.uuid4().hex}.{upload_format}"
        try:
            self._store.prepare()
            self._store.write(probe, "\n")
        except Exception as exc:
            raise ValueError(f"cannot write to the upload base path {base_path!r}: {exc}") from exc
        self._store.remove(probe)
        self.format = upload_format
        self.max_queue_size = max_queue_size
        local = isinstance(self._store, _LocalStore)
        # A local disk: one thread writing whatever has queued up; a remote store: a few, one file each.
        self._queue = _WriteQueue(max_queue_size, self._write_all, threads=1 if local else _REMOTE_THREADS, batch=local)
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.uploaded = 0
        """Files written."""
        self.dropped = 0
        """Files not written because the queue was full (or the hook was shut down)."""
        self.failed = 0
        """Files whose write raised (logged once)."""
        self._names = _Names()
        atexit.register(self.shutdown)
        if hasattr(os, "register_at_fork"):
            # A forked child (gunicorn --preload, multiprocessing) inherits no pool threads and maybe a held
            # lock: give it fresh ones. Weak, so a discarded hook is not kept alive by the fork handler.
            ref = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())

    # --- the hook ------------------------------------------------------------------------------------
    def on_completion(
        self,
        *,
        inputs: list[Any],
        outputs: list[Any],
        system_instruction: list[Any],
        tool_definitions: list[Any] | None = None,
        span: Span | None = None,
        log_record: Any = None,
        **_: Any,
    ) -> None:
        refs: dict[str, str] = {}
        batch: list[_Item] = []
        uid: str | None = None
        for attr, value, suffix, addressed in (
            (gen_ai.INPUT_MESSAGES_REF, inputs, "inputs", False),
            (gen_ai.OUTPUT_MESSAGES_REF, outputs, "outputs", False),
            (gen_ai.SYSTEM_INSTRUCTIONS_REF, system_instruction, "system_instruction", True),
            (gen_ai.TOOL_DEFINITIONS_REF, tool_definitions, "tool.definitions", True),
        ):
            if not value:
                continue
            if addressed:
                # Serialized here to name the file by its content; json writes this very text.
                text = dumps(value)
                name = f"{hashlib.sha256(text.encode()).hexdigest()}_{suffix}.{self.format}"
                if self._already_written(name):
                    refs[attr] = self._store.url(name)
                    continue
                render: Callable[[], str] = _renderer(value, self.format, text)
            else:
                uid = uid or self._names.next()
                name = f"{uid}_{suffix}.{self.format}"
                render = _renderer(value, self.format, None)
            batch.append((attr, name, render, addressed))
            refs[attr] = self._store.url(name)
        if batch:
            taken = self._queue.offer(batch)
            for attr, name, _render, _addressed in batch[taken:]:
                del refs[attr]  # no reference to a file that will not exist
                self._drop(name)
        if not refs:
            return
        if span is not None:
            span.set_attributes(refs)
        if log_record is not None:
            log_record.attributes = {**(log_record.attributes or {}), **refs}

    # --- queue ---------------------------------------------------------------------------------------
    def _already_written(self, name: str) -> bool:
        with self._lock:
            if name in self._seen:
                self._seen.move_to_end(name)
                return True
            return False

    def _drop(self, name: str) -> None:
        with self._lock:
            self.dropped += 1
            first = self.dropped == 1
        if first:
            _log.warning(
                "spyglass upload hook: queue full (%d files), dropping %s; later drops are only counted "
                "(UploadCompletionHook.dropped)",
                self.max_queue_size,
                name,
            )

    def _write_all(self, batch: list[_Item]) -> None:
        for _, name, render, addressed in batch:
            try:
                self._store.write(name, render())
                with self._lock:
                    self.uploaded += 1
                    if addressed:
                        self._seen[name] = None
                        if len(self._seen) > _SEEN:
                            self._seen.popitem(last=False)
            except Exception as exc:
                with self._lock:
                    self.failed += 1
                    first = self.failed == 1
                if first:
                    _log.warning(
                        "spyglass upload hook: writing %s failed (later failures only counted)", name, exc_info=exc
                    )

    # --- lifecycle -----------------------------------------------------------------------------------
    def _after_fork(self) -> None:
        self._names = _Names()  # the parent goes on counting under its own prefix
        self._lock = threading.Lock()
        self._queue.reset()

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued file is written (or ``timeout`` seconds pass); true if the queue emptied."""
        return self._queue.flush(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush, then stop the writers; later calls to the hook drop and count. Idempotent."""
        self._queue.close(timeout)
        atexit.unregister(self.shutdown)


class _WriteQueue:
    """At most ``limit`` files queued or being written, drained by daemon threads started on first use.

    A thread takes everything queued (``batch``) or one file at a time. Waking a thread costs more than
    writing a small local file, so one thread draining in batches is the cheap case (``benchmarks/hooks.py``).
    """

    def __init__(self, limit: int, write: Callable[[list[_Item]], None], *, threads: int, batch: bool) -> None:
        self.limit = limit
        self._write = write
        self._threads = threads
        self._batch = batch
        self.reset()

    def reset(self) -> None:
        """Fresh state (also in a forked child, which inherits no threads and maybe a held lock)."""
        lock = threading.Lock()
        self._work = threading.Condition(lock)
        self._idle = threading.Condition(lock)
        self._items: deque[_Item] = deque()
        self._pending = 0
        """Files queued or being written."""
        self._workers: list[threading.Thread] = []
        self._closed = False

    def offer(self, items: list[_Item]) -> int:
        """Queue the longest prefix of ``items`` that fits; returns its length."""
        with self._work:
            if self._closed:
                return 0
            n = min(len(items), self.limit - self._pending)
            if n <= 0:
                return 0
            self._items.extend(items[:n])
            self._pending += n
            if not self._workers:
                for i in range(self._threads):
                    t = threading.Thread(target=self._run, name=f"spyglass-upload-{i}", daemon=True)
                    t.start()
                    self._workers.append(t)
            self._work.notify()
            return n

    def _run(self) -> None:
        items = self._items
        while True:
            with self._work:
                while not items and not self._closed:
                    self._work.wait()
                if not items:
                    return
                linger = self._batch and not self._closed
                take = [] if linger else [items.popleft()]
            if linger:
                time.sleep(_LINGER)  # let the next calls' files join this batch: one wake-up for many files
                with self._work:
                    take = list(items)
                    items.clear()
            if not take:
                continue
            try:
                self._write(take)
            finally:
                with self._work:
                    self._pending -= len(take)
                    if self._pending == 0:
                        self._idle.notify_all()

    def flush(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float) -> None:
        self.flush(timeout)
        with self._work:
            self._closed = True
            self._work.notify_all()


class _Names:
    """Unique file-name stems: a random per-process prefix and a counter (``uuid4`` per call costs a syscall)."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:20]
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"  # 32 hex digits, like a uuid4 hex


def _renderer(value: list[Any], fmt: str, text: str | None) -> Callable[[], str]:
    if fmt == "json":
        if text is not None:
            return lambda: text + "\n"
        return lambda: dumps(value) + "\n"
    # jsonl: an index per line, for streaming readers (util-genai's layout).
    return lambda: "".join(
        dumps({**item, "index": i} if isinstance(item, dict) else {"value": item, "index": i}) + "\n"
        for i, item in enumerate(value)
    )


def upload_completion_hook() -> UploadCompletionHook | None:
    """The ``spyglass_upload`` entry point: an :class:`UploadCompletionHook` configured from the environment.

    ``None`` (no hook, content not gathered for it) when ``OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH`` is
    unset; a base path that cannot be written raises, and the hook loader logs it and uses no hook.
    """
    settings = load_upload_settings()
    if settings.base_path is None:
        _log.warning(
            "%s=spyglass_upload needs %s; no hook is used",
            env.OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK,
            env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH,
        )
        return None
    return UploadCompletionHook(
        settings.base_path, upload_format=settings.upload_format, max_queue_size=settings.max_queue_size
    )


__all__ = ["UploadCompletionHook", "upload_completion_hook"]
