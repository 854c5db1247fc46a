"""Capture policies: rules that choose full, redacted or metadata-only content per span.

A policy file (``OTEL_SPYGLASS_POLICY_FILE``, YAML or JSON)::

    default: redacted                 # optional; otherwise OTEL_SPYGLASS_CONTENT_MODE
    rules:
      - id: debug-alice               # shows up as spyglass.policy.rule on the spans it decided
        match: {user: alice}          # service | tenant | user | session | any attribute key
        mode: full
        expires: 2026-12-01T00:00:00Z # optional: the rule stops applying after this time
      - id: eu-tenants-metadata
        match: {tenant: ["eu-*", "gdpr-*"], "gen_ai.provider.name": openai}
        mode: metadata_only

The first rule whose every ``match`` entry holds (a string is an ``fnmatch`` pattern, a list means any of
them) and that has not expired decides; otherwise the default applies. Span attributes are looked up first,
then resource attributes (``service`` is ``service.name`` on the resource). Expiry is checked against the
span's start time. The file is re-read when its modification time or size changes (checked at most once a
second); a bad file is rejected with an error naming the problem, and the last good policy stays in force.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from spyglass.exporter._modes import ContentMode
from spyglass.semconv import extensions as ext

__all__ = ["CapturePolicy", "PolicyError", "PolicyFile", "PolicyRule"]

_log = logging.getLogger(__name__)

_ALIASES = {"service": "service.name", "tenant": ext.TENANT_ID, "user": ext.USER_ID, "session": ext.SESSION_ID}


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the file and the bad part."""


@dataclass(frozen=True)
class PolicyRule:
    id: str
    match: Mapping[str, tuple[str, ...]]
    mode: ContentMode
    expires_ns: int | None = None

    def applies(self, attributes: Mapping[str, Any], resource: Mapping[str, Any], at_ns: int) -> bool:
        if self.expires_ns is not None and at_ns >= self.expires_ns:
            return False
        for key, patterns in self.match.items():
            value = attributes.get(key)
            if value is None:
                value = resource.get(key)
            if value is None:
                return False
            text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
            if not any(fnmatch.fnmatchcase(text, p) for p in patterns):
                return False
        return True


@dataclass(frozen=True)
class CapturePolicy:
    """An ordered list of rules and a default mode."""

    rules: tuple[PolicyRule, ...] = ()
    default: ContentMode | None = None

    def decide(
        self, attributes: Mapping[str, Any], resource: Mapping[str, Any], at_ns: int, fallback: ContentMode
    ) -> tuple[ContentMode, str | None]:
        """The mode for one span and the id of the rule that chose it (``None``: the default)."""
        for rule in self.rules:
            if rule.applies(attributes, resource, at_ns):
                return rule.mode, rule.id
        return self.default or fallback, None

    @classmethod
    def parse(cls, document: Any, source: str = "<policy>") -> CapturePolicy:
        """Validate a decoded document; raise :class:`PolicyError` on anything unexpected."""
        if not isinstance(document, dict):
            raise PolicyError(f"{source}: expected a mapping with 'rules' (and optionally 'default')")
        unknown = set(document) - {"rules", "default"}
        if unknown:
            raise PolicyError(f"{source}: unknown top-level keys {sorted(unknown)}")
        default = None
        if document.get("default") is not None:
            default = _mode(document["default"], f"{source}: default")
        raw_rules = document.get("rules")
        raw_rules = [] if raw_rules is None else raw_rules
        if not isinstance(raw_rules, list):
            raise PolicyError(f"{source}: 'rules' must be a list")
        rules: list[PolicyRule] = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_rules):
            where = f"{source}: rule {i + 1}"
            if not isinstance(raw, dict):
                raise PolicyError(f"{where}: expected a mapping")
            unknown = set(raw) - {"id", "match", "mode", "expires"}
            if unknown:
                raise PolicyError(f"{where}: unknown keys {sorted(unknown)}")
            rule_id = raw.get("id", f"rule-{i + 1}")
            if not isinstance(rule_id, str) or not rule_id:
                raise PolicyError(f"{where}: 'id' must be a non-empty string")
            if rule_id in seen:
                raise PolicyError(f"{where}: duplicate id {rule_id!r}")
            seen.add(rule_id)
            match = raw.get("match")
            if not isinstance(match, dict) or not match:
                raise PolicyError(f"{where} ({rule_id}): 'match' must be a non-empty mapping")
            parsed: dict[str, tuple[str, ...]] = {}
            for key, value in match.items():
                values = value if isinstance(value, list) else [value]
                if not values or not all(isinstance(v, str | int | float | bool) for v in values):
                    raise PolicyError(f"{where} ({rule_id}): match {key!r} must be a string or a list of strings")
                parsed[_ALIASES.get(str(key), str(key))] = tuple(
                    str(v).lower() if isinstance(v, bool) else str(v) for v in values
                )
            if "mode" not in raw:
                raise PolicyError(f"{where} ({rule_id}): missing 'mode'")
            mode = _mode(raw["mode"], f"{where} ({rule_id}): mode")
            expires_ns = _expiry(raw.get("expires"), f"{where} ({rule_id}): expires")
            rules.append(PolicyRule(rule_id, parsed, mode, expires_ns))
        return cls(tuple(rules), default)


