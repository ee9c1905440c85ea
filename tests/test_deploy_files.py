"""The container and deployment files agree with the code: settings, modules, topics, ports.

Runs without Docker, a cluster or the network: the files are parsed, and the topic scripts run
under /bin/sh with `kafka-topics.sh` replaced by `echo`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridline.bus import topics
from gridline.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_CONF = ROOT / "deploy" / "compose" / "nginx.conf"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
SECRET_EXAMPLE = "secret.example.yaml"

APP_SERVICES = ("intake", "assignment", "escalation", "notify")
SETTING_VARS = frozenset(env_name(field) for field in Settings.model_fields)
SECRET_VARS = (
    "GRIDLINE_PERSON_KEY_SECRET",
    "GRIDLINE_PII_KEY",
    "GRIDLINE_INTAKE_API_KEY_SECRET",
    "GRIDLINE_TASK_LINK_KEY",
)
KAFKA_TOPICS_SCRIPT = "/opt/kafka/bin/kafka-topics.sh"
EXPECTED_TOPICS = frozenset(name for t in topics.ALL for name in (t, topics.dead_letter(t)))
EXPECTED_PARTITIONS = "6"


# --- helpers ------------------------------------------------------------------------------------


def _http_port_var(service: str) -> str:
    return env_name(f"{service}_http_port")


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # compose also accepts ["KEY=value", ...]
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _interpolate(value: str) -> str:
    """Resolve compose `${VAR:-default}` to its default and `${VAR:?msg}` to a test value."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3)
        return default if operator == "-" else f"test-value-of-{name}"

    resolved = re.sub(r"\$\{(\w+)(?::?([-?])([^}]*))?\}", substitute, value)
    return resolved.replace("$$", "$")


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    # Only the given variables count, not whatever GRIDLINE_* the test process inherited.
    for name in list(os.environ):
        if name.startswith("GRIDLINE_"):
            monkeypatch.delenv(name)
    values = {
        name.removeprefix("GRIDLINE_").lower(): value
        for name, value in env.items()
        if name.startswith("GRIDLINE_")
    }
    return Settings(**values)


def _command(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def _run_topic_script(script: str, env: dict[str, str]) -> list[dict[str, str | bool]]:
    """Run a topic-creation script with `kafka-topics.sh` echoing its arguments instead."""
    assert KAFKA_TOPICS_SCRIPT in script, f"the script no longer calls {KAFKA_TOPICS_SCRIPT}"
    fake = script.replace(KAFKA_TOPICS_SCRIPT, "echo")
    result = subprocess.run(
        ["/bin/sh", "-c", fake],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    calls = []
    for line in result.stdout.splitlines():
        args = shlex.split(line)
        call: dict[str, str | bool] = {}
        for i, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            call[arg] = args[i + 1] if has_value else True
        calls.append(call)
    return calls


def _assert_creates_every_topic(calls: list[dict[str, str | bool]], bootstrap: str) -> None:
    assert {call.get("--topic") for call in calls} == EXPECTED_TOPICS
    for call in calls:
        assert call.get("--create") is True
        assert call.get("--if-not-exists") is True, "re-running the job must not fail"
        assert call.get("--bootstrap-server") == bootstrap
        assert call.get("--partitions") == EXPECTED_PARTITIONS


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def _dockerignored(path: str, patterns: list[str]) -> bool:
    # The subset of .dockerignore semantics our file uses: last match wins, `!` re-includes,
    # and a pattern matching a parent directory covers everything below it.
    prefixes = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 2)]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes):
            ignored = not negated
    return ignored


