"""Reading otelcol configuration files the way the collector does, for tests that cannot run the collector.

``load`` merges several ``--config`` files in order like the collector's confmap (maps merge key by key, every
other value, lists included, is replaced by the later file). ``component_type`` splits ``type/name`` ids.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "collector-config"
COMPONENTS_FILE = CONFIG_DIR / "otelcol-contrib-components.yaml"

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
PIPELINE_SIGNALS = ("traces", "metrics", "logs")

# What `otelcol-contrib --config ...` is run with, per deployment shape.
CONFIG_SETS: dict[str, tuple[str, ...]] = {
    "agent": ("agent.yaml",),
    "gateway": ("gateway.yaml",),
    "gateway+clickhouse": ("gateway.yaml", "clickhouse.yaml"),
}

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")


def merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def load(*names: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in names:
        config = merge(config, yaml.safe_load((CONFIG_DIR / name).read_text(encoding="utf-8")))
    return config


def components() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPONENTS_FILE.read_text(encoding="utf-8"))
    return data


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def is_duration(value: object) -> bool:
    """A Go ``time.Duration`` string as the collector's config decoder accepts it (``0s``, ``1m30s``, ``720h``)."""
    return isinstance(value, str) and bool(_DURATION.match(value))


def grpc_port(config: dict[str, Any], receiver: str = "otlp") -> int:
    endpoint = config["receivers"][receiver]["protocols"]["grpc"]["endpoint"]
    return int(str(endpoint).rsplit(":", 1)[1])


def http_port(config: dict[str, Any], receiver: str = "otlp") -> int:
    endpoint = config["receivers"][receiver]["protocols"]["http"]["endpoint"]
    return int(str(endpoint).rsplit(":", 1)[1])