def _mode(value: Any, where: str) -> ContentMode:
    if isinstance(value, str):
        norm = value.strip().lower().replace("-", "_")
        for mode in ContentMode:
            if mode.value == norm:
                return mode
    raise PolicyError(f"{where}: {value!r} is not one of {[m.value for m in ContentMode]}")


def _expiry(value: Any, where: str) -> int | None:
    if value is None:
        return None
    when: datetime
    if isinstance(value, datetime):  # YAML parses timestamps itself
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise PolicyError(f"{where}: {value!r} is not an ISO 8601 time") from exc
    else:
        raise PolicyError(f"{where}: {value!r} is not an ISO 8601 time")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1_000_000_000)


def _load(path: Path) -> CapturePolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except ImportError as exc:  # pragma: no cover - pyyaml ships with the store extra
        raise PolicyError(f"{path}: YAML policies need PyYAML (pip install pyyaml), or use JSON") from exc
    except Exception as exc:  # yaml.YAMLError or json.JSONDecodeError: both are "not parseable"
        raise PolicyError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    return CapturePolicy.parse(document, str(path))


class PolicyFile:
    """A policy file, re-read when it changes; the last good policy is kept when a new version is bad.

    ``current()`` costs one ``stat`` per ``check_interval`` seconds and is safe from any thread.
    """

    def __init__(self, path: str | Path, *, check_interval: float = 1.0) -> None:
        self.path = Path(path)
        self._interval = check_interval
        self._lock = threading.Lock()
        self._policy = CapturePolicy()
        self._signature: tuple[int, int] | None = None
        self._next_check = 0.0
        self.last_error: str | None = None
        self._refresh(force=True)

    def _refresh(self, *, force: bool = False) -> None:
        try:
            st = os.stat(self.path)
            signature: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            signature = None
        if not force and signature == self._signature:
            return
        self._signature = signature
        if signature is None:
            self.last_error = f"{self.path}: policy file not found; keeping the last good policy"
            _log.error("%s", self.last_error)
            return
        try:
            self._policy = _load(self.path)
            self.last_error = None
            _log.info("capture policy loaded from %s: %d rules", self.path, len(self._policy.rules))
        except PolicyError as exc:
            self.last_error = f"{exc}; keeping the last good policy"
            _log.error("rejected capture policy: %s", self.last_error)

    def current(self) -> CapturePolicy:
        now = time.monotonic()
        if now >= self._next_check:
            with self._lock:
                if now >= self._next_check:
                    self._refresh()
                    self._next_check = now + self._interval
        return self._policy

    @property
    def rules(self) -> Sequence[PolicyRule]:
        return self.current().rules
