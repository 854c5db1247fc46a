"""Precision and recall of the redaction detectors on a labelled set (used by a test and a benchmark).

A row is ``{"text": str, "labels": [[KIND, value], ...]}``. A detection is a true positive when it overlaps
a labelled value of the same kind; a labelled value no same-kind detection overlaps is a false negative.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spyglass.exporter._redaction import Redactor


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def score(redactor: Redactor, rows: Iterable[Mapping[str, Any]]) -> dict[str, Score]:
    """Per-detector scores (every detector of the redactor appears, even with no labels)."""
    scores = {name: Score() for name in redactor.detector_names}
    for row in rows:
        text: str = row["text"]
        expected = []
        for kind, value in row["labels"]:
            start = text.index(value)
            expected.append((start, start + len(value), kind))
            scores.setdefault(kind, Score())
        found = redactor.find(text)
        for s, e, kind in found:
            if any(k == kind and s < ee and ss < e for ss, ee, k in expected):
                scores[kind].tp += 1
            else:
                scores[kind].fp += 1
        for ss, ee, kind in expected:
            if not any(k == kind and s < ee and ss < e for s, e, k in found):
                scores[kind].fn += 1
    return scores


def table(scores: Mapping[str, Score]) -> str:
    """A Markdown table of the scores (the README's redaction table)."""
    lines = [
        "| detector | labelled | TP | FP | FN | precision | recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in scores.items():
        lines.append(f"| `{name}` | {s.tp + s.fn} | {s.tp} | {s.fp} | {s.fn} | {s.precision:.3f} | {s.recall:.3f} |")
    return "\n".join(lines)
