"""orjson where its result is certain to equal the ``json`` module's: one copy for every part of Spyglass.

Message JSON is written on every LM call (instrumentation) and parsed and re-written for every span the
store ingests; orjson (the ``speedups`` extra) does both several times faster than the ``json`` module, but
not identically everywhere. These functions use it only where the result is the ``json`` module's, so what
Spyglass records or stores never depends on whether orjson is installed:

- :func:`orjson_text` gives orjson's text of a value, or ``None`` where it may differ from compact
  ``json.dumps`` (``ensure_ascii=False``, ``","``/``":"`` separators): ``null`` may be NaN or infinity
  there, floats below 1e-4 are spelled out, exponents are spelled differently; a type orjson does not take
  (integers past 64 bits, non-string keys, lone surrogates, bytes, dataclasses, datetimes, any object)
  gives ``None`` too, so the caller's own encoder and its ``default`` decide. A false alarm (a real
  ``null``, an id like ``call_1e4``) only costs the caller's slower encoder. One known difference: a plain
  :class:`enum.Enum` member (no ``str``/``int`` mix-in) is written as its value by orjson.
- :func:`loads` is ``json.loads``: orjson's value unless it holds a float at or past 2**63 (orjson turns
  integers past 64 bits into floats); a document orjson refuses (NaN, 1e400, lone surrogates) goes to the
  ``json`` module, which gives the value or the error it always gave.

Tests set :data:`ORJSON` to ``None`` to check that the fallback gives the same.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

try:  # the `speedups` extra
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the tests through ORJSON = None
    _orjson = None  # type: ignore[assignment]

ORJSON: Any = _orjson
"""The orjson module in use, or ``None``."""

_OPTIONS = 0 if _orjson is None else _orjson.OPT_PASSTHROUGH_DATACLASS | _orjson.OPT_PASSTHROUGH_DATETIME
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_BIG = float(2**63)


def _refuse(obj: Any) -> NoReturn:
    # A type orjson does not know: the caller's encoder decides how it is written.
    raise TypeError


def same_as_json(raw: bytes) -> bool:
    """False where orjson's text ``raw`` may differ from the ``json`` module's. Substring searches: a regular
    expression for "a digit, then ``e``" costs more than the encoding it guards (10 µs)."""
    return b"null" not in raw and b".0000" not in raw and b"0e" not in raw.translate(_DIGITS_AS_ZERO)


def orjson_text(value: Any) -> str | None:
    """Compact JSON text of ``value`` through orjson, or ``None`` where that may differ from ``json``'s."""
    if ORJSON is None:
        return None
    try:
        raw: bytes = ORJSON.dumps(value, default=_refuse, option=_OPTIONS)
    except TypeError:  # refused: see the module docstring
        return None
    return raw.decode() if same_as_json(raw) else None


def _has_big_float(value: Any) -> bool:
    # orjson's values are exactly dict, list, str, int, float, bool or None: type() identity suffices.
    kind = type(value)
    if kind is float:
        return not -_BIG < value < _BIG  # NaN never comes out of orjson
    if kind is not dict and kind is not list:
        return False
    stack = [value]
    while stack:
        node = stack.pop()
        for item in node.values() if type(node) is dict else node:
            kind = type(item)
            if kind is str:
                continue
            if kind is dict or kind is list:
                stack.append(item)
            elif kind is float and not -_BIG < item < _BIG:
                return True
    return False


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``; raises what it raises (``ValueError`` for invalid JSON, ``RecursionError``)."""
    if ORJSON is not None:
        try:
            value = ORJSON.loads(text)
        except ValueError:
            pass
        else:
            if not _has_big_float(value):
                return value
    return json.loads(text)
