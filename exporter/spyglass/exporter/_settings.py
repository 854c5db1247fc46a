"""The exporter's configuration, read once from ``OTEL_*`` variables into a frozen object.

Precedence: constructor argument > environment variable > ``DEFAULT_*``. A bad value is logged and
replaced by the default (an app must never fail to start because of a telemetry setting).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spyglass.exporter._cost import PriceOverride, load_price_overrides
from spyglass.exporter._modes import ContentMode, RedactionMode
from spyglass.semconv import environment as env

_log = logging.getLogger(__name__)

DEFAULT_PROTOCOL = "http/protobuf"
DEFAULT_ENDPOINTS = {
    "grpc": "http://localhost:4317",
    "http/protobuf": "http://localhost:4318/v1/traces",
    "http/json": "http://localhost:4318/v1/traces",
}
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_CONTENT_MODE = ContentMode.REDACTED
DEFAULT_REDACTION_MODE = RedactionMode.MASK
# genai-prices' own update location (genai_prices.update_prices.DEFAULT_UPDATE_URL), not imported here so
# that reading settings never imports the HTTP client.
DEFAULT_PRICES_UPDATE_URL = (
    "https://raw.githubusercontent.com/pydantic/genai-prices/refs/heads/main/prices/new_data/v2/data.json"
)
PROTOCOLS = frozenset(DEFAULT_ENDPOINTS)


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value is not None and value.strip() else None


def _traces(environ: Mapping[str, str], traces_name: str, general_name: str) -> str | None:
    return _get(environ, traces_name) or _get(environ, general_name)


def parse_headers(raw: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` (values URL-decoded, as the spec says); malformed pairs are logged and skipped."""
    from urllib.parse import unquote

    headers: dict[str, str] = {}
    for pair in (raw or "").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            _log.warning("ignoring malformed OTLP header %r (expected key=value)", pair)
            continue
        headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


