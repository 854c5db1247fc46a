"""deploy/: the Dockerfile, the compose files and the Kubernetes manifests, checked statically.

Docker and a cluster are not available where Spyglass is built, so this checks what ``docker compose config``,
``docker build`` and ``kubectl apply --dry-run`` would catch that matters here: structure, pinned image tags,
non-root containers, and that every port and host name agrees with the collector configs and the store's own
defaults.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import opentelemetry.environment_variables as otel_env
import opentelemetry.instrumentation.environment_variables as otel_instrumentation_env
import pytest
import yaml

from spyglass.semconv import environment as spyglass_env
from spyglass.store import Settings
from tests.collector_config._otelcol import CONFIG_DIR, components, grpc_port, http_port, load

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"

STORE_PORTS = {
    f.name: f.default for f in dataclasses.fields(Settings) if f.name in {"port", "otlp_grpc_port", "otlp_http_port"}
}
# Ports the third-party images listen on by default (research notes, backends.md §1; collector-config/).
IMAGE_PORTS = {
    "jaegertracing/jaeger": {4317, 4318, 16686},
    "arizephoenix/phoenix": {6006, 4317},
    "otel/opentelemetry-collector-contrib": {4317, 4318, 13133},
    "clickhouse/clickhouse-server": {8123, 9000},
}
KNOWN_ENV = {
    *(getattr(spyglass_env, n) for n in dir(spyglass_env) if n.startswith("OTEL_")),
    *(getattr(otel_env, n) for n in dir(otel_env) if n.startswith("OTEL_")),
    *(getattr(otel_instrumentation_env, n) for n in dir(otel_instrumentation_env) if n.startswith("OTEL_")),
}
PINNED = re.compile(r"^[a-z0-9./-]+:(version-)?\d+(\.\d+)+(-[a-z0-9.-]+)?$")


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _compose(*names: str) -> dict[str, Any]:
    from tests.collector_config._otelcol import merge

    out: dict[str, Any] = {}
    for name in names:
        out = merge(out, yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8")))
    return out


COMPOSE = _compose("docker-compose.yml")
COMPOSE_CH = _compose("docker-compose.yml", "docker-compose.clickhouse.yml")
GATEWAY = load("gateway.yaml")


def _image_name(image: str) -> str:
    return image.rsplit(":", 1)[0]


def _endpoint(value: str) -> tuple[str, int]:
    parts = urlsplit(value if "://" in value else f"tcp://{value}")
    assert parts.hostname and parts.port, value
    return parts.hostname, parts.port


# --- Dockerfile -----------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    args = {}
    for instruction, rest in _dockerfile():
        if instruction == "ARG" and not stages and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
        if instruction == "FROM":
            image, _, name = rest.partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            current = [("FROM", image)]
            stages[name.strip()] = current
        else:
            current.append((instruction, rest))
    return stages


def test_dockerfile_stages_are_pinned_and_copy_what_exists() -> None:
    stages = _stages()
    assert set(stages) == {"build", "store", "sample-app"}
    for name, instructions in stages.items():
        base = instructions[0][1]
        assert base in stages or PINNED.match(base), f"{name}: unpinned base image {base}"
    for instruction, rest in stages["build"]:
        if instruction == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    # Only what the build copies goes into the context.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert ignore[ignore.index("*") + 1 :][:1] == ["!pyproject.toml"]


def test_store_image_is_non_root_with_volume_healthcheck_and_the_store_ports() -> None:
    store = dict(_stages()["store"])  # the last instruction of each kind wins
    user = store["USER"].split(":")[0]
    assert user not in {"root", "0"} and int(user) >= 1000
    assert store["VOLUME"] == '["/data"]'
    assert set(map(int, store["EXPOSE"].split())) == set(STORE_PORTS.values())
    assert "/-/health" in store["HEALTHCHECK"] and str(STORE_PORTS["port"]) in store["HEALTHCHECK"]
    assert store["ENTRYPOINT"] == '["spyglass"]' and store["CMD"] == '["serve"]'
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for i, rest in _stages()["store"] if i == "ENV")))
    assert env[spyglass_env.OTEL_SPYGLASS_STORE_DB].startswith("/data/")
    assert env[spyglass_env.OTEL_SPYGLASS_STORE_HOST] == "0.0.0.0"
    for name in env:
        assert not name.startswith("OTEL_") or name in KNOWN_ENV, name
    # The data directory belongs to the user the store runs as.
    assert "chown spyglass:spyglass /data" in " ".join(rest for i, rest in _stages()["store"] if i == "RUN")


def test_sample_app_image_runs_the_app_zero_code_as_non_root() -> None:
    app = dict(_stages()["sample-app"])
    assert app["USER"].split(":")[0] not in {"root", "0"}
    assert app["ENTRYPOINT"] == '["opentelemetry-instrument", "python", "-m", "spyglass.testing.sample_app"]'
    assert "openai" in app["RUN"] and "anthropic" in app["RUN"]
    # Installed from the built wheel by path, never by name from the index.
    for stage in ("store", "sample-app"):
        installs = [rest for i, rest in _stages()[stage] if i == "RUN" and "pip install" in rest]
        assert installs and all("/wheels/spyglass-*.whl)[" in r for r in installs), stage
    import spyglass.testing.sample_app  # noqa: F401 - the module the image runs exists


# --- docker compose -------------------------------------------------------------------------------


def test_compose_has_the_documented_services_with_pinned_images() -> None:
    services = COMPOSE["services"]
    assert {"spyglass-store", "sample-app", "collector", "jaeger", "phoenix"} <= set(services)
    for name, service in COMPOSE_CH["services"].items():
        image = service["image"]
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
            assert build["target"] in _stages()
            assert image.endswith(":0.1.0"), name
        else:
            assert PINNED.match(image), f"{name}: {image} is not pinned"
    assert services["collector"]["image"] == components()["image"]


def test_compose_publishes_only_on_loopback_and_refers_to_defined_things() -> None:
    for config in (COMPOSE, COMPOSE_CH):
        services = config["services"]
        for name, service in services.items():
            for port in service.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            for dependency in service.get("depends_on", {}):
                assert dependency in services, f"{name} depends on unknown {dependency}"
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("."):
                    assert (DEPLOY / source).exists(), source
                else:
                    assert source in config["volumes"], f"{name}: undeclared volume {source}"
            for key in service.get("environment", {}):
                assert not key.startswith("OTEL_") or key in KNOWN_ENV, f"{name}: unknown {key}"


def _listening(services: dict[str, Any], host: str) -> set[int]:
    service = services[host]
    if "build" in service:  # our store image
        return set(STORE_PORTS.values())
    return IMAGE_PORTS[_image_name(service["image"])]


@pytest.mark.parametrize("overlay", [False, True])
def test_gateway_exporters_reach_compose_services_on_ports_they_listen_on(overlay: bool) -> None:
    compose = COMPOSE_CH if overlay else COMPOSE
    collector = compose["services"]["collector"]
    files = [arg.split("=", 1)[1] for arg in collector["command"]]
    mount = next(v for v in collector["volumes"] if v.startswith("../collector-config:"))
    mounted_at = mount.split(":")[1]
    assert all(f.startswith(mounted_at + "/") for f in files)
    config = load(*(Path(f).name for f in files))
    assert all((CONFIG_DIR / Path(f).name).is_file() for f in files)
    for exporter_id, exporter in config["exporters"].items():
        host, port = _endpoint(exporter["endpoint"])
        assert host in compose["services"], f"{exporter_id}: no compose service {host}"
        assert port in _listening(compose["services"], host), f"{exporter_id}: {host} does not listen on {port}"
    # The store gets the same token the gateway sends.
    token = compose["services"]["spyglass-store"]["environment"][spyglass_env.OTEL_SPYGLASS_STORE_AUTH_TOKEN]
    assert collector["environment"]["SPYGLASS_AUTH_TOKEN"] == token
    assert "${env:SPYGLASS_AUTH_TOKEN}" in config["exporters"]["otlp/spyglass"]["headers"]["authorization"]
    # The persistent queue directory is a volume.
    queue_dir = config["extensions"]["file_storage/queue"]["directory"]
    assert any(v.endswith(":" + queue_dir) for v in collector["volumes"])
    if overlay:
        env = collector["environment"]
        assert env["CLICKHOUSE_PASSWORD"] == compose["services"]["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"]


def test_sample_app_sends_to_the_gateway_through_the_spyglass_exporter() -> None:
    services = COMPOSE["services"]
    env = services["sample-app"]["environment"]
    assert env[spyglass_env.OTEL_TRACES_EXPORTER] == "spyglass"
    host, port = _endpoint(env[spyglass_env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT])
    assert host == "collector" and port == http_port(GATEWAY)
    assert env[spyglass_env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL] == "http/protobuf"
    published = {int(p.split(":")[-1]) for p in services["collector"]["ports"]}
    assert published == {grpc_port(GATEWAY), http_port(GATEWAY)}


# --- Kubernetes -----------------------------------------------------------------------------------


def _manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    docs = []
    for resource in kustomization["resources"]:
        docs.extend(_yaml_docs(K8S / resource))
    return docs


API_VERSIONS = {
    "Namespace": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "ConfigMap": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
}


def test_kustomization_resources_and_generated_config_map() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["namespace"] == "spyglass"
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    (generator,) = kustomization["configMapGenerator"]
    (entry,) = generator["files"]
    key, source = entry.split("=", 1)
    assert (K8S / source).resolve() == (CONFIG_DIR / "gateway.yaml").resolve()
    gateway = next(d for d in _manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == "spyglass-gateway")
    pod = gateway["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == generator["name"]
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert container["args"] == [f"--config={mount['mountPath']}/{key}"]
    assert container["image"] == components()["image"]


def test_manifests_are_well_formed_pinned_and_non_root() -> None:
    docs = _manifests()
    for doc in docs:
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], doc["kind"]
        assert doc["metadata"]["name"]
        if doc["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        spec = doc["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert PINNED.match(container["image"]), container["image"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["limits"]["memory"]
            for item in container.get("env", []):
                name = item["name"]
                assert not name.startswith("OTEL_") or name in KNOWN_ENV, name
        claims = {
            v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v
        }
        pvcs = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
        assert claims <= pvcs


def test_services_select_workloads_and_target_named_container_ports() -> None:
    docs = _manifests()
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matches = [w for w in workloads if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, service["metadata"]["name"]
        container_ports = {
            p["name"]: p["containerPort"]
            for c in matches[0]["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)


def test_store_statefulset_keeps_its_database_on_a_persistent_volume() -> None:
    store = next(d for d in _manifests() if d["kind"] == "StatefulSet")
    assert store["spec"]["replicas"] == 1  # one SQLite writer
    (claim,) = store["spec"]["volumeClaimTemplates"]
    container = store["spec"]["template"]["spec"]["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    env = {e["name"]: e for e in container["env"]}
    assert Path(env[spyglass_env.OTEL_SPYGLASS_STORE_DB]["value"]).parent == Path(mount["mountPath"])
    assert env[spyglass_env.OTEL_SPYGLASS_STORE_AUTH_TOKEN]["valueFrom"]["secretKeyRef"]["name"] == "spyglass-auth"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "otlp-grpc": STORE_PORTS["otlp_grpc_port"],
        "otlp-http": STORE_PORTS["otlp_http_port"],
        "http": STORE_PORTS["port"],
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/health"


def test_gateway_exporters_reach_cluster_services() -> None:
    services = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "Service"}
    for exporter_id, exporter in GATEWAY["exporters"].items():
        host, port = _endpoint(exporter["endpoint"])
        assert host in services, f"{exporter_id}: no Service {host}"
        assert port in {p["port"] for p in services[host]["spec"]["ports"]}, f"{exporter_id}: {host}:{port}"
    gateway = services["spyglass-gateway"]
    assert {p["port"] for p in gateway["spec"]["ports"]} == {grpc_port(GATEWAY), http_port(GATEWAY)}
    # The agents resolve every gateway pod through the headless Service on the port agent.yaml dials.
    headless = services["spyglass-gateway-headless"]
    assert headless["spec"]["clusterIP"] == "None"
    agent_port = load("agent.yaml")["exporters"]["loadbalancing"]["resolver"]["dns"]["port"]
    assert agent_port in {p["port"] for p in headless["spec"]["ports"]}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize(
    "doc", ["README.md#Demo", "README.md#Production setup", "deploy/README.md", "collector-config/README.md"]
)
def test_files_the_docs_point_to_exist(doc: str) -> None:
    path, _, heading = doc.partition("#")
    text = (ROOT / path).read_text(encoding="utf-8")
    if heading:
        text = _section(text, f"## {heading}\n")
    paths = set(re.findall(r"`((?:collector-config|deploy|benchmarks|tests)/[A-Za-z0-9_./-]*)`", text))
    assert paths, doc
    for found in paths:
        assert (ROOT / found).exists(), f"{doc} points to {found}, which does not exist"
