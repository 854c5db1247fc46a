"""Request parameters by semconv name: the one reader every adapter (SDK and raw HTTP) uses.

Each setter writes only when the body holds a real number (booleans are not numbers here) and casts to the
type the conventions give: ``double`` for temperature, top_p and the penalties, ``int`` for max_tokens,
top_k, seed and choice count. So the same request reads the same whether it came through an SDK or as
raw JSON (where ``"temperature": 1`` arrives as an ``int``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from opentelemetry.util.types import AttributeValue

from spyglass.semconv import gen_ai

Attributes = dict[str, AttributeValue]


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def set_float(attrs: Attributes, key: str, value: Any) -> None:
    if is_number(value):
        attrs[key] = float(value)


def set_int(attrs: Attributes, key: str, value: Any) -> None:
    if is_number(value):
        attrs[key] = int(value)


def first_number(*values: Any) -> int | float | None:
    """The first real number among ``values`` (e.g. ``max_completion_tokens`` before ``max_tokens``)."""
    for value in values:
        if is_number(value):
            return value
    return None


def set_stop_sequences(attrs: Attributes, value: Any) -> None:
    """A string becomes a one-element list; a non-empty list is kept as strings."""
    if isinstance(value, str):
        attrs[gen_ai.REQUEST_STOP_SEQUENCES] = [value]
    elif isinstance(value, (list, tuple)) and value:
        attrs[gen_ai.REQUEST_STOP_SEQUENCES] = [str(s) for s in value]


_SAMPLING: tuple[tuple[str, Callable[[Attributes, str, Any], None]], ...] = (
    (gen_ai.REQUEST_TEMPERATURE, set_float),
    (gen_ai.REQUEST_TOP_P, set_float),
    (gen_ai.REQUEST_TOP_K, set_int),
    (gen_ai.REQUEST_MAX_TOKENS, set_int),
    (gen_ai.REQUEST_SEED, set_int),
    (gen_ai.REQUEST_FREQUENCY_PENALTY, set_float),
    (gen_ai.REQUEST_PRESENCE_PENALTY, set_float),
)


def set_sampling(attrs: Attributes, body: Mapping[str, Any], keys: tuple[str, str, str, str, str, str, str]) -> None:
    """The sampling parameters a provider spells its own way: ``keys`` names, in the body, temperature, top_p,
    top_k, max_tokens, seed, frequency penalty and presence penalty, in that order."""
    for (attr, setter), key in zip(_SAMPLING, keys, strict=True):
        setter(attrs, attr, body.get(key))
