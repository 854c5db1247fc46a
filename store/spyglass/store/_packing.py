"""Packed span JSON: attributes and events stored without a second copy of the prompt and the response.

An LM call's attributes (or events) carry the prompt and the response as message JSON, and the row's
``input_text`` and ``output_text`` columns hold the same words for full-text search: stored as is, every
span would keep that text twice (half of each row). :func:`pack` cuts the long runs of plain text that
also occur in those two columns out of the string values and stores references in their place;
:func:`unpack` puts them back. The round trip is exact by construction (a reference is only made to an
equal substring), and rows are never updated, so the referenced text never changes.

Stored form: JSON text when nothing was cut (as before), else a blob: the version byte ``\\x01`` and the
UTF-8 JSON ``{"v": value, "r": [path, ...]}``, where each path (keys and list indexes) leads to a string
that became a list of segments: a string is itself, ``[column, start, end]`` is
``(input_text, output_text)[column][start:end]``. In SQL, ``span_json(column, input_text, output_text)``
gives the JSON text back (registered by :func:`spyglass.store._schema.connect`).
"""

from __future__ import annotations

from typing import Any, Final

from spyglass.store._json import dumps as dumps  # the stored JSON text (re-exported: the writer and tests use it)
from spyglass.store._json import loads

MIN_VALUE_CHARS: Final = 512
"""String values shorter than this are kept whole."""
MIN_RUN_CHARS: Final = 48
"""Runs of text shorter than this are not worth a reference. A run is a line of a column, cut at quotes
(which JSON escapes); a run that the value holds escaped differently is simply not found."""
_PACKED_V1: Final = b"\x01"
_PROBE_CHARS: Final = 24
_ROLE_PREFIX_CHARS: Final = 40  # "assistant: " and the like, which messages_text puts before a message

Path = list[str | int]


Run = tuple[str, str, int, int, int, str]
"""A run of a column: ``(text, probe, column, start, role prefix length or 0, probe without the prefix)``."""


def _runs(texts: tuple[str | None, str | None]) -> list[Run]:
    """The long lines of the two columns, cut at quotes (escaped in JSON), with their probes."""
    out: list[Run] = []
    for column, text in enumerate(texts):
        if not text or len(text) < MIN_RUN_CHARS:
            continue
        start = 0
        for line in text.split("\n") if "\n" in text else (text,):
            if len(line) >= MIN_RUN_CHARS:
                if '"' in line:
                    at = start
                    for piece in line.split('"'):
                        if len(piece) >= MIN_RUN_CHARS:
                            out.append(_run(piece, column, at))
                        at += len(piece) + 1
                else:
                    out.append(_run(line, column, start))
            start += len(line) + 1
    return out


def _run(text: str, column: int, start: int) -> Run:
    # The first line of a message carries "role: " in the column but not in the message JSON: when the
    # whole run is not found, the run without that prefix is tried.
    head = text.find(": ", 0, _ROLE_PREFIX_CHARS) + 2
    if head < 2 or len(text) - head < MIN_RUN_CHARS:
        return (text, text[:_PROBE_CHARS], column, start, 0, "")
    return (text, text[:_PROBE_CHARS], column, start, head, text[head : head + _PROBE_CHARS])


def _cut(value: str, runs: list[Run]) -> list[Any] | None:
    """``value`` as segments referring to the runs it contains (in order), or ``None`` if it has none.

    A run is found where the first occurrence of its probe is followed by the rest of it (a short probe,
    then one comparison: ``str.find`` prepares a long needle first, as long as the search); a run with a
    role prefix is tried whole first, then without the prefix.
    """
    segments: list[Any] = []
    pos = 0
    find, startswith = value.find, value.startswith
    for run, probe, column, start, head, tail_probe in runs:
        if head:
            # The whole run holds the run without its prefix: if that is not there, neither is the run.
            tail_at = find(tail_probe, pos)
            if tail_at < 0:
                continue
            at = find(probe, pos)
            if at < 0 or not startswith(run, at):
                run, start, at = run[head:], start + head, tail_at
                if not startswith(run, at):
                    continue
        else:
            at = find(probe, pos)
            if at < 0 or not startswith(run, at):
                continue
        if at > pos:
            segments.append(value[pos:at])
        segments.append([column, start, start + len(run)])
        pos = at + len(run)
    if not segments:
        return None
    if pos < len(value):
        segments.append(value[pos:])
    return segments


def _walk(node: Any, path: Path, runs: list[Run], refs: list[Path]) -> Any:
    """``node`` with its long strings cut; containers are copied only where something was cut."""
    is_dict = isinstance(node, dict)
    copy: Any = None
    for key, value in node.items() if is_dict else enumerate(node):
        if isinstance(value, str):
            if len(value) < MIN_VALUE_CHARS or (new := _cut(value, runs)) is None:
                continue
            refs.append([*path, key])
        elif isinstance(value, (dict, list)):
            if (new := _walk(value, [*path, key], runs, refs)) is value:
                continue
        else:
            continue
        if copy is None:
            copy = dict(node) if is_dict else list(node)
        copy[key] = new
    return node if copy is None else copy


def pack(value: Any, input_text: str | None, output_text: str | None) -> str | bytes:
    """``value`` (attributes or events) as stored: its JSON text, or a packed blob (module docstring)."""
    runs = _runs((input_text, output_text))
    if runs:
        refs: list[Path] = []
        reduced = _walk(value, [], runs, refs) if isinstance(value, (dict, list)) else value
        if refs:
            return _PACKED_V1 + dumps({"v": reduced, "r": refs}).encode("utf-8", "surrogatepass")
    return dumps(value)


def unpack(stored: str | bytes | None, input_text: str | None, output_text: str | None) -> str | None:
    """The JSON text of a stored value (see :func:`pack`); text written before packing passes through."""
    if stored is None or isinstance(stored, str):
        return stored
    if stored[:1] != _PACKED_V1:
        raise ValueError(f"unknown packed JSON format {stored[:1]!r} (written by a newer Spyglass?)")
    doc = loads(stored[1:].decode("utf-8", "surrogatepass"))
    texts = (input_text or "", output_text or "")
    value = doc["v"]
    for path in doc["r"]:
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1] if path else None
        segments = parent[last] if path else value
        text = "".join(s if isinstance(s, str) else texts[s[0]][s[1] : s[2]] for s in segments)
        if path:
            parent[last] = text
        else:
            value = text
    return dumps(value)
