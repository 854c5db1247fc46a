"""What the exporter does to each span before encoding: add cost, choose the content mode, redact or drop.

The result is new attribute and event lists handed to the encoder; the SDK's span object is never changed
(other processors may still hold it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from spyglass.exporter._cost import Pricer
from spyglass.exporter._modes import ContentMode
from spyglass.exporter._policy import CapturePolicy, PolicyFile
from spyglass.exporter._redaction import Redactor
from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai

__all__ = ["Enriched", "Enricher", "EventData"]

_log = logging.getLogger(__name__)

# Attribute values that are message or tool JSON (redacted leaf by leaf).
JSON_CONTENT_KEYS = frozenset(
    {
        *gen_ai.CONTENT_ATTRIBUTES,
        *gen_ai.TOOL_CONTENT_ATTRIBUTES,
        ext.STEP_INPUT,
        ext.STEP_OUTPUT,
        gen_ai.RETRIEVAL_DOCUMENTS,
    }
)
# Plain-text content attributes.
TEXT_CONTENT_KEYS = frozenset({gen_ai.RETRIEVAL_QUERY_TEXT})
# Content that is usually the same on every call of an app: redacted once and remembered.
_REPEATED_KEYS = frozenset({gen_ai.SYSTEM_INSTRUCTIONS, gen_ai.TOOL_DEFINITIONS})
# Exception and status text can quote the prompt or the user: redacted in every mode but full.
_ERROR_TEXT_KEYS = frozenset({"exception.message", "exception.stacktrace"})


def _is_prefixed_content(key: str) -> bool:
    if key.startswith(gen_ai.PROMPT_VARIABLE_PREFIX):
        return True
    # OpenLLMetry's indexed gen_ai.prompt.0.content / gen_ai.completion.0.content (never gen_ai.prompt.name).
    for prefix in (gen_ai.DEPRECATED_PROMPT_PREFIX, gen_ai.DEPRECATED_COMPLETION_PREFIX):
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isdigit():
            return True
    return False


def _plain(attributes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The SDK's ``BoundedAttributes`` iterate through the ``Mapping`` ABC, in Python, item by item; a finished
    span's are immutable, so read the ``dict`` they wrap (any other mapping is used as it is)."""
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


def _span_attributes(span: Any) -> Mapping[str, Any]:
    """A finished span's attributes as a plain ``dict`` when possible: ``ReadableSpan.attributes`` wraps its
    ``BoundedAttributes`` in a ``MappingProxyType`` on every access, which hides the ``dict`` inside."""
    inner = getattr(span, "_attributes", None)
    if inner is not None:
        return _plain(inner)
    return _plain(span.attributes)


class EventData(NamedTuple):
    name: str
    timestamp: int
    attributes: Mapping[str, Any]
    dropped_attributes: int = 0


class Enriched(NamedTuple):
    """A span's new attributes, events and status text (the span object itself is untouched)."""

    span: Any  # ReadableSpan
    attributes: Mapping[str, Any]
    events: Sequence[EventData]
    status_message: str | None


# What a span's attributes need, per distinct key set (spans of one kind repeat theirs): the content keys with
# their kind ("json", "text"), the error-text keys ("error"), and whether any content key is present.
_Plan = tuple[tuple[tuple[str, str], ...], bool]
_PLANS_MAX = 1024