@dataclass(frozen=True)
class Settings:
    """Everything the exporter reads from the environment, resolved once."""

    protocol: str = DEFAULT_PROTOCOL
    endpoint: str = DEFAULT_ENDPOINTS[DEFAULT_PROTOCOL]
    headers: Mapping[str, str] = field(default_factory=dict)
    compression: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    certificate: str | None = None
    export_file: Path | None = None
    spool_dir: Path | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    content_mode: ContentMode = DEFAULT_CONTENT_MODE
    redaction_mode: RedactionMode = DEFAULT_REDACTION_MODE
    redaction_detectors: tuple[str, ...] | None = None  # None: all built-in detectors
    redaction_patterns: Mapping[str, str] = field(default_factory=dict)
    redaction_keys: tuple[str, ...] = ()
    hmac_key: bytes | None = None
    policy_file: Path | None = None
    price_overrides: tuple[PriceOverride, ...] = ()
    prices_update_url: str | None = None  # None: offline (the bundled database only)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if environ is None else environ
        protocol = _traces(e, env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, env.OTEL_EXPORTER_OTLP_PROTOCOL)
        if protocol not in PROTOCOLS:
            if protocol is not None:
                _log.warning("unknown OTLP protocol %r; using %s", protocol, DEFAULT_PROTOCOL)
            protocol = DEFAULT_PROTOCOL
        endpoint = _get(e, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
        if endpoint is None:
            general = _get(e, env.OTEL_EXPORTER_OTLP_ENDPOINT)
            if general is None:
                endpoint = DEFAULT_ENDPOINTS[protocol]
            elif protocol == "grpc":
                endpoint = general
            else:  # the general endpoint is a base URL: the signal path is appended (spec)
                endpoint = general.rstrip("/") + "/v1/traces"
        compression = _traces(e, env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, env.OTEL_EXPORTER_OTLP_COMPRESSION)
        if compression not in (None, "gzip", "none"):
            _log.warning("unknown OTLP compression %r; sending uncompressed", compression)
            compression = None
        timeout_s = DEFAULT_TIMEOUT_S
        raw_timeout = _traces(e, env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, env.OTEL_EXPORTER_OTLP_TIMEOUT)
        if raw_timeout is not None:
            try:
                timeout_s = float(raw_timeout) / 1000.0
                if timeout_s <= 0:
                    raise ValueError(raw_timeout)
            except ValueError:
                _log.warning("bad OTLP timeout %r ms; using %s s", raw_timeout, DEFAULT_TIMEOUT_S)
                timeout_s = DEFAULT_TIMEOUT_S
        spool_max = DEFAULT_SPOOL_MAX_BYTES
        raw_spool_max = _get(e, env.OTEL_SPYGLASS_SPOOL_MAX_BYTES)
        if raw_spool_max is not None:
            try:
                spool_max = int(raw_spool_max)
                if spool_max <= 0:
                    raise ValueError(raw_spool_max)
            except ValueError:
                _log.warning("bad %s=%r; using %d", env.OTEL_SPYGLASS_SPOOL_MAX_BYTES, raw_spool_max, spool_max)
                spool_max = DEFAULT_SPOOL_MAX_BYTES
        patterns: dict[str, str] = {}
        raw_patterns = _get(e, env.OTEL_SPYGLASS_REDACTION_PATTERNS)
        if raw_patterns is not None:
            try:
                loaded = json.loads(raw_patterns)
                if not isinstance(loaded, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
                ):
                    raise ValueError("expected a JSON object of NAME: regex strings")
                patterns = loaded
            except ValueError as exc:
                _log.error("ignoring %s: %s", env.OTEL_SPYGLASS_REDACTION_PATTERNS, exc)
        overrides: tuple[PriceOverride, ...] = ()
        prices_file = _get(e, env.OTEL_SPYGLASS_PRICES_FILE)
        if prices_file is not None:
            try:
                overrides = load_price_overrides(prices_file)
            except ValueError as exc:
                _log.error("ignoring %s: %s", env.OTEL_SPYGLASS_PRICES_FILE, exc)
        update_url: str | None = None
        raw_update = _get(e, env.OTEL_SPYGLASS_PRICES_UPDATE)
        if raw_update is not None:
            lowered = raw_update.lower()
            if lowered in ("true", "1", "yes", "on"):
                update_url = DEFAULT_PRICES_UPDATE_URL
            elif lowered.startswith(("http://", "https://")):
                update_url = raw_update
            elif lowered not in ("false", "0", "no", "off"):
                _log.warning("bad %s=%r; prices stay offline", env.OTEL_SPYGLASS_PRICES_UPDATE, raw_update)
        detectors = _get(e, env.OTEL_SPYGLASS_REDACTION_DETECTORS)
        key = _get(e, env.OTEL_SPYGLASS_REDACTION_HMAC_KEY)
        export_file = _get(e, env.OTEL_SPYGLASS_EXPORT_FILE)
        spool_dir = _get(e, env.OTEL_SPYGLASS_SPOOL_DIR)
        policy_file = _get(e, env.OTEL_SPYGLASS_POLICY_FILE)
        return cls(
            protocol=protocol,
            endpoint=endpoint,
            headers=parse_headers(_traces(e, env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, env.OTEL_EXPORTER_OTLP_HEADERS)),
            compression=None if compression == "none" else compression,
            timeout_s=timeout_s,
            certificate=_traces(e, env.OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE, env.OTEL_EXPORTER_OTLP_CERTIFICATE),
            export_file=Path(export_file) if export_file else None,
            spool_dir=Path(spool_dir) if spool_dir else None,
            spool_max_bytes=spool_max,
            content_mode=ContentMode.parse(_get(e, env.OTEL_SPYGLASS_CONTENT_MODE), DEFAULT_CONTENT_MODE),
            redaction_mode=RedactionMode.parse(_get(e, env.OTEL_SPYGLASS_REDACTION_MODE), DEFAULT_REDACTION_MODE),
            redaction_detectors=tuple(d.strip().upper() for d in detectors.split(",") if d.strip())
            if detectors is not None
            else None,
            redaction_patterns=patterns,
            redaction_keys=tuple(
                k.strip() for k in (_get(e, env.OTEL_SPYGLASS_REDACTION_KEYS) or "").split(",") if k.strip()
            ),
            hmac_key=key.encode("utf-8") if key else None,
            policy_file=Path(policy_file) if policy_file else None,
            price_overrides=overrides,
            prices_update_url=update_url,
        )
