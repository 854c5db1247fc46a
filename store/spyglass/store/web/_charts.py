"""Chart geometry for hand-drawn SVG charts, computed on the server.

The templates draw ``<rect>``/``<polyline>`` elements from these dicts: no chart library, no script, and
nothing that a strict Content-Security-Policy would block (SVG geometry attributes are not inline styles).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

WIDTH = 600
HEIGHT = 150
PAD_LEFT = 4
PAD_BOTTOM = 4


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def bar_chart(
    points: Sequence[tuple[str, Any]],
    *,
    label: str,
    fmt: Callable[[Any], str] = str,
) -> dict[str, Any]:
    """One bar per ``(label, value)`` point; ``title`` on each bar is the tooltip."""
    values = [_finite(v) for _, v in points]
    top = max(values, default=0.0)
    n = max(len(points), 1)
    slot = (WIDTH - PAD_LEFT) / n
    gap = min(2.0, slot * 0.2)
    bars = []
    for i, ((name, raw), value) in enumerate(zip(points, values, strict=True)):
        h = 0.0 if top == 0 else (HEIGHT - PAD_BOTTOM) * value / top
        if value > 0:
            h = max(h, 1.5)  # a non-zero bucket stays visible
        bars.append(
            {
                "x": round(PAD_LEFT + i * slot + gap / 2, 2),
                "y": round(HEIGHT - PAD_BOTTOM - h, 2),
                "w": round(max(slot - gap, 0.5), 2),
                "h": round(h, 2),
                "title": f"{name}: {fmt(raw)}",
            }
        )
    return {
        "kind": "bar",
        "label": label,
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "max": fmt(top) if points else "",
        "first": points[0][0] if points else "",
        "last": points[-1][0] if points else "",
        "empty": not any(values),
    }


def line_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[Any]],
    *,
    label: str,
    fmt: Callable[[Any], str] = str,
) -> dict[str, Any]:
    """One polyline per named series over shared x labels; the y axis starts at zero."""
    top = max((_finite(v) for values in series.values() for v in values), default=0.0)
    n = len(labels)
    lines = []
    for index, (name, values) in enumerate(series.items()):
        coords = []
        dots = []
        for i, raw in enumerate(values):
            x = PAD_LEFT + ((WIDTH - PAD_LEFT) * (i + 0.5) / n if n else 0)
            y = HEIGHT - PAD_BOTTOM - (0 if top == 0 else (HEIGHT - PAD_BOTTOM - 4) * _finite(raw) / top)
            coords.append(f"{x:.1f},{y:.1f}")
            dots.append({"x": round(x, 1), "y": round(y, 1), "title": f"{name} {labels[i]}: {fmt(raw)}"})
        lines.append({"name": name, "points": " ".join(coords), "dots": dots, "series": index})
    return {
        "kind": "line",
        "label": label,
        "width": WIDTH,
        "height": HEIGHT,
        "lines": lines,
        "max": fmt(top) if n else "",
        "first": labels[0] if n else "",
        "last": labels[-1] if n else "",
        "empty": top == 0,
    }