class Enricher:
    """Cost + capture policy + redaction for one span at a time. Thread-safe; never raises."""

    def __init__(
        self,
        *,
        pricer: Pricer | None,
        redactor: Redactor,
        default_mode: ContentMode,
        policy: PolicyFile | CapturePolicy | None = None,
        extra_keys: Sequence[str] = (),
    ) -> None:
        self.pricer = pricer
        self.redactor = redactor
        self.default_mode = default_mode
        self.policy = policy
        self.extra_keys = frozenset(extra_keys)
        self._failures = 0
        self._kinds: dict[str, str | None] = {}
        self._plans: dict[tuple[str, ...], _Plan] = {}

    def _content_kind(self, key: str) -> str | None:
        """``json``, ``text`` or ``None`` (not content); cached per key, since keys repeat on every span."""
        try:
            return self._kinds[key]
        except KeyError:
            pass
        kind: str | None = None
        if key in JSON_CONTENT_KEYS or key in self.extra_keys:
            kind = "json"  # redact_json falls back to text for non-JSON values
        elif key in TEXT_CONTENT_KEYS or _is_prefixed_content(key):
            kind = "text"
        if len(self._kinds) < 4096:
            self._kinds[key] = kind
        return kind

    def _plan(self, keys: tuple[str, ...]) -> _Plan:
        steps: list[tuple[str, str]] = []
        content = False
        for key in keys:
            kind = self._content_kind(key)
            if kind is not None:
                steps.append((key, kind))
                content = True
            elif key in _ERROR_TEXT_KEYS:
                steps.append((key, "error"))
        plan = (tuple(steps), content)
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[keys] = plan
        return plan

    def _span_rewrite(
        self, attrs: Mapping[str, Any], mode: ContentMode, hits: list[str]
    ) -> tuple[dict[str, Any], bool]:
        """A span's attributes after the content mode (as :meth:`_rewrite`, in the same order), and whether it
        had content; a copy of the dict plus work on the few keys the span's plan names."""
        keys = tuple(attrs)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plan(keys)
        steps, content = plan
        out = dict(attrs)
        if mode is ContentMode.FULL or not steps:
            return out, content
        redactor = self.redactor
        for key, kind in steps:
            if kind == "error":
                out[key] = redactor.redact_value(out[key], hits)
            elif mode is ContentMode.METADATA_ONLY:
                del out[key]
            else:
                value = redactor.redact_value(out[key], hits, as_json=kind == "json", repeats=key in _REPEATED_KEYS)
                if value == "":
                    del out[key]  # drop mode removed the whole value
                else:
                    out[key] = value
        return out, content

    def _rewrite(self, attrs: Mapping[str, Any], mode: ContentMode, hits: list[str], *, event: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        redactor = self.redactor
        for key, value in attrs.items():
            kind = self._content_kind(key)
            if kind is not None:
                if mode is ContentMode.METADATA_ONLY:
                    continue
                if mode is ContentMode.REDACTED:
                    value = redactor.redact_value(value, hits, as_json=kind == "json")
                    if value == "":
                        continue  # drop mode removed the whole value
            elif mode is not ContentMode.FULL and (key in _ERROR_TEXT_KEYS or (event and isinstance(value, str))):
                value = redactor.redact_value(value, hits)
            out[key] = value
        return out

    def _decide(
        self, attrs: Mapping[str, Any], resource: Mapping[str, Any], at_ns: int
    ) -> tuple[ContentMode, str | None]:
        policy = self.policy
        if policy is None:
            return self.default_mode, None
        current = policy.current() if isinstance(policy, PolicyFile) else policy
        return current.decide(attrs, resource, at_ns, self.default_mode)

    def enrich(self, span: Any) -> Enriched:
        attrs: Mapping[str, Any] = _span_attributes(span)
        try:
            return self._enrich(span, attrs)
        except Exception:  # never raise into the export path; fail closed on content
            self._failures += 1
            if self._failures == 1:
                _log.exception("spyglass exporter: enriching span %r failed; exporting it without content", span.name)
            hits: list[str] = []
            safe = self._rewrite(attrs, ContentMode.METADATA_ONLY, hits, event=False)
            safe[ext.CONTENT_MODE] = ContentMode.METADATA_ONLY.value
            return Enriched(span, safe, (), None)

    def _enrich(self, span: Any, attrs: Mapping[str, Any]) -> Enriched:
        resource = span.resource.attributes if span.resource is not None else {}
        start = span.start_time or 0
        mode, rule = self._decide(attrs, resource, start)
        hits: list[str] = []
        out, has_content = self._span_rewrite(attrs, mode, hits)
        if self.pricer is not None and ext.USAGE_COST not in attrs:
            out.update(self.pricer.price_ns(attrs, start))
        events: list[EventData] = []
        for ev in span.events:
            ev_attrs = _plain(ev.attributes)
            events.append(
                EventData(
                    ev.name,
                    ev.timestamp,
                    self._rewrite(ev_attrs, mode, hits, event=True) if ev_attrs else {},
                    ev.dropped_attributes,
                )
            )
            has_content = has_content or any(self._content_kind(k) for k in ev_attrs)
        status_message = span.status.description if span.status is not None else None
        if status_message and mode is not ContentMode.FULL:
            status_message = self.redactor.redact_text(status_message, hits)[0]
        if has_content or rule is not None:
            out[ext.CONTENT_MODE] = mode.value
        if rule is not None:
            out[ext.POLICY_RULE] = rule
        if hits:
            out[ext.REDACTION_COUNT] = len(hits)
            out[ext.REDACTION_KINDS] = tuple(sorted(set(hits)))
        return Enriched(span, out, events, status_message)
