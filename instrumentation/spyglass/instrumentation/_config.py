"""Instrumentation settings, read from the environment once, at ``instrument()`` time.

Contract
--------
:func:`load_settings` reads every variable the LM-call instrumentation understands and returns a frozen
:class:`Settings`. Nothing on a hot path reads ``os.environ``: instrumentors build one ``Settings`` in
``_instrument`` and hand it down (to :class:`~spyglass.instrumentation._telemetry.LLMTelemetry`, the content
policy, the stream wrappers). Bad values are logged once and replaced by the default; explicit keyword
arguments to ``instrument()`` win over the environment.

Variables (names in :mod:`spyglass.semconv.environment`):

- ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: ``NO_CONTENT`` | ``SPAN_ONLY`` (Spyglass default) |
  ``EVENT_ONLY`` | ``SPAN_AND_EVENT``, plus ``true`` (= ``SPAN_ONLY``) and ``false`` (= ``NO_CONTENT``).
- ``OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT``: emit ``gen_ai.client.inference.operation.details``; default
  true for the ``EVENT`` modes.
- ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``, else ``OTEL_SPYGLASS_CONTENT_MAX_LENGTH`` (default 65536): the
  largest content attribute, in characters.
- ``OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE``: opt-in; add ``stream_options.include_usage`` to OpenAI
  streams that did not ask for it (and hide the extra usage-only chunk from the caller).
- ``OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK``: the completion hook's entry-point name (see ``_hooks``).
- ``OTEL_INSTRUMENTATION_GENAI_UPLOAD_*``: the upload hook's settings, read by :func:`load_upload_settings`
  when that hook is created.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spyglass.semconv import environment as env
from spyglass.semconv.values import ContentCapture

_log = logging.getLogger(__name__)

DEFAULT_CONTENT_MAX_LENGTH = 65536
"""Characters; the content size limit when neither length variable is set."""
DEFAULT_CAPTURE = ContentCapture.SPAN_ONLY
"""Spyglass captures content on spans by default (the official default is ``NO_CONTENT``)."""

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class Settings:
    """Everything the LM-call instrumentation needs from configuration, resolved once."""

    capture: ContentCapture = DEFAULT_CAPTURE
    emit_event: bool = False
    content_max_length: int = DEFAULT_CONTENT_MAX_LENGTH
    openai_stream_include_usage: bool = False
    completion_hook: str | None = None
    """Entry-point name of the completion hook (``None``: no hook unless ``instrument()`` passes one)."""

    @property
    def capture_on_span(self) -> bool:
        return self.capture in (ContentCapture.SPAN_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def capture_on_event(self) -> bool:
        return self.capture in (ContentCapture.EVENT_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def capture_any(self) -> bool:
        """Whether any path records message content (one switch turns every path off)."""
        return self.capture is not ContentCapture.NO_CONTENT


def parse_capture(value: str | None) -> ContentCapture:
    """The capture mode for a variable value; unknown values warn and fall back to the Spyglass default."""
    if value is None or not value.strip():
        return DEFAULT_CAPTURE
    v = value.strip()
    low = v.lower()
    if low in _TRUE:
        return ContentCapture.SPAN_ONLY
    if low in _FALSE:
        return ContentCapture.NO_CONTENT
    try:
        return ContentCapture(v.upper())
    except ValueError:
        _log.warning(
            "%s=%r is not one of %s or true/false; using %s",
            env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
            value,
            ", ".join(m.value for m in ContentCapture),
            DEFAULT_CAPTURE.value,
        )
        return DEFAULT_CAPTURE


def _parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    _log.warning("%s=%r is not a boolean; using %s", name, value, default)
    return default


def _parse_positive_int(name: str, value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        n = int(value.strip())
    except ValueError:
        n = 0
    if n <= 0:
        _log.warning("%s=%r is not a positive integer; ignored", name, value)
        return None
    return n


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the environment (``os.environ`` unless given) once; keyword ``overrides`` win.

    Accepted overrides: ``capture`` (a :class:`ContentCapture` or its string), ``emit_event``,
    ``content_max_length``, ``openai_stream_include_usage``. An override that is ``None`` is ignored; a bad
    override raises :class:`ValueError` (arguments are the programmer's, the environment is the operator's).
    """
    e = os.environ if environ is None else environ
    capture = parse_capture(e.get(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT))
    emit_default = capture in (ContentCapture.EVENT_ONLY, ContentCapture.SPAN_AND_EVENT)
    emit_event = _parse_bool(
        env.OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT, e.get(env.OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT), emit_default
    )
    limit = _parse_positive_int(
        env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, e.get(env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    ) or _parse_positive_int(env.OTEL_SPYGLASS_CONTENT_MAX_LENGTH, e.get(env.OTEL_SPYGLASS_CONTENT_MAX_LENGTH))
    include_usage = _parse_bool(
        env.OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE, e.get(env.OTEL_SPYGLASS_OPENAI_STREAM_INCLUDE_USAGE), False
    )
    hook = (e.get(env.OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK) or "").strip() or None
    settings = Settings(
        capture=capture,
        emit_event=emit_event,
        content_max_length=limit or DEFAULT_CONTENT_MAX_LENGTH,
        openai_stream_include_usage=include_usage,
        completion_hook=hook,
    )
    kw = {k: v for k, v in overrides.items() if v is not None}
    if "capture" in kw:
        c = kw["capture"]
        if isinstance(c, bool):
            c = ContentCapture.SPAN_ONLY if c else ContentCapture.NO_CONTENT
        elif isinstance(c, str) and c.strip().lower() in _TRUE | _FALSE:
            c = parse_capture(c)
        kw["capture"] = c if isinstance(c, ContentCapture) else ContentCapture(str(c).upper())
        if "emit_event" not in kw:
            kw["emit_event"] = kw["capture"] in (ContentCapture.EVENT_ONLY, ContentCapture.SPAN_AND_EVENT)
    if "content_max_length" in kw and int(kw["content_max_length"]) <= 0:
        raise ValueError("content_max_length must be a positive number of characters")
    unknown = set(kw) - {"capture", "emit_event", "content_max_length", "openai_stream_include_usage"}
    if unknown:
        raise ValueError(f"unknown settings: {sorted(unknown)}")
    if kw:
        settings = Settings(**{**settings.__dict__, **kw})
    return settings


UPLOAD_FORMATS = ("json", "jsonl")
DEFAULT_UPLOAD_FORMAT = "json"
DEFAULT_UPLOAD_MAX_QUEUE_SIZE = 20
"""Uploads waiting or running at once (util-genai's default); more are dropped and counted."""


@dataclass(frozen=True)
class UploadSettings:
    """The upload hook's configuration (``base_path`` ``None``: not configured)."""

    base_path: str | None
    upload_format: str = DEFAULT_UPLOAD_FORMAT
    max_queue_size: int = DEFAULT_UPLOAD_MAX_QUEUE_SIZE


def load_upload_settings(environ: Mapping[str, str] | None = None) -> UploadSettings:
    """Read the ``OTEL_INSTRUMENTATION_GENAI_UPLOAD_*`` variables once; bad values warn and use the default."""
    e = os.environ if environ is None else environ
    base = (e.get(env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH) or "").strip() or None
    fmt = (e.get(env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_FORMAT) or "").strip().lower() or DEFAULT_UPLOAD_FORMAT
    if fmt not in UPLOAD_FORMATS:
        _log.warning(
            "%s=%r is not one of %s; using %s",
            env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_FORMAT,
            fmt,
            ", ".join(UPLOAD_FORMATS),
            DEFAULT_UPLOAD_FORMAT,
        )
        fmt = DEFAULT_UPLOAD_FORMAT
    size = _parse_positive_int(
        env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_MAX_QUEUE_SIZE,
        e.get(env.OTEL_INSTRUMENTATION_GENAI_UPLOAD_MAX_QUEUE_SIZE),
    )
    return UploadSettings(base, fmt, size or DEFAULT_UPLOAD_MAX_QUEUE_SIZE)
