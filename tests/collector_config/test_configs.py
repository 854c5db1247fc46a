"""The collector configurations are complete and use only components and settings otelcol-contrib 0.136.0 has.

The collector binary cannot run here, so this checks what its config loader would: every component id names a
type the pinned distribution ships, every pipeline refers to defined components, and the settings of the
processors and exporters we rely on have the shapes their documentation gives.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from spyglass.semconv import extensions as ext
from spyglass.semconv import gen_ai
from tests.collector_config._otelcol import (
    CONFIG_DIR,
    CONFIG_SETS,
    KINDS,
    PIPELINE_SIGNALS,
    component_type,
    components,
    grpc_port,
    is_duration,
    load,
)

CONFIGS = {name: load(*files) for name, files in CONFIG_SETS.items()}
INT64_MAX = 2**63 - 1


def _component_ids(config: dict[str, Any], kind: str) -> set[str]:
    return set((config.get(kind) or {}).keys())


def test_every_config_file_belongs_to_a_config_set() -> None:
    used = {f for files in CONFIG_SETS.values() for f in files}
    on_disk = {p.name for p in CONFIG_DIR.glob("*.yaml")} - {"otelcol-contrib-components.yaml"}
    assert on_disk == used


def test_component_list_is_pinned_and_consistent() -> None:
    data = components()
    assert data["version"] == "0.136.0"
    assert data["image"] == f"otel/opentelemetry-collector-contrib:{data['version']}"
    for kind in KINDS:
        modules = data["modules"][kind]
        assert len(modules) == len(set(modules)), f"duplicate {kind} modules"
        for type_name, module in (data["types"][kind] or {}).items():
            assert module in modules, f"{kind} type {type_name}: {module} is not in the 0.136.0 manifest"
    # Spot checks against the manifest: components that left the distribution before 0.136.0 are absent.
    assert "go.opentelemetry.io/collector/exporter/loggingexporter" not in data["modules"]["exporters"]
    assert not any("ballastextension" in m for m in data["modules"]["extensions"])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_component_exists_in_the_pinned_version(name: str) -> None:
    config = CONFIGS[name]
    known = components()["types"]
    assert set(config) <= {*KINDS, "service"}, f"unknown top-level keys in {name}"
    for kind in KINDS:
        for component_id in _component_ids(config, kind):
            assert re.fullmatch(r"[a-z0-9_]+(/[A-Za-z0-9_.-]+)?", component_id), component_id
            assert component_type(component_id) in (known[kind] or {}), (
                f"{name}: {kind[:-1]} {component_id!r} is not a component of otelcol-contrib 0.136.0"
            )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_pipelines_refer_only_to_defined_components_and_use_all_of_them(name: str) -> None:
    config = CONFIGS[name]
    service = config["service"]
    assert set(service.get("extensions", [])) == _component_ids(config, "extensions")
    used: dict[str, set[str]] = {kind: set() for kind in ("receivers", "processors", "exporters")}
    assert service["pipelines"], "no pipelines"
    for pipeline_id, pipeline in service["pipelines"].items():
        assert component_type(pipeline_id) in PIPELINE_SIGNALS
        assert set(pipeline) <= {"receivers", "processors", "exporters"}
        assert pipeline["receivers"] and pipeline["exporters"], f"{pipeline_id} needs receivers and exporters"
        for kind in used:
            ids = pipeline.get(kind, [])
            assert len(ids) == len(set(ids)), f"{pipeline_id}: a {kind[:-1]} is listed twice"
            missing = set(ids) - _component_ids(config, kind)
            assert not missing, f"{name} {pipeline_id}: undefined {kind} {sorted(missing)}"
            used[kind] |= set(ids)
        processors = pipeline.get("processors", [])
        # The documented order: memory_limiter first, batch last.
        assert processors[0] == "memory_limiter"
        assert processors[-1] == "batch"
    for kind, ids in used.items():
        assert ids == _component_ids(config, kind), f"{name}: {kind} defined but unused"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_dollar_signs_are_env_placeholders_or_escaped(name: str) -> None:
    # The collector expands ${env:NAME} and turns `$$` into a literal `$` (how OTTL replacements write ${1});
    # any other `$` would be expanded or rejected, so none may appear (the regexes are written without `$`).
    for file in CONFIG_SETS[name]:
        text = (CONFIG_DIR / file).read_text(encoding="utf-8")
        code = "\n".join(line.split(" #", 1)[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
        code = re.sub(r"\$\{env:[A-Z_][A-Z0-9_]*\}", "", code)
        code = re.sub(r"\$\$\{[0-9]+\}", "", code)
        assert code.count("$") == 0, file


def test_memory_limiter_and_batch_shapes() -> None:
    for name, config in CONFIGS.items():
        limiter = config["processors"]["memory_limiter"]
        assert set(limiter) <= {
            "check_interval",
            "limit_mib",
            "spike_limit_mib",
            "limit_percentage",
            "spike_limit_percentage",
        }
        assert is_duration(limiter["check_interval"]), name
        assert 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] <= 100, name
        batch = config["processors"]["batch"]
        assert set(batch) <= {"timeout", "send_batch_size", "send_batch_max_size", "metadata_keys"}
        assert is_duration(batch["timeout"])
        assert 0 < batch["send_batch_size"] <= batch["send_batch_max_size"]


def test_redaction_processor_shape() -> None:
    redaction = CONFIGS["gateway"]["processors"]["redaction"]
    documented = {
        "allow_all_keys": bool,
        "allowed_keys": list,
        "ignored_keys": list,
        "blocked_key_patterns": list,
        "blocked_values": list,
        "allowed_values": list,
        "hash_function": str,
        "summary": str,
        "redact_all_types": bool,
        "db_sanitizer": dict,
    }
    assert set(redaction) <= set(documented)
    for key, value in redaction.items():
        assert isinstance(value, documented[key]), key
    # allowed_keys fails closed when empty: without allow_all_keys every attribute would be deleted.
    assert redaction["allow_all_keys"] is True or redaction.get("allowed_keys")
    assert redaction["summary"] in {"debug", "info", "silent"}
    for pattern in redaction["blocked_key_patterns"] + redaction["blocked_values"]:
        _assert_re2_compatible(pattern)
        re.compile(pattern)
    key_pattern = re.compile(redaction["blocked_key_patterns"][0])
    for key in ("http.request.header.authorization", "openai.api_key", "db.password", "client_secret"):
        assert key_pattern.search(key), key
    # Never mask the numbers the backends and tail sampling read.
    for key in (gen_ai.USAGE_INPUT_TOKENS, gen_ai.USAGE_OUTPUT_TOKENS, ext.USAGE_COST, gen_ai.REQUEST_MODEL):
        assert not key_pattern.search(key), key


def test_transform_processor_shape() -> None:
    transform = CONFIGS["gateway"]["processors"]["transform/genai_pii"]
    assert set(transform) <= {"error_mode", "trace_statements", "metric_statements", "log_statements"}
    # 0.136.0 defaults to propagate, which would drop a whole batch on one bad value.
    assert transform["error_mode"] == "ignore"
    contexts = [group["context"] for group in transform["trace_statements"]]
    assert contexts == ["span", "spanevent"]
    for group in transform["trace_statements"]:
        assert set(group) <= {"context", "conditions", "statements", "error_mode"}
        assert group["statements"] and all(isinstance(s, str) for s in group["statements"])


def test_tail_sampling_shape_and_policies() -> None:
    sampling = CONFIGS["gateway"]["processors"]["tail_sampling"]
    assert set(sampling) <= {
        "decision_wait",
        "num_traces",
        "expected_new_traces_per_sec",
        "decision_cache",
        "policies",
        "sample_on_first_match",
        "drop_pending_traces_on_shutdown",
    }
    assert is_duration(sampling["decision_wait"])
    assert sampling["num_traces"] > 0
    assert set(sampling["decision_cache"]) <= {"sampled_cache_size", "non_sampled_cache_size"}
    policy_blocks = {
        "always_sample": set(),
        "latency": {"threshold_ms", "upper_threshold_ms"},
        "numeric_attribute": {"key", "min_value", "max_value", "invert_match"},
        "probabilistic": {"hash_salt", "sampling_percentage"},
        "status_code": {"status_codes"},
        "string_attribute": {"key", "values", "enabled_regex_matching", "cache_max_size", "invert_match"},
        "rate_limiting": {"spans_per_second"},
        "span_count": {"min_spans", "max_spans"},
        "boolean_attribute": {"key", "value", "invert_match"},
        "ottl_condition": {"error_mode", "span", "spanevent"},
    }
    policies = sampling["policies"]
    names = [p["name"] for p in policies]
    assert len(names) == len(set(names))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for policy in policies:
        kind = policy["type"]
        assert kind in policy_blocks, kind
        assert set(policy) <= {"name", "type", kind}
        assert set(policy.get(kind) or {}) <= policy_blocks[kind], policy["name"]
        by_type.setdefault(kind, []).append(policy.get(kind) or {})

    # Every error is kept.
    assert by_type["status_code"][0]["status_codes"] == ["ERROR"]
    # Every slow call is kept.
    assert by_type["latency"][0]["threshold_ms"] > 0
    # Every expensive call is kept: by cost (a double, so an OTTL condition) ...
    (cost,) = by_type["ottl_condition"]
    assert cost["error_mode"] == "ignore"
    (condition,) = cost["span"]
    match = re.fullmatch(r'attributes\["([^"]+)"\] >= (\d+(?:\.\d+)?)', condition)
    assert match and match.group(1) == ext.USAGE_COST and float(match.group(2)) > 0
    # ... and by tokens (integers, so numeric_attribute with an int64 range).
    token_keys = {p["key"] for p in by_type["numeric_attribute"]}
    assert token_keys == {gen_ai.USAGE_INPUT_TOKENS, gen_ai.USAGE_OUTPUT_TOKENS}
    for numeric in by_type["numeric_attribute"]:
        assert 0 < numeric["min_value"] <= numeric["max_value"] <= INT64_MAX
    # The rest is sampled, not all kept and not all dropped.
    (rest,) = by_type["probabilistic"]
    assert 0 < rest["sampling_percentage"] < 100
    assert "always_sample" not in by_type


def test_file_storage_and_persistent_queues() -> None:
    for name in ("gateway", "gateway+clickhouse"):
        config = CONFIGS[name]
        storage = config["extensions"]["file_storage/queue"]
        assert set(storage) <= {"directory", "create_directory", "timeout", "fsync", "compaction", "recreate"}
        assert storage["directory"].startswith("/")
        assert is_duration(storage["timeout"])
        assert set(storage["compaction"]) <= {
            "on_start",
            "on_rebound",
            "directory",
            "max_transaction_size",
            "rebound_needed_threshold_mib",
            "rebound_trigger_threshold_mib",
            "check_interval",
            "cleanup_on_start",
        }
        for exporter_id, exporter in config["exporters"].items():
            queue = exporter["sending_queue"]
            assert queue["enabled"] is True, exporter_id
            assert queue["storage"] in config["extensions"], exporter_id
            assert component_type(queue["storage"]) == "file_storage"
            retry = exporter["retry_on_failure"]
            assert retry["enabled"] is True
            # 0 means retry until the backend is back: a long outage loses nothing that fits the queue.
            assert retry["max_elapsed_time"] == "0s", exporter_id
            assert is_duration(retry["initial_interval"]) and is_duration(retry["max_interval"])


def test_gateway_exporters_reach_every_backend() -> None:
    exporters = CONFIGS["gateway"]["exporters"]
    assert set(exporters) == {"otlp/jaeger", "otlphttp/phoenix", "otlp/spyglass"}
    assert exporters["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    phoenix = exporters["otlphttp/phoenix"]
    assert phoenix["endpoint"].startswith("http://") and not phoenix["endpoint"].endswith("/v1/traces")
    assert phoenix["encoding"] == "proto"  # Phoenix answers OTLP/JSON with 415
    store = exporters["otlp/spyglass"]
    assert store["headers"]["authorization"] == "Bearer ${env:SPYGLASS_AUTH_TOKEN}"
    for exporter in exporters.values():
        assert set(exporter) <= {
            "endpoint",
            "tls",
            "headers",
            "compression",
            "encoding",
            "timeout",
            "sending_queue",
            "retry_on_failure",
        }


def test_clickhouse_overlay_adds_the_exporter_to_the_same_pipeline() -> None:
    config = CONFIGS["gateway+clickhouse"]
    clickhouse = config["exporters"]["clickhouse"]
    assert re.match(r"^(tcp|clickhouse|https?)://", clickhouse["endpoint"])
    assert set(clickhouse) <= {
        "endpoint",
        "username",
        "password",
        "database",
        "traces_table_name",
        "logs_table_name",
        "metrics_tables",
        "create_schema",
        "ttl",
        "compress",
        "async_insert",
        "timeout",
        "cluster_name",
        "table_engine",
        "connection_params",
        "sending_queue",
        "retry_on_failure",
        "tls",
    }
    assert is_duration(clickhouse["ttl"]) and clickhouse["traces_table_name"] == "otel_traces"
    assert clickhouse["password"] == "${env:CLICKHOUSE_PASSWORD}"
    gateway_exporters = CONFIGS["gateway"]["service"]["pipelines"]["traces"]["exporters"]
    assert config["service"]["pipelines"]["traces"]["exporters"] == [*gateway_exporters, "clickhouse"]
    # The overlay changes nothing else in the pipeline.
    assert (
        config["service"]["pipelines"]["traces"]["processors"]
        == (CONFIGS["gateway"]["service"]["pipelines"]["traces"]["processors"])
    )


def test_agent_forwards_to_gateways_by_trace_id() -> None:
    agent = CONFIGS["agent"]
    for protocol in agent["receivers"]["otlp"]["protocols"].values():
        assert protocol["endpoint"].startswith("127.0.0.1:")  # loopback: only the local app sends here
    balancer = agent["exporters"]["loadbalancing"]
    assert set(balancer) <= {"routing_key", "protocol", "resolver", "timeout"}
    assert balancer["routing_key"] == "traceID"
    assert set(balancer["protocol"]) == {"otlp"}
    assert "endpoint" not in balancer["protocol"]["otlp"]  # the resolver supplies it
    (resolver_kind,) = balancer["resolver"]
    assert resolver_kind in {"static", "dns", "k8s"}
    dns = balancer["resolver"]["dns"]
    assert set(dns) <= {"hostname", "port", "interval", "timeout"}
    assert dns["port"] == grpc_port(CONFIGS["gateway"])


def _assert_re2_compatible(pattern: str) -> None:
    # Go's regexp (RE2) rejects look-around, backreferences, possessive and atomic groups.
    for construct in ("(?=", "(?!", "(?<=", "(?<!", "(?>", "*+", "++", "?+"):
        assert construct not in pattern, f"{construct} is not RE2: {pattern}"
    assert not re.search(r"\\[1-9]", pattern), f"backreference in {pattern}"
