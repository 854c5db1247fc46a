"""The one content policy: every prompt, response or step payload Spyglass records goes through here.

Contract
--------
- :class:`ContentPolicy` is built once from :class:`~spyglass.instrumentation._config.Settings`.
  ``policy.on_span`` / ``policy.on_event`` say whether content goes to span attributes / to the
  ``gen_ai.client.inference.operation.details`` event; ``policy.hooked`` that a completion hook takes the
  content. ``policy.any`` is false under ``NO_CONTENT`` without a hook, and then nothing else here is called
  (callers skip building messages at all).
- :meth:`ContentPolicy.encode` turns a JSON-able value (message list, parts, a step's arguments) into a JSON
  string of at most ``limit`` characters. A value that fits is the plain :func:`spyglass.semconv.dumps`
  output. A value that does not is cut **structurally**, so the result is still valid JSON of the same
  shape: the longest strings are shortened first, and a part whose text was cut carries
  ``"spyglass.truncated": true`` and ``"spyglass.original_size": <chars>`` (names in
  :mod:`spyglass.semconv.extensions`). If cutting strings is not enough, trailing list items are dropped and
  a marker text part/item is left in their place. ``encode`` returns ``(json, truncated)``.
- :func:`blob_part` builds the ``blob`` part for inline base64 data (images, audio, documents): the base64
  content is **never** recorded; it is replaced by ``""`` with ``"spyglass.omitted": true``, the mime type
  and the decoded ``byte_size``. :func:`data_url_part` does the same for ``data:`` URLs and returns a ``uri``
  part for ordinary URLs.

Used by the SDK adapters, the stream accumulators, the HTTP-level instrumentor and the Steps API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spyglass.semconv import extensions as ext
from spyglass.semconv._fastjson import orjson_text
from spyglass.semconv.messages import BlobPart, Part, UriPart, base64_decoded_size, dumps

from ._config import Settings

_MARKER_OVERHEAD = 64
"""Room for the truncation marker properties added to a cut part."""
_MAX_ROUNDS = 6


def _compact_json(value: Any) -> str:
    """:func:`dumps` ``(value)``, the same text, through orjson when that is certain to give it (the
    `speedups` extra; :mod:`spyglass.semconv._fastjson`)."""
    return orjson_text(value) or dumps(value)


def blob_part(b64: str | bytes, modality: str, mime_type: str | None) -> BlobPart:
    """A ``blob`` part with the base64 payload omitted (mime type and decoded byte size kept)."""
    size = len(b64) if isinstance(b64, bytes) else base64_decoded_size(b64)
    part: dict[str, Any] = {
        "type": "blob",
        "modality": modality,
        "mime_type": mime_type,
        "content": "",
        "byte_size": size,
        ext.PART_OMITTED: True,
    }
    return part  # type: ignore[return-value]


def data_url_part(url: str, modality: str = "image") -> BlobPart | UriPart:
    """A part for an image/audio/document URL: ``data:`` URLs become an omitted blob, others a ``uri`` part."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        mime = header[5:].split(";", 1)[0] or None
        if mime:
            top = mime.split("/", 1)[0]
            if top in ("image", "audio", "video"):
                modality = top
        return blob_part(payload, modality, mime)
    return {"type": "uri", "modality": modality, "mime_type": None, "uri": url}


def _string_slots(value: Any, out: list[tuple[int, Any, Any, dict[str, Any] | None]]) -> None:
    """Collect (length, container, key, owning part) for every string in ``value``."""
    if isinstance(value, dict):
        part = value if "type" in value else None
        for k, v in value.items():
            if isinstance(v, str):
                if len(v) > _MARKER_OVERHEAD:
                    out.append((len(v), value, k, part))
            elif isinstance(v, (dict, list)):
                _string_slots_in(v, out, part)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                if len(v) > _MARKER_OVERHEAD:
                    out.append((len(v), value, i, None))
            elif isinstance(v, (dict, list)):
                _string_slots(v, out)


def _string_slots_in(value: Any, out: list[tuple[int, Any, Any, dict[str, Any] | None]], part: Any) -> None:
    # Nested inside a part (tool arguments, server tool payloads): strings are charged to that part.
    if isinstance(value, dict):
        if part is None and "type" in value:
            part = value
        for k, v in value.items():
            if isinstance(v, str):
                if len(v) > _MARKER_OVERHEAD:
                    out.append((len(v), value, k, part))
            elif isinstance(v, (dict, list)):
                _string_slots_in(v, out, part)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                if len(v) > _MARKER_OVERHEAD:
                    out.append((len(v), value, i, part))
            elif isinstance(v, (dict, list)):
                _string_slots_in(v, out, part)


def truncate_json(value: Any, limit: int) -> tuple[str, bool]:
    """``(json, truncated)``: ``value`` as JSON of at most ``limit`` characters, cut structurally if needed."""
    text = _compact_json(value)
    if len(text) <= limit:
        return text, False
    # Work on a plain-JSON copy (SDK models become dicts), so the caller's objects are never touched.
    work = json.loads(text)
    if isinstance(work, str):
        # A bare string (a step's return value): cut it; the caller records the truncation on the span.
        return dumps(work[: max(0, limit - 2 - (len(text) - len(work) - 2))]), True
    for _ in range(_MAX_ROUNDS):
        text = dumps(work)
        excess = len(text) - limit
        if excess <= 0:
            return text, True
        slots: list[tuple[int, Any, Any, dict[str, Any] | None]] = []
        _string_slots(work, slots)
        if not slots:
            break
        slots.sort(key=lambda s: s[0], reverse=True)
        # Cut the longest strings first, each down to no less than the next one, until the excess is covered.
        need = excess + _MARKER_OVERHEAD * min(len(slots), 4)
        for length, container, key, part in slots:
            if need <= 0:
                break
            original = container[key]
            keep = max(0, length - need)
            container[key] = original[:keep]
            need -= length - keep
            if part is not None and ext.PART_TRUNCATED not in part:
                part[ext.PART_TRUNCATED] = True
                part[ext.PART_ORIGINAL_SIZE] = length
    text = dumps(work)
    if len(text) <= limit:
        return text, True
    # Still too big (many small items): drop trailing list items, leaving a marker.
    if isinstance(work, list):
        marker: dict[str, Any] = {
            "role": "user",
            "parts": [{"type": "text", "content": "", ext.PART_TRUNCATED: True, ext.PART_ORIGINAL_SIZE: len(text)}],
        }
        while len(work) > 1 and len(dumps([*work, marker])) > limit:
            work.pop()
        candidate = dumps([*work, marker])
        if len(candidate) <= limit:
            return candidate, True
        return dumps([marker]), True
    return dumps({ext.PART_TRUNCATED: True, ext.PART_ORIGINAL_SIZE: len(text)}), True


@dataclass(frozen=True)
class ContentPolicy:
    """Whether and where content is recorded, and how large it may be."""

    on_span: bool
    on_event: bool
    limit: int
    hooked: bool = False
    """A completion hook receives the content (so it is gathered even under ``NO_CONTENT``)."""

    @property
    def any(self) -> bool:
        return self.on_span or self.on_event or self.hooked

    @classmethod
    def from_settings(cls, settings: Settings) -> ContentPolicy:
        return cls(settings.capture_on_span, settings.capture_on_event, settings.content_max_length)

    def encode(self, value: Any) -> tuple[str, bool]:
        """``value`` as size-limited JSON; see the module docstring."""
        return truncate_json(value, self.limit)


__all__ = ["ContentPolicy", "Part", "blob_part", "data_url_part", "truncate_json"]
