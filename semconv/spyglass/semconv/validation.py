"""Validate emitted message JSON against the GenAI JSON schemas (``schemas/gen-ai-messages.schema.json``).

Tests use it to check that every span we emit carries spec-shaped content::

    from spyglass.semconv.validation import validate_span_content
    validate_span_content(span.attributes)   # raises MessageValidationError

Needs ``jsonschema`` (the ``dev`` extra); it is never imported on an application's hot path.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from spyglass.semconv import gen_ai

_KIND_BY_ATTRIBUTE = {
    gen_ai.INPUT_MESSAGES: "InputMessages",
    gen_ai.OUTPUT_MESSAGES: "OutputMessages",
    gen_ai.SYSTEM_INSTRUCTIONS: "SystemInstructions",
    gen_ai.TOOL_DEFINITIONS: "ToolDefinitions",
}
KINDS = tuple(_KIND_BY_ATTRIBUTE.values())


class MessageValidationError(ValueError):
    """A message value does not match the GenAI schema; the message says where and why."""


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = resources.files("spyglass.semconv").joinpath("schemas/gen-ai-messages.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator(kind: str) -> Any:
    import jsonschema

    root = _schema()
    if kind not in root["$defs"]:
        raise ValueError(f"unknown message kind {kind!r}; expected one of {KINDS}")
    schema = {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{kind}"}
    return jsonschema.Draft202012Validator(schema)


def validate(value: Any, kind: str) -> None:
    """Validate ``value`` (a JSON string or the decoded structure) as ``kind``: one of :data:`KINDS`."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MessageValidationError(f"{kind}: not valid JSON: {exc}") from exc
    errors = sorted(_validator(kind).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"at {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors[:5]
        )
        raise MessageValidationError(f"{kind}: {detail}")


def validate_span_content(attributes: Mapping[str, Any] | None) -> int:
    """Validate every message-content attribute present; returns how many were checked."""
    checked = 0
    for key, kind in _KIND_BY_ATTRIBUTE.items():
        if attributes and key in attributes:
            validate(attributes[key], kind)
            checked += 1
    return checked