def _containers_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment or Job (none for other kinds)."""
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def k8s_docs(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for name in kustomization["resources"] for doc in _load_all(K8S_BASE / name)]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


@pytest.fixture(scope="module")
def config(k8s_docs: list[dict[str, Any]]) -> dict[str, Any]:
    return _of_kind(k8s_docs, "ConfigMap")["gridline-config"]["data"]


@pytest.fixture(scope="module")
def deployments(k8s_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return _of_kind(k8s_docs, "Deployment")


@pytest.fixture(scope="module")
def secret_example() -> dict[str, Any]:
    (secret,) = _load_all(K8S_BASE / SECRET_EXAMPLE)
    return secret


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


# --- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = _dockerfile_instructions()
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
    images = [
        re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
        for keyword, rest in instructions
        if keyword == "FROM"
    ]
    assert len(images) >= 2
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", images[-1]), images[-1]


def test_dockerfile_installs_from_the_lock_with_the_projects_uv() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (uv_pin,) = [d for d in pyproject["dependency-groups"]["dev"] if d.startswith("uv==")]
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert f"UV_VERSION={uv_pin.removeprefix('uv==')}" in text
    syncs = [rest for keyword, rest in _dockerfile_instructions() if "uv sync" in rest]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, sync


def test_dockerfile_runs_non_root_with_intake_as_default_command() -> None:
    instructions = _dockerfile_instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    cmds = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert json.loads(cmds[-1]) == ["python", "-m", "services.intake"]


def test_dockerfile_sources_exist_and_pass_dockerignore() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for keyword, rest in _dockerfile_instructions():
        if keyword == "COPY" and "--from" not in rest:
            sources += [token for token in shlex.split(rest) if not token.startswith("--")][:-1]
        sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", rest)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _dockerignored(source, patterns), f"{source} is left out of the context"
    assert not _dockerignored("services/intake/__main__.py", patterns)
    for private in (".env", ".venv/bin/python", ".git/HEAD", ".gridline/data/intake.db"):
        assert _dockerignored(private, patterns), f"{private} would be sent to the builder"


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_builds_use_the_repo_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    builders = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert set(APP_SERVICES) <= set(builders)
    for name, build in builders.items():
        build = {"context": build} if isinstance(build, str) else build
        context = (ROOT / build.get("context", ".")).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile == DOCKERFILE and dockerfile.is_file(), name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_service_runs_its_module(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert _command(services[name]["command"]) == ["python", "-m", f"services.{name}"]
    assert (ROOT / "services" / name / "__main__.py").is_file()


def test_every_gridline_variable_is_a_setting(
    services: dict[str, dict[str, Any]],
    k8s_docs: list[dict[str, Any]],
    secret_example: dict[str, Any],
) -> None:
    used: dict[str, set[str]] = {"docker-compose.yml": set(), "k8s base": set()}
    for svc in services.values():
        used["docker-compose.yml"] |= set(_environment(svc))
    for doc in k8s_docs:
        if doc["kind"] == "ConfigMap":
            used["k8s base"] |= set(doc["data"])
        for container in _containers_of(doc):
            used["k8s base"] |= {env["name"] for env in container.get("env", [])}
    used["k8s base"] |= set(secret_example["stringData"])
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    used["Dockerfile"] = set(re.findall(r"\b(GRIDLINE_\w+)=", dockerfile))
    for source, names in used.items():
        gridline = {name for name in names if name.startswith("GRIDLINE_")}
        assert gridline, f"{source} sets no GRIDLINE_* variable"
        assert gridline <= SETTING_VARS, f"{source}: not settings: {gridline - SETTING_VARS}"


def test_compose_environment_values_are_strings(services: dict[str, dict[str, Any]]) -> None:
    # Compose rejects bare YAML booleans, and quoting everything keeps types out of the question.
    for name, svc in services.items():
        for key, value in _environment(svc).items():
            assert isinstance(value, str), f"{name}: {key} must be quoted"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_environment_is_valid_production_settings(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {key: _interpolate(value) for key, value in _environment(services[name]).items()}
    settings = _settings(env, monkeypatch)
    assert settings.env == "production"
    assert settings.host == "0.0.0.0"
    assert settings.kafka_idempotence is True
    assert settings.database_url.startswith("postgresql://")
    assert settings.redis_url.startswith("redis://")
    assert settings.seed_demo_county is (name == "assignment")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_secrets_are_required_from_the_environment(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _environment(services[name])
    for var in SECRET_VARS:
        assert re.fullmatch(rf"\$\{{{var}:\?[^}}]+\}}", env[var]), f"{name}: {var}={env[var]}"


def test_compose_referenced_files_exist(services: dict[str, dict[str, Any]]) -> None:
    referenced = set()
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                referenced.add((ROOT / source).resolve())
        env_files = svc.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            if not (isinstance(env_file, dict) and env_file.get("required") is False):
                referenced.add((ROOT / path).resolve())
    assert NGINX_CONF in referenced
    for path in referenced:
        assert path.exists(), path


def test_compose_intake_has_no_fixed_host_port(services: dict[str, dict[str, Any]]) -> None:
    intake = services["intake"]
    # Either would stop `docker compose up --scale intake=N`.
    assert not intake.get("ports")
    assert "container_name" not in intake


def test_compose_lb_publishes_8001_and_proxies_to_intake(
    services: dict[str, dict[str, Any]],
) -> None:
    published = [str(port).rsplit(":", 2)[-2] for port in services["lb"]["ports"]]
    assert published == ["8001"]
    intake_port = _environment(services["intake"])[_http_port_var("intake")]
    upstreams = re.findall(r"server\s+intake:(\d+)", NGINX_CONF.read_text(encoding="utf-8"))
    assert upstreams == [intake_port]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_healthcheck_probes_readyz_on_the_service_http_port(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    svc = services[name]
    test = " ".join(_command(svc["healthcheck"]["test"]))
    port = _environment(svc)[_http_port_var(name)]
    assert re.findall(r":(\d+)/readyz", test) == [port]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_service_waits_for_infrastructure_and_topics(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    for infra in ("kafka", "postgres", "redis"):
        assert depends_on[infra]["condition"] == "service_healthy"
        assert "healthcheck" in services[infra], f"{infra} can never become healthy"
    assert depends_on["topics"]["condition"] == "service_completed_successfully"


def test_compose_topics_job_creates_every_topic_and_dead_letter(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services["topics"]
    (script,) = _command(job["command"])
    env = {key: _interpolate(value) for key, value in _environment(job).items()}
    # Compose turns `$$` into `$` before the shell sees the script.
    calls = _run_topic_script(script.replace("$$", "$"), env)
    app_env = _environment(services["intake"])
    _assert_creates_every_topic(calls, bootstrap=app_env["GRIDLINE_KAFKA_BOOTSTRAP"])


# --- deploy/k8s/base ----------------------------------------------------------------------------


def test_kustomization_resources_exist_and_parse(kustomization: dict[str, Any]) -> None:
    assert kustomization["resources"]
    for name in kustomization["resources"]:
        path = K8S_BASE / name
        assert path.is_file(), name
        docs = _load_all(path)
        assert docs, name
        for doc in docs:
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], name


def test_secret_example_is_a_placeholder_template_outside_resources(
    kustomization: dict[str, Any], secret_example: dict[str, Any]
) -> None:
    listed = kustomization.get("resources", []) + kustomization.get("components", [])
    assert SECRET_EXAMPLE not in listed
    assert "secretGenerator" not in kustomization
    assert secret_example["kind"] == "Secret"
    assert secret_example["metadata"]["name"] == "gridline-secrets"
    assert set(SECRET_VARS) <= set(secret_example["stringData"])
    for key, value in secret_example["stringData"].items():
        assert "<" in value, f"{key} looks like a real value, not a placeholder"


def test_k8s_deploys_each_app_service_running_its_module(
    deployments: dict[str, dict[str, Any]],
) -> None:
    assert set(deployments) == set(APP_SERVICES)
    for name, deployment in deployments.items():
        assert _command(_container(deployment)["command"]) == ["python", "-m", f"services.{name}"]
        assert (ROOT / "services" / name / "__main__.py").is_file()


def test_k8s_deployment_ports_match_configmap(
    deployments: dict[str, dict[str, Any]], config: dict[str, Any]
) -> None:
    grpc_port = int(config["GRIDLINE_DIRECTORY_GRPC_PORT"])
    grpc_ports = {"assignment": grpc_port, "escalation": int(config["GRIDLINE_TASKS_GRPC_PORT"])}
    for name, deployment in deployments.items():
        expected = {"http": int(config[_http_port_var(name)])}
        if name in grpc_ports:
            expected["grpc"] = grpc_ports[name]
        assert _ports(_container(deployment)) == expected, name
    startup = _container(deployments["assignment"])["startupProbe"]
    assert startup["grpc"]["port"] == grpc_port


def test_k8s_configmap_is_valid_production_settings(
    config: dict[str, Any], secret_example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kubernetes refuses non-string ConfigMap values.
    assert all(isinstance(value, str) for value in config.values())
    settings = _settings({**config, **secret_example["stringData"]}, monkeypatch)
    assert settings.env == "production"
    assert settings.host == "0.0.0.0"
    assert settings.kafka_idempotence is True
    assert "GRIDLINE_DATABASE_URL" not in config, "it carries a password: it belongs in the Secret"


def test_k8s_service_selectors_match_deployment_pods(
    k8s_docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    k8s_services = _of_kind(k8s_docs, "Service")
    assert set(k8s_services) == set(APP_SERVICES)
    for name, service in k8s_services.items():
        selector = service["spec"]["selector"]
        matches = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        container_ports = _ports(_container(matches[0]))
        for port in service["spec"]["ports"]:
            assert port["name"] in ("http", "grpc")
            assert port["targetPort"] in container_ports, f"{name}: {port['targetPort']}"


def test_k8s_deployment_selectors_match_their_pod_labels(
    deployments: dict[str, dict[str, Any]],
) -> None:
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_k8s_directory_target_is_the_assignment_grpc_service(
    k8s_docs: list[dict[str, Any]], config: dict[str, Any]
) -> None:
    host, _, port = config["GRIDLINE_DIRECTORY_TARGET"].rpartition(":")
    service = _of_kind(k8s_docs, "Service")[host]
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "assignment"
    (grpc,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc["port"] == int(port) == int(config["GRIDLINE_DIRECTORY_GRPC_PORT"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_k8s_deployment_probes_security_and_resources(
    deployments: dict[str, dict[str, Any]], name: str
) -> None:
    pod = deployments[name]["spec"]["template"]["spec"]
    container = _container(deployments[name])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"configMapRef": {"name": "gridline-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "gridline-secrets"}} in container["envFrom"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind

    # With a read-only root, /data and /tmp must be writable scratch volumes.
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts.get("/data") in empty_dirs and mounts.get("/tmp") in empty_dirs


def test_k8s_intake_hpa_scales_the_intake_deployment(
    k8s_docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    spec = _of_kind(k8s_docs, "HorizontalPodAutoscaler")["intake"]["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "intake",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 20)
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    # A replica count in the Deployment would fight the HPA on every `kubectl apply`.
    assert "replicas" not in deployments["intake"]["spec"]


def test_k8s_topics_job_creates_every_topic_and_dead_letter(
    k8s_docs: list[dict[str, Any]], config: dict[str, Any]
) -> None:
    (job,) = _of_kind(k8s_docs, "Job").values()
    (container,) = _containers_of(job)
    script = " ".join([*container.get("command", [])[2:], *container.get("args", [])])
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == "gridline-config"
            env[var["name"]] = config[ref["key"]]
    calls = _run_topic_script(script, env)
    _assert_creates_every_topic(calls, bootstrap=config["GRIDLINE_KAFKA_BOOTSTRAP"])
