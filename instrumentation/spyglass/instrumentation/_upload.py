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
- Files: ``{uuid}_inputs.{fmt}``, ``{uuid}_outputs.{fmt}``, ``{sha256}_system_instruction.{fmt}`` and
  ``{sha256}_tool.definitions.{fmt}`` (instructions and tool lists are content-addressed, so a system prompt
  sent a million times is written once per process). ``json``: one JSON array per file, exactly the value
  the span attribute would hold, before the size limit (binary payloads are placeholders, as on spans).
  ``jsonl``: one item per line with an ``index``.
- The base path is a local directory (no extra dependency; files appear atomically, written to a temporary
  name and renamed) or, with ``fsspec`` installed (``pip install 'spyglass[upload]'``), any fsspec URL.
  Construction writes and removes a probe file and raises :class:`ValueError` if it cannot.
- Writes run on a small background pool. At most ``max_queue_size`` files wait or run at once; past that a
  file is dropped, counted in :attr:`UploadCompletionHook.dropped` (and logged once) and gets no reference.
  :meth:`force_flush` waits for the queue; :meth:`shutdown` (also at interpreter exit) flushes and stops.
- ``on_completion`` never blocks on I/O; the message lists it receives are serialized on the pool (the
  instrumentation never changes them after the call).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import posixpath
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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

_WORKERS = 4
"""Upload threads; a few cover local disks and object stores without competing with the application."""
_SEEN = 1024
"""Content-addressed files remembered as written (an LRU)."""


class _LocalStore:
    """A local directory: temporary file, then an atomic rename."""

    def __init__(self, base: str) -> None:
        path = base[len("file://") :] if base.startswith("file://") else base
        self.root = Path(path).expanduser().resolve()

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def url(self, name: str) -> str:
        return (self.root / name).as_uri()

    def write(self, name: str, text: str) -> None:
        final = self.root / name
        tmp = self.root / f".{name}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, final)

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
        self._slots = threading.BoundedSemaphore(max_queue_size)
        self._executor = ThreadPoolExecutor(
            max_workers=min(max_queue_size, _WORKERS), thread_name_prefix="spyglass-upload"
        )
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.uploaded = 0
        """Files written."""
        self.dropped = 0
        """Files not written because the queue was full (or the hook was shut down)."""
        self.failed = 0
        """Files whose write raised (logged once)."""
        self._closed = False
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
                uid = uid or uuid.uuid4().hex
                name = f"{uid}_{suffix}.{self.format}"
                render = _renderer(value, self.format, None)
            if self._submit(name, render, addressed):
                refs[attr] = self._store.url(name)
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

    def _submit(self, name: str, render: Callable[[], str], addressed: bool) -> bool:
        if self._closed or not self._slots.acquire(blocking=False):
            self._drop(name)
            return False
        try:
            future = self._executor.submit(self._write, name, render, addressed)
        except RuntimeError:  # the pool was shut down meanwhile
            self._slots.release()
            self._drop(name)
            return False
        future.add_done_callback(self._done)
        return True

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

    def _write(self, name: str, render: Callable[[], str], addressed: bool) -> None:
        self._store.write(name, render())
        with self._lock:
            self.uploaded += 1
            if addressed:
                self._seen[name] = None
                if len(self._seen) > _SEEN:
                    self._seen.popitem(last=False)

    def _done(self, future: Future[None]) -> None:
        self._slots.release()
        exc = future.exception()
        if exc is not None:
            with self._lock:
                self.failed += 1
                first = self.failed == 1
            if first:
                _log.warning("spyglass upload hook: writing a file failed (later failures only counted)", exc_info=exc)

    # --- lifecycle -----------------------------------------------------------------------------------
    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_queue_size)
        self._executor = ThreadPoolExecutor(
            max_workers=min(self.max_queue_size, _WORKERS), thread_name_prefix="spyglass-upload"
        )

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued file is written (or ``timeout`` seconds pass); true if the queue emptied."""
        deadline = time.monotonic() + timeout
        taken = 0
        try:
            while taken < self.max_queue_size:
                if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return False
                taken += 1
            return True
        finally:
            for _ in range(taken):
                self._slots.release()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush, then stop the pool; later calls to the hook drop and count. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.force_flush(timeout)
        self._executor.shutdown(wait=False)
        atexit.unregister(self.shutdown)


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
