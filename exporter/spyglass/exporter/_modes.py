"""The two small enums every exporter module shares: what content to keep, and how to redact it."""

from __future__ import annotations

import enum
import logging
from typing import TypeVar

_log = logging.getLogger(__name__)
_E = TypeVar("_E", bound="_Parsed")


class _Parsed(str, enum.Enum):
    @classmethod
    def parse(cls: type[_E], raw: str | None, default: _E) -> _E:
        """Case-insensitive; hyphens and underscores are the same; a bad value is logged and gives ``default``."""
        if raw is None:
            return default
        norm = raw.strip().lower().replace("-", "_")
        for member in cls:
            if member.value == norm:
                return member
        _log.warning("unknown %s %r; using %s", cls.__name__, raw, default.value)
        return default


class ContentMode(_Parsed):
    """What a span keeps of its prompt, response and tool content (``spyglass.content.mode``)."""

    FULL = "full"
    REDACTED = "redacted"
    METADATA_ONLY = "metadata_only"


class RedactionMode(_Parsed):
    """How a detected value is replaced."""

    MASK = "mask"  # [REDACTED:EMAIL]
    HASH = "hash"  # [EMAIL:<HMAC-SHA256 prefix>]: equal values stay joinable
    DROP = "drop"  # the whole string holding the value is removed
