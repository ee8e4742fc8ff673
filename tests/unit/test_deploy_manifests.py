"""Static checks on deploy/: the Dockerfiles, the compose file and the Kubernetes manifests.

Nothing here builds an image or talks to a cluster. The tests parse every file, render the
kustomize overlay with a small JSON-patch applier, and check that the pieces agree with
each other and with `indexer.settings.Settings`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from indexer.settings import ModelSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_VLLM = DEPLOY / "k8s" / "overlays" / "vllm"
DOCKERFILE_CPU = DEPLOY / "docker" / "Dockerfile.cpu"
DOCKERFILE_CUDA = DEPLOY / "docker" / "Dockerfile.cuda"


API_PORT = 8000
API_ARGV = ["glimpse", "serve", "--host", "0.0.0.0", "--port", str(API_PORT)]
INGEST_ARGV = ["glimpse", "worker", "--queues", "ingest"]
MODEL_ARGV = ["glimpse", "worker", "--queues", "model"]

Doc = dict[str, Any]


# ---- loading ------------------------------------------------------------------------------


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"})


def _load_all(path: Path) -> list[Doc]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _kustomization(directory: Path) -> Doc:
    return _load_all(directory / "kustomization.yaml")[0]


def _render(directory: Path) -> list[Doc]:
    """A tiny `kustomize build`: resources (files and directories) plus JSON 6902 patches."""
    kust = _kustomization(directory)
    docs: list[Doc] = []
    for res in kust.get("resources", []):
        target = (directory / res).resolve()
        docs.extend(_render(target) if target.is_dir() else deepcopy(_load_all(target)))
    for patch in kust.get("patches", []):
        ops = _load_all(directory / patch["path"])[0]
        assert isinstance(ops, list), f"{patch['path']}: expected a JSON 6902 op list"
        matches = [
            d
            for d in docs
            if d["kind"] == patch["target"]["kind"]
            and d["metadata"]["name"] == patch["target"]["name"]
        ]
        assert len(matches) == 1, f"patch target {patch['target']} matched {len(matches)}"
        for op in ops:
            _apply_op(matches[0], op)
    return docs


def _apply_op(doc: Any, op: Doc) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op["op"] == "add":
            parent.insert(index, op["value"])
            return
        parent[index]  # noqa: B018 - IndexError when the path does not exist
    elif op["op"] in {"replace", "remove"} and last not in parent:
        raise KeyError(f"{op['op']} {op['path']}: no such path")
    if op["op"] == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif op["op"] in {"add", "replace"}:
        parent[int(last) if isinstance(parent, list) else last] = op["value"]
    else:
        raise AssertionError(f"unsupported op {op['op']}")


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def _pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def _container(doc: Doc, index: int = 0) -> Doc:
    container: Doc = _pod_spec(doc)["containers"][index]
    return container


def _argv(container: Doc) -> list[str]:
    return [str(a) for a in container.get("command", []) + container.get("args", [])]


def _workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet"}]


def _queues(argv: list[str]) -> list[str]:
    for i, arg in enumerate(argv):
        if arg == "--queues":
            return argv[i + 1].split(",")
        if arg.startswith("--queues="):
            return arg.split("=", 1)[1].split(",")
    return []


# ---- compose interpolation ---------------------------------------------------------------

_INTERP = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Resolve `${VAR}`, `${VAR:-default}` and `${VAR:?error}` as compose would with no env."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            op, arg = m.group(2), m.group(3)
            if op and op.endswith("-"):
                return arg
            if op and op.endswith("?"):
                return f"required-{m.group(1).lower()}"
            return ""

        return _INTERP.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


def _compose() -> Doc:
    doc: Doc = _interpolate(_load_all(COMPOSE)[0])
    return doc


def _compose_argv(service: Doc) -> list[str]:
    def as_list(v: Any) -> list[str]:
        if v is None:
            return []
        return shlex.split(v) if isinstance(v, str) else [str(x) for x in v]

    return as_list(service.get("entrypoint")) + as_list(service.get("command"))


def _compose_env(service: Doc) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ---- Dockerfiles -------------------------------------------------------------------------


def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    assert not pending, f"{path.name}: dangling line continuation"
    return out


def _stages(instrs: list[tuple[str, str]]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """[(base image with ARG defaults resolved, stage name, instructions)]."""
    args: dict[str, str] = {}
    stages: list[tuple[str, str, list[tuple[str, str]]]] = []
    for instr, rest in instrs:
        if instr == "ARG" and not stages and "=" in rest:
            key, val = rest.split("=", 1)
            args[key] = val
        elif instr == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--platform")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append((image, name, []))
        elif stages:
            stages[-1][2].append((instr, rest))
    return stages


def _exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)  # a JSON array is valid YAML
    assert isinstance(value, list), f"use the exec form: {args}"
    return [str(v) for v in value]


# ---- settings ----------------------------------------------------------------------------


def _is_setting(env_name: str) -> bool:
    path = env_name.removeprefix("GLIMPSE_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i < len(path) - 1:
            ann = field.annotation
            if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                return False
            model = ann
    return True


_ENV_NAME = re.compile(r"(?<![A-Za-z0-9_])GLIMPSE_[A-Z0-9_]*[A-Z0-9]")


def _env_names_in_deploy() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            for name in _ENV_NAME.findall(path.read_text()):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("GLIMPSE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("GLIMPSE_"):
            monkeypatch.setenv(key, value)
    return Settings()


# ==== tests: parsing ======================================================================


def test_every_yaml_under_deploy_parses() -> None:
    files = _yaml_files()
    assert len(files) >= 10
    for path in files:
        docs = _load_all(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            if isinstance(doc, dict) and "apiVersion" in doc and doc["kind"] != "Kustomization":
                assert doc.get("kind") and doc.get("metadata", {}).get("name"), path


def test_kustomizations_list_every_manifest_and_render() -> None:
    listed = set(_kustomization(K8S_BASE)["resources"])
    optional = {"kustomization.yaml", "secret.example.yaml", "ingress.yaml"}
    on_disk = {p.name for p in K8S_BASE.glob("*.yaml")} - optional
    assert on_disk == listed
    for directory in (K8S_BASE, K8S_VLLM):
        docs = _render(directory)
        names = [(d["kind"], d["metadata"]["name"]) for d in docs]
        assert len(names) == len(set(names)), f"duplicate objects in {directory}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("directory", [K8S_BASE, K8S_VLLM], ids=["base", "vllm"])
def test_mini_renderer_agrees_with_kubectl_kustomize(directory: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    real = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}
    mine = {(d["kind"], d["metadata"]["name"]): d for d in _render(directory)}
    assert set(real) == set(mine)
    namespace = _kustomization(directory)["namespace"]
    for key, doc in real.items():
        if key[0] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, key
        mine_doc = deepcopy(mine[key])
        mine_doc["metadata"].pop("namespace", None)
        doc["metadata"].pop("namespace", None)
        assert doc == mine_doc, key


# ==== tests: settings =====================================================================


def test_every_glimpse_env_var_is_a_real_setting() -> None:
    found = _env_names_in_deploy()
    assert "GLIMPSE_CATALOG__URL" in found and "GLIMPSE_QUEUE__BROKER_URL" in found
    unknown = {
        name: sorted(where)
        for name, where in found.items()
        if not _is_setting(name)
    }
    assert not unknown, f"GLIMPSE_ names that are not Settings fields: {unknown}"


def test_configmap_and_secret_values_load_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _load_all(K8S_BASE / "secret.example.yaml")[0]["stringData"]
    for directory, backend in ((K8S_BASE, "glm"), (K8S_VLLM, "openai")):
        config = _one(_render(directory), "ConfigMap", "glimpse-config")["data"]
        assert all(k.startswith("GLIMPSE_") for k in config)
        # The Postgres password lives in the Secret, never in the ConfigMap.
        assert "GLIMPSE_CATALOG__URL" not in config and "GLIMPSE_ADMIN_KEY" not in config
        real = {**secret, "GLIMPSE_ADMIN_KEY": "0f" * 32}  # what `openssl rand -hex 32` gives
        settings = _settings_from({**config, **real}, monkeypatch)
        assert settings.admin_key == "0f" * 32
        assert settings.environment == "production"
        assert settings.vectors.backend == "qdrant" and settings.vectors.qdrant_url
        assert settings.uses_broker
        assert settings.catalog_url.startswith("postgresql+psycopg://")
        assert settings.model.backend == backend
    assert settings.model.base_url == "http://vllm:8000/v1"


def test_compose_env_loads_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    for name in ("api", "worker-ingest", "worker-model", "worker-model-vllm", "migrate"):
        env = _compose_env(services[name])
        assert "GLIMPSE_ADMIN_KEY" in env  # from deploy/.env; its placeholder is refused
        env["GLIMPSE_ADMIN_KEY"] = "0f" * 32
        settings = _settings_from(env, monkeypatch)
        assert settings.catalog_url.startswith("postgresql+psycopg://")
        assert settings.queue.broker_url == "redis://redis:6379/0"
        assert settings.vectors.qdrant_url == "http://qdrant:6333"
    # The API and the model workers must agree on the model (it names the collection).
    env = {n: _compose_env(s) for n, s in services.items() if n.startswith(("api", "worker"))}
    assert len({e["GLIMPSE_MODEL__BACKEND"] for e in env.values()}) == 1


def test_every_glimpse_container_reads_config_and_secret() -> None:
    for directory in (K8S_BASE, K8S_VLLM):
        for doc in _workloads(_render(directory)):
            container = _container(doc)
            if not container["image"].startswith("glimpse/"):
                continue
            refs = {(k, v["name"]) for e in container.get("envFrom", []) for k, v in e.items()}
            assert ("configMapRef", "glimpse-config") in refs, doc["metadata"]["name"]
            assert ("secretRef", "glimpse-secrets") in refs, doc["metadata"]["name"]


# ==== tests: images and commands ==========================================================


def test_k8s_images_match_compose_images() -> None:
    services = _compose()["services"]
    cpu, cuda = services["api"]["image"], services["worker-model"]["image"]
    assert cpu.endswith("-cpu") and cuda.endswith("-cuda")
    for name in ("migrate", "worker-ingest", "worker-model-cpu", "worker-model-vllm"):
        assert services[name]["image"] == cpu
    base, vllm = _render(K8S_BASE), _render(K8S_VLLM)
    assert _container(_one(base, "Deployment", "glimpse-api"))["image"] == cpu
    assert _container(_one(base, "Deployment", "glimpse-worker-ingest"))["image"] == cpu
    assert _container(_one(base, "Job", "glimpse-migrate"))["image"] == cpu
    assert _container(_one(base, "Deployment", "glimpse-worker-model"))["image"] == cuda
    assert _container(_one(vllm, "Deployment", "glimpse-worker-model"))["image"] == cpu
    assert _container(_one(vllm, "Deployment", "vllm"))["image"] == services["vllm"]["image"]
    assert _container(_one(base, "StatefulSet", "qdrant"))["image"] == services["qdrant"]["image"]
    assert _container(_one(base, "StatefulSet", "redis"))["image"] == services["redis"]["image"]


def test_commands_and_worker_queues() -> None:
    services = _compose()["services"]
    assert _compose_argv(services["api"]) == API_ARGV
    assert _compose_argv(services["migrate"]) == ["glimpse", "migrate"]
    assert _compose_argv(services["worker-ingest"]) == INGEST_ARGV
    for name in ("worker-model", "worker-model-cpu", "worker-model-vllm"):
        assert _compose_argv(services[name]) == MODEL_ARGV
    for directory in (K8S_BASE, K8S_VLLM):
        docs = _render(directory)
        assert _argv(_container(_one(docs, "Deployment", "glimpse-api"))) == API_ARGV
        assert _argv(_container(_one(docs, "Job", "glimpse-migrate"))) == ["glimpse", "migrate"]
        ingest = _container(_one(docs, "Deployment", "glimpse-worker-ingest"))
        model = _container(_one(docs, "Deployment", "glimpse-worker-model"))
        assert _queues(_argv(ingest)) == ["ingest"]
        assert _queues(_argv(model)) == ["model"]


def test_migrate_runs_before_api_and_workers_in_compose() -> None:
    services = _compose()["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, svc in services.items():
        if name.startswith(("api", "worker")):
            deps = svc["depends_on"]
            assert deps["migrate"]["condition"] == "service_completed_successfully", name
            assert deps["redis"]["condition"] == "service_healthy", name
    for name in ("postgres", "redis", "qdrant"):
        assert "test" in services[name]["healthcheck"], name


def test_compose_volumes_ports_and_profiles() -> None:
    compose = _compose()
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: undeclared volume {source}"
    assert {p.split(":")[-1] for p in services["qdrant"]["ports"]} >= {"6333", "6334"}
    assert services["api"]["ports"] == [f"{API_PORT}:{API_PORT}"]
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    assert any(v.startswith("qdrant-storage:") for v in services["qdrant"]["volumes"])
    # blobs: the API writes, workers read the same volume
    for name, svc in services.items():
        if name.startswith(("api", "worker")):
            assert "glimpse-data:/data" in svc["volumes"], name
    # exactly one model worker per profile; vllm is opt-in
    profiles = {n: tuple(s.get("profiles", ())) for n, s in services.items()}
    assert profiles["worker-model-cpu"] == ("cpu",)
    assert profiles["worker-model"] == ("gpu",)
    assert profiles["vllm"] == ("vllm",) and profiles["worker-model-vllm"] == ("vllm",)


def test_vllm_serves_glm45v_with_tensor_parallel_on_gpus() -> None:
    compose_vllm = _compose()["services"]["vllm"]
    k8s_vllm = _one(_render(K8S_VLLM), "Deployment", "vllm")
    argvs = [_compose_argv(compose_vllm), _argv(_container(k8s_vllm))]
    for argv in argvs:
        assert argv[:2] == ["vllm", "serve"]
        assert "--served-model-name=zai-org/GLM-4.5V" in argv
        assert any(a.startswith("--tensor-parallel-size=") for a in argv)
    tp = next(int(a.split("=")[1]) for a in argvs[1] if a.startswith("--tensor-parallel-size="))
    assert int(_container(k8s_vllm)["resources"]["limits"]["nvidia.com/gpu"]) == tp
    assert compose_vllm["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    config = _one(_render(K8S_VLLM), "ConfigMap", "glimpse-config")["data"]
    served = config["GLIMPSE_MODEL__SERVED_NAME"]
    assert served == ModelSettings().served_name
    for argv in argvs:
        assert f"--served-model-name={served}" in argv
    service = _one(_render(K8S_VLLM), "Service", "vllm")
    assert (
        config["GLIMPSE_MODEL__BASE_URL"] == f"http://vllm:{service['spec']['ports'][0]['port']}/v1"
    )


# ==== tests: ports and probes =============================================================


def _resolves(port: Any, container: Doc) -> bool:
    ports = container.get("ports", [])
    if isinstance(port, int):
        return any(p["containerPort"] == port for p in ports)
    return any(p.get("name") == port for p in ports)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("directory", [K8S_BASE, K8S_VLLM], ids=["base", "vllm"])
def test_service_target_ports_and_probes_match_container_ports(directory: Path) -> None:
    docs = _render(directory)
    workloads = _workloads(docs)
    for svc in (d for d in docs if d["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        pods = [
            w for w in workloads if _matches(selector, w["spec"]["template"]["metadata"]["labels"])
        ]
        assert pods, f"Service {svc['metadata']['name']} selects nothing"
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for pod in pods:
                assert any(_resolves(target, c) for c in _pod_spec(pod)["containers"]), (
                    f"Service {svc['metadata']['name']} targetPort {target}"
                )
    for w in workloads:
        for c in _pod_spec(w)["containers"]:
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind, {})
                for action in ("httpGet", "tcpSocket"):
                    if action in probe:
                        assert _resolves(probe[action]["port"], c), (w["metadata"]["name"], kind)


def test_api_port_health_probes_and_ingress() -> None:
    docs = _render(K8S_BASE)
    api = _container(_one(docs, "Deployment", "glimpse-api"))
    assert [p["containerPort"] for p in api["ports"]] == [API_PORT]
    for kind in ("readinessProbe", "livenessProbe"):
        assert api[kind]["httpGet"]["path"] == "/health"
    svc = _one(docs, "Service", "glimpse-api")
    ingress = _load_all(K8S_BASE / "ingress.yaml")[0]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == svc["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}
    compose_test = _compose()["services"]["api"]["healthcheck"]["test"]
    assert f"127.0.0.1:{API_PORT}/health" in " ".join(compose_test)


# ==== tests: GPUs, scaling, Qdrant, availability ==========================================


def test_gpu_model_worker_requests_gpus_and_targets_gpu_nodes() -> None:
    worker = _one(_render(K8S_BASE), "Deployment", "glimpse-worker-model")
    resources = _container(worker)["resources"]
    assert int(resources["limits"]["nvidia.com/gpu"]) >= 1
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
    spec = _pod_spec(worker)
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["nodeSelector"]
    devices = _compose()["services"]["worker-model"]["deploy"]["resources"]["reservations"]
    assert devices["devices"][0]["driver"] == "nvidia"
    assert "gpu" in devices["devices"][0]["capabilities"]
    # With vLLM the model worker is a thin client: no GPU held.
    thin = _one(_render(K8S_VLLM), "Deployment", "glimpse-worker-model")
    assert "nvidia.com/gpu" not in str(_container(thin)["resources"])
    assert "tolerations" not in _pod_spec(thin)


@pytest.mark.parametrize("directory", [K8S_BASE, K8S_VLLM], ids=["base", "vllm"])
def test_keda_scales_workers_on_their_celery_queue(directory: Path) -> None:
    docs = _render(directory)
    namespace = _kustomization(directory)["namespace"]
    redis_port = _one(docs, "Service", "redis")["spec"]["ports"][0]["port"]
    broker = _one(docs, "ConfigMap", "glimpse-config")["data"]["GLIMPSE_QUEUE__BROKER_URL"]
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"glimpse-worker-ingest", "glimpse-worker-model"}
    for target, obj in scaled.items():
        deployment = _one(docs, "Deployment", target)
        assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "redis"
        meta = trigger["metadata"]
        assert [meta["listName"]] == _queues(_argv(_container(deployment)))
        assert meta["address"] == f"redis.{namespace}.svc.cluster.local:{redis_port}"
        assert broker.endswith(f"/{meta['databaseIndex']}")
        assert int(meta["listLength"]) > 0
        assert 1 <= obj["spec"]["minReplicaCount"] <= obj["spec"]["maxReplicaCount"]


def test_qdrant_is_distributed_and_replicated() -> None:
    docs = _render(K8S_BASE)
    sts = _one(docs, "StatefulSet", "qdrant")
    replicas = sts["spec"]["replicas"]
    assert replicas >= 2
    env = {e["name"]: e.get("value") for e in _container(sts)["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert sts["spec"]["volumeClaimTemplates"]
    headless = _one(docs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert int(env["QDRANT__CLUSTER__P2P__PORT"]) in {p["port"] for p in headless["spec"]["ports"]}
    args = " ".join(_argv(_container(sts)))
    assert f'--bootstrap "http://qdrant-0.{headless["metadata"]["name"]}:' in args
    config = _one(docs, "ConfigMap", "glimpse-config")["data"]
    replication = int(config["GLIMPSE_VECTORS__REPLICATION_FACTOR"])
    shards = int(config["GLIMPSE_VECTORS__SHARD_NUMBER"])
    assert 2 <= replication <= replicas
    assert shards >= replicas
    client_svc = _one(docs, "Service", "qdrant")
    assert config["GLIMPSE_VECTORS__QDRANT_URL"] == (
        f"http://qdrant:{_port_named(client_svc, 'http')}"
    )


def _port_named(service: Doc, name: str) -> int:
    port: int = next(p["port"] for p in service["spec"]["ports"] if p["name"] == name)
    return port


def test_disruption_budgets_cover_the_serving_path() -> None:
    docs = _render(K8S_BASE)
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for kind, name in (
        ("Deployment", "glimpse-api"),
        ("Deployment", "glimpse-worker-ingest"),
        ("Deployment", "glimpse-worker-model"),
        ("StatefulSet", "qdrant"),
    ):
        labels = _one(docs, kind, name)["spec"]["template"]["metadata"]["labels"]
        assert any(_matches(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), name


@pytest.mark.parametrize("directory", [K8S_BASE, K8S_VLLM], ids=["base", "vllm"])
def test_every_container_has_requests_and_memory_limits(directory: Path) -> None:
    for w in _workloads(_render(directory)):
        for c in _pod_spec(w)["containers"]:
            res = c.get("resources", {})
            assert res.get("requests", {}).get("cpu"), (w["metadata"]["name"], c["name"])
            assert res.get("requests", {}).get("memory"), (w["metadata"]["name"], c["name"])
            assert res.get("limits", {}).get("memory"), (w["metadata"]["name"], c["name"])


def test_pvcs_referenced_by_pods_exist_and_blobs_are_shared() -> None:
    docs = _render(K8S_BASE)
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for w in _workloads(docs):
        for vol in _pod_spec(w).get("volumes", []):
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in claims
    assert claims["glimpse-data"]["spec"]["accessModes"] == ["ReadWriteMany"]


# ==== tests: Dockerfiles ==================================================================


def _run_lines(stages: list[tuple[str, str, list[tuple[str, str]]]]) -> list[str]:
    return [rest for _, _, instrs in stages for instr, rest in instrs if instr == "RUN"]


def _last(stage: list[tuple[str, str]], instr: str) -> str | None:
    values = [rest for i, rest in stage if i == instr]
    return values[-1] if values else None


@pytest.mark.parametrize("path", [DOCKERFILE_CPU, DOCKERFILE_CUDA], ids=["cpu", "cuda"])
def test_dockerfile_common_shape(path: Path) -> None:
    stages = _stages(_dockerfile(path))
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    names = {name for _, name, _ in stages if name}
    for _, _, instrs in stages:
        for instr, rest in instrs:
            if instr == "COPY" and rest.startswith("--from="):
                assert rest.split()[0].removeprefix("--from=") in names
    final = stages[-1][2]
    user = _last(final, "USER")
    assert user is not None and user.split(":")[0] not in {"root", "0"}
    assert _exec_form(_last(final, "ENTRYPOINT") or "[]") == ["glimpse"]
    assert (path.parent / f"{path.name}.dockerignore").read_text().count(".venv")


def test_cpu_dockerfile() -> None:
    stages = _stages(_dockerfile(DOCKERFILE_CPU))
    assert all(image == "python:3.11-slim" for image, _, _ in stages)
    runs = _run_lines(stages)
    torch_at = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r and "/whl/cpu" in r)
    package_at = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert torch_at < package_at, "CPU torch must be installed before the package"
    assert not any("torchvision" in r for r in runs)
    final = stages[-1][2]
    assert _last(final, "EXPOSE") == str(API_PORT)
    healthcheck = _last(final, "HEALTHCHECK") or ""
    assert f"127.0.0.1:{API_PORT}/health" in healthcheck
    argv = _exec_form(_last(final, "ENTRYPOINT") or "[]") + _exec_form(_last(final, "CMD") or "[]")
    assert argv == API_ARGV


def test_cuda_dockerfile() -> None:
    stages = _stages(_dockerfile(DOCKERFILE_CUDA))
    image = stages[0][0]
    assert image.startswith("nvidia/cuda:") and "runtime" in image
    runs = _run_lines(stages)
    assert any(
        "torch==2.13.0" in r and re.search(r"download\.pytorch\.org/whl/\$\{?TORCH_CUDA", r)
        for r in runs
    )
    assert any("python3.11" in r for r in runs)
    final = stages[-1][2]
    assert "GLIMPSE_MODEL__BACKEND=glm" in " ".join(rest for i, rest in final if i == "ENV")
    argv = _exec_form(_last(final, "ENTRYPOINT") or "[]") + _exec_form(_last(final, "CMD") or "[]")
    assert argv == MODEL_ARGV


def _iter_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _iter_strings(v)


def test_no_latest_tags_and_no_secrets_in_committed_config() -> None:
    for path in _yaml_files():
        for doc in _load_all(path):
            for s in _iter_strings(doc):
                assert not s.endswith(":latest"), f"{path}: unpinned image {s}"
    config = _one(_render(K8S_BASE), "ConfigMap", "glimpse-config")["data"]
    assert not any("password" in v.lower() for v in config.values())


def test_admin_key_comes_from_the_secret_and_placeholders_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No shared token any more: the deployment's secret holds an admin API key, which the
    settings refuse while it is the example's placeholder (so the example cannot ship)."""
    secret = _load_all(K8S_BASE / "secret.example.yaml")[0]["stringData"]
    assert "GLIMPSE_API_TOKEN" not in secret and "GLIMPSE_ADMIN_KEY" in secret
    with pytest.raises(ValueError, match="GLIMPSE_ADMIN_KEY"):
        _settings_from(dict(secret), monkeypatch)
    compose = (ROOT / "deploy" / "docker-compose.yml").read_text()
    assert "GLIMPSE_ADMIN_KEY: ${GLIMPSE_ADMIN_KEY:?" in compose
    assert "GLIMPSE_API_TOKEN" not in compose
    env_example = (ROOT / "deploy" / ".env.example").read_text()
    placeholder = next(line.split("=", 1)[1] for line in env_example.splitlines()
                       if line.startswith("GLIMPSE_ADMIN_KEY="))
    with pytest.raises(ValueError, match="GLIMPSE_ADMIN_KEY"):
        _settings_from({"GLIMPSE_ADMIN_KEY": placeholder}, monkeypatch)
