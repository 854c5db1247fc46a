"""Display formatting for the pages: durations, money, token counts, timestamps, sizes.

Jinja filters call these; they take what the query layer returns (``None`` included) and never raise,
because one odd value must not take a whole page down.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

DASH = "\u2014"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def duration_ms(value: Any) -> str:
    """``812 ms``, ``3.41 s``, ``2 min 05 s``."""
    ms = _number(value)
    if ms is None:
        return DASH
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def cost(value: Any) -> str:
    """US dollars with enough digits to tell cheap calls apart (``$0.000042``)."""
    usd = _number(value)
    if usd is None:
        return DASH
    if usd == 0:
        return "$0"
    if abs(usd) >= 100:
        return f"${usd:,.0f}"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    if abs(usd) >= 0.01:
        return f"${usd:.4f}"
    return f"${usd:.6f}"


def tokens(value: Any) -> str:
    n = _number(value)
    if n is None:
        return DASH
    if abs(n) >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    if abs(n) >= 10_000:
        return f"{n / 1000:.1f}k"
    return f"{int(n):,}"


def percent(value: Any) -> str:
    """A 0..1 ratio as a percentage."""
    ratio = _number(value)
    if ratio is None:
        return DASH
    pct = ratio * 100
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def size(value: Any) -> str:
    n = _number(value)
    if n is None:
        return DASH
    if n < 1024:
        return f"{int(n)} chars"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def to_datetime(value: Any) -> _dt.datetime | None:
    """Epoch nanoseconds, epoch seconds/milliseconds or an ISO string, as an aware UTC datetime."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            number = _number(value)
            if number is None:
                return None
            return to_datetime(number)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.timezone.utc)
    number = _number(value)
    if number is None:
        return None
    # Guess the unit from the magnitude around the present: ns, us, ms or s since the epoch.
    divisor = 1e9 if abs(number) >= 1e17 else 1e6 if abs(number) >= 1e14 else 1e3 if abs(number) >= 1e11 else 1.0
    try:
        return _dt.datetime.fromtimestamp(number / divisor, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def timestamp(value: Any) -> str:
    """``2026-11-22 18:04:05.123`` in UTC."""
    moment = to_datetime(value)
    if moment is None:
        return DASH
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def iso(value: Any) -> str:
    moment = to_datetime(value)
    return moment.isoformat().replace("+00:00", "Z") if moment else ""


def short_id(value: Any, length: int = 8) -> str:
    text = "" if value is None else str(value)
    return text[:length]
