"""JSON for the store's ingest path: orjson where its result is certain to equal the json module's.

Every span carries its prompt and response as message JSON that ingest parses, and every stored row holds
JSON text, so the encoder and decoder are a third of the request side's CPU with the json module. orjson
(the ``speedups`` extra) is several times faster, but not identical everywhere; each function here uses it
only where its result is the json module's, else the json module, so what is stored never depends on
whether orjson is installed (tests compare both on varied inputs):

- :func:`dumps`: orjson's text unless it may differ (``null`` can be NaN or infinity there, floats below
  1e-4 are spelled out, exponents are spelled differently); types orjson does not take (integers past 64
  bits, non-string keys, lone surrogates, anything that needs ``default=str``) go to the json module.
- :func:`loads`: orjson's value unless it holds a float at or past 2**63 (orjson turns integers past 64
  bits into floats); a document orjson refuses (NaN, 1e400, lone surrogates) goes to the json module,
  which gives the value or the error it always gave.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

try:  # the `speedups` extra
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the tests through ORJSON = None
    _orjson = None  # type: ignore[assignment]

ORJSON: Any = _orjson
"""The orjson module in use, or ``None`` (tests set it to ``None`` to check the fallback gives the same)."""

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_OPTIONS = 0 if _orjson is None else _orjson.OPT_PASSTHROUGH_DATACLASS | _orjson.OPT_PASSTHROUGH_DATETIME
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_BIG = float(2**63)


def _refuse(obj: Any) -> NoReturn:
    # A type orjson does not know: the json module's default=str decides how it is written.
    raise TypeError


def _same_as_json(raw: bytes) -> bool:
    """False where orjson's text may differ from the json module's (a false alarm only costs time)."""
    return b"null" not in raw and b".0000" not in raw and b"0e" not in raw.translate(_DIGITS_AS_ZERO)


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 as is, anything not JSON as its ``str`` (``json.dumps`` with those options)."""
    if ORJSON is not None:
        try:
            raw: bytes = ORJSON.dumps(value, default=_refuse, option=_OPTIONS)
        except TypeError:
            pass
        else:
            if _same_as_json(raw):
                return raw.decode()
    return _ENCODER.encode(value)


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
