"""JSON for the store's ingest path: orjson where its result is certain to equal the json module's.

Every span carries its prompt and response as message JSON that ingest parses, and every stored row holds
JSON text, so the encoder and decoder are a third of the request side's CPU with the json module. The
orjson paths are :mod:`spyglass.semconv._fastjson`'s (shared with the instrumentation), so what is stored
never depends on whether orjson is installed; the store's own part is its fallback encoder, which writes
anything that is not JSON as its ``str`` (``json.dumps(..., default=str)``).
"""

from __future__ import annotations

import json
from typing import Any

from spyglass.semconv._fastjson import loads, orjson_text

__all__ = ["dumps", "loads"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 as is, anything not JSON as its ``str`` (``json.dumps`` with those options)."""
    return orjson_text(value) or _ENCODER.encode(value)
