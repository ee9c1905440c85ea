"""The container and deployment files agree with the code and with each other.

Runs without Docker, a cluster or the network. docker-compose.yml and the Kubernetes manifests
(built by `kubectl kustomize` for the base and each overlay) are parsed and cross-checked:
settings, modules, consumer groups, topics, ports, files, images, the two surfaces (only public
routes behind the Ingress or a published port), the NetworkPolicies (each service reaches only
what its code calls), one Secret per service holding only its keys, and mutual TLS in the
overlays. The topic scripts run under /bin/sh with `kafka-topics.sh` replaced by `echo`. Where
the tools are installed, the files are also checked against their schemas (compose-spec,
Kubernetes' OpenAPI schemas) and promtool.
"""

from __future__ import annotations

import ast
import base64
import fnmatch
import importlib
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.routing import iter_route_contexts

from gridline import rpc
from gridline.bus import topics
from gridline.production import REDIS_USERS, SERVICE_SECRETS, production_problems
from gridline.settings import ServiceName, Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_CONF = ROOT / "deploy" / "compose" / "nginx.conf"
OTEL_CONFIG = ROOT / "deploy" / "otel-collector" / "config.yaml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
GRAFANA_DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
K8S = ROOT / "deploy" / "k8s"
K8S_BASE = K8S / "base"
SECRET_EXAMPLE = "secret.example.yaml"
BUILDS = ("base", "overlays/county", "overlays/province")

APP_SERVICES: tuple[ServiceName, ...] = ("intake", "assignment", "escalation", "notify")
SCALED_ON_LAG = ("assignment", "escalation", "notify")
SETTING_VARS = frozenset(env_name(field) for field in Settings.model_fields)
# Each service's keys (gridline.production.SERVICE_SECRETS), as variables.
SERVICE_SECRET_VARS: dict[str, frozenset[str]] = {
    service: frozenset(env_name(name) for name in names)
    for service, names in SERVICE_SECRETS.items()
}
SECRET_VARS = frozenset().union(*SERVICE_SECRET_VARS.values())
# The gRPC server of each service: the setting of its port.
GRPC_PORT_SETTINGS = {
    "assignment": "GRIDLINE_DIRECTORY_GRPC_PORT",
    "escalation": "GRIDLINE_TASKS_GRPC_PORT",
    "notify": "GRIDLINE_NOTIFY_GRPC_PORT",
}
# The client settings naming another service's gRPC server: (service, its port setting).
GRPC_TARGETS = {
    "GRIDLINE_DIRECTORY_TARGET": ("assignment", "GRIDLINE_DIRECTORY_GRPC_PORT"),
    "GRIDLINE_TASKS_TARGET": ("escalation", "GRIDLINE_TASKS_GRPC_PORT"),
}
KAFKA_TOPICS_SCRIPT = "/opt/kafka/bin/kafka-topics.sh"
EXPECTED_TOPICS = frozenset(name for t in topics.ALL for name in (t, topics.dead_letter(t)))
KNOWN_KINDS = {
    "ConfigMap": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "Ingress": "networking.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "Certificate": "cert-manager.io/v1",
    "Issuer": "cert-manager.io/v1",
}
# The gRPC client classes and the service each one calls.
GRPC_CLIENTS = {"DirectoryClient": "assignment", "TasksClient": "escalation"}
# Where a NetworkPolicy lets the services reach their infrastructure, and on which ports.
INFRASTRUCTURE = {"kafka": {9092, 9093}, "postgres": {5432}, "observability": {4317}}
# The namespaces whose pods may reach the staff listeners, by their label.
STAFF_ACCESS = {"gridline.example.org/staff-access": "true"}
INGRESS_NAMESPACE = "ingress-nginx"
KUBERNETES_VERSION = "1.32"
# The policy files every deployment runs (variable -> the file in the repo), shipped in the
# image inside the virtualenv the wheel is installed into. A service left without one runs its
# bare fallback: for the deadlines, every report one level up every 30 minutes, day and night,
# and no immediate notice of a high-risk arrival (docs/operations.md, "Deadlines").
SHIPPED_POLICIES = {"GRIDLINE_ESCALATION_DEADLINES_FILE": "services/escalation/deadlines.yaml"}


# --- helpers ------------------------------------------------------------------------------------


def _http_port_var(service: str) -> str:
    return env_name(f"{service}_http_port")


def _staff_port_var(service: str) -> str:
    return env_name(f"{service}_staff_http_port")


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
    values: dict[str, Any] = {
        name.removeprefix("GRIDLINE_").lower(): value
        for name, value in env.items()
        if name.startswith("GRIDLINE_")
    }
    return Settings(**values)


def _command(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def _host_port(address: str) -> tuple[str, int]:
    """`host:port` out of an address that may carry a scheme (http://host:port)."""
    host, _, port = address.split("://")[-1].rstrip("/").rpartition(":")
    return host, int(port)


def _dns_target(target: str) -> tuple[str, str, int]:
    """(Service, namespace, port) of a gRPC target naming a Service's every pod by its cluster
    DNS name: `dns:///name.namespace.svc.cluster.local:port`."""
    match = re.fullmatch(r"dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)", target)
    assert match, f"{target}: not dns:///<service>.<namespace>.svc.cluster.local:<port>"
    return match.group(1), match.group(2), int(match.group(3))


def _headless(service: dict[str, Any]) -> bool:
    return bool(service["spec"].get("clusterIP") == "None")


def _run_topic_script(script: str, env: dict[str, str]) -> dict[str, int]:
    """Run a topic-creation script with `kafka-topics.sh` echoing its arguments instead.

    Checks that every call creates idempotently on the given bootstrap servers and returns the
    partitions of each topic created.
    """
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
    partitions: dict[str, int] = {}
    for line in result.stdout.splitlines():
        args = shlex.split(line)
        call: dict[str, str | bool] = {}
        for i, arg in enumerate(args):
            if arg.startswith("--"):
                has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
                call[arg] = args[i + 1] if has_value else True
        assert call.get("--create") is True, line
        assert call.get("--if-not-exists") is True, "re-running the job must not fail"
        assert call.get("--bootstrap-server") == env["GRIDLINE_KAFKA_BOOTSTRAP"], line
        partitions[str(call["--topic"])] = int(str(call["--partitions"]))
    assert set(partitions) == EXPECTED_TOPICS
    for topic in topics.ALL:
        assert partitions[topics.dead_letter(topic)] == partitions[topic], topic
    return partitions


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


def _image_file(path: str) -> Path:
    """The repo file that the image holds at `path`, failing when the image does not hold it:
    the runtime stage has only the virtualenv, where the wheel installs its packages' files."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    venv = re.search(r"UV_PROJECT_ENVIRONMENT=(\S+)", text)
    python = re.search(r"ARG PYTHON_IMAGE=python:(\d+\.\d+)", text)
    assert venv and python, "the Dockerfile no longer names its virtualenv or Python"
    site_packages = f"{venv.group(1)}/lib/python{python.group(1)}/site-packages/"
    assert path.startswith(site_packages), f"{path} is not in the image ({site_packages}...)"
    relative = path.removeprefix(site_packages)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert relative.split("/")[0] in packages, f"{relative}: no package of the wheel holds it"
    ignores = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not _dockerignored(relative, ignores), f"{relative} is left out of the build context"
    assert (ROOT / relative).is_file(), f"{relative} does not exist"
    return ROOT / relative


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = doc["spec"]["template"]["spec"]
    return pod


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any]
    (container,) = _pod(doc)["containers"]
    return container


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def _job_script(job: dict[str, Any], config: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The shell script of the topic Job and its environment (ConfigMap references resolved)."""
    container = _container(job)
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == "gridline-config"
            env[var["name"]] = config[ref["key"]]
    return script, env


_QUANTITY_UNITS = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(value: str | int) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores or bytes)."""
    match = re.fullmatch(r"([\d.]+)(m|Ki|Mi|Gi|Ti|)", str(value))
    assert match, f"not a quantity: {value}"
    return float(match.group(1)) * _QUANTITY_UNITS[match.group(2)]


def _code_consumers() -> dict[str, set[tuple[str, str]]]:
    """Each service's consumers as (group, topic), read from the consumer calls of its app."""
    consumers: dict[str, set[tuple[str, str]]] = {}
    for service in APP_SERVICES:
        module = importlib.import_module(f"services.{service}.app")
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            # `service.consume(...)` (gridline.service) or a ConsumerRunner of its own.
            called = getattr(node, "func", None)
            name = getattr(called, "attr", "") or getattr(called, "id", "")
            if isinstance(node, ast.Call) and name in ("consume", "ConsumerRunner"):
                kwargs = {k.arg: k.value for k in node.keywords}
                topic, group = kwargs["topic"], kwargs["group"]
                assert isinstance(topic, ast.Attribute) and isinstance(group, ast.Name)
                found.add((getattr(module, group.id), getattr(topics, topic.attr)))
        consumers[service] = found
    return consumers


CODE_CONSUMERS = _code_consumers()


def _code_calls(service: str) -> tuple[set[str], bool]:
    """The services whose gRPC servers `service` calls and whether it uses Redis, read from the
    calls of its app."""
    module = importlib.import_module(f"services.{service}.app")
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    names = {
        getattr(node.func, "attr", "") or getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    return {GRPC_CLIENTS[n] for n in names if n in GRPC_CLIENTS}, "RedisHandle" in names


CODE_CALLS = {service: _code_calls(service)[0] for service in APP_SERVICES}
CODE_USES_REDIS = {service for service in APP_SERVICES if _code_calls(service)[1]}


def _public_routes() -> dict[str, list[tuple[str, str]]]:
    """Each service's public routes as (method, path), from the app its code builds."""
    found: dict[str, list[tuple[str, str]]] = {}
    for service in APP_SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app(Settings())
        found[service] = [
            (method, route.path or "")
            for route in app.state.surfaces.routes(app, "public")
            for method in sorted(route.methods or ())
        ]
    return found


def _all_routes() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for service in APP_SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app(Settings())
        found[service] = [
            (method, route.path or "")
            for route in iter_route_contexts(app.routes)
            for method in sorted(route.methods or ())
        ]
    return found


PUBLIC_ROUTES = _public_routes()
ALL_ROUTES = _all_routes()
HAS_PUBLIC = {service for service, routes in PUBLIC_ROUTES.items() if routes}


def _sample(path: str) -> str:
    """A request path the route declared at `path` answers."""
    return re.sub(r"\{[^}]+\}", "x", path)


def _ingress_matches(path_type: str, rule: str, path: str) -> bool:
    """Whether an Ingress path sends a request for `path` on, as Kubernetes defines Exact and
    Prefix (element-wise) and ingress-nginx does ImplementationSpecific (a string prefix)."""
    if path_type == "Exact":
        return path == rule
    if path_type == "Prefix":
        elements = rule.rstrip("/").split("/")
        return path.split("/")[: len(elements)] == elements
    return path.startswith(rule)


def _strong(value: str) -> str:
    """A template's secret value with its placeholder replaced by a real-looking one."""
    if "base64 of 32" in value or "groups file was sealed" in value:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return re.sub(r"<[^>]*>", lambda _: secrets.token_urlsafe(24), value)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    """The manifests of the base and each overlay, as `kubectl kustomize` builds them."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its kustomize) is not installed")
    builds = {}
    for build in BUILDS:
        result = subprocess.run(
            [kubectl, "kustomize", str(K8S / build)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{build}: {result.stderr}"
        builds[build] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return builds


@pytest.fixture(params=BUILDS)
def docs(request: pytest.FixtureRequest, built: dict[str, list[dict[str, Any]]]) -> Any:
    return built[request.param]


@pytest.fixture
def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = _of_kind(docs, "ConfigMap")["gridline-config"]["data"]
    return data


@pytest.fixture
def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return _of_kind(docs, "Deployment")


@pytest.fixture
def partitions(docs: list[dict[str, Any]], config: dict[str, str]) -> dict[str, int]:
    (job,) = _of_kind(docs, "Job").values()
    return _run_topic_script(*_job_script(job, config))


@pytest.fixture(scope="module")
def secret_examples() -> dict[str, dict[str, Any]]:
    """The Secret template of each service, by service."""
    found = {}
    for secret in _load_all(K8S_BASE / SECRET_EXAMPLE):
        assert secret["kind"] == "Secret"
        name = secret["metadata"]["name"]
        match = re.fullmatch(r"gridline-(\w+)-secrets", name)
        assert match and match.group(1) in APP_SERVICES, name
        found[match.group(1)] = secret
    assert set(found) == set(APP_SERVICES)
    return found


@pytest.fixture(scope="module")
def secret_example_vars(secret_examples: dict[str, dict[str, Any]]) -> set[str]:
    return {name for secret in secret_examples.values() for name in secret["stringData"]}


@pytest.fixture(scope="module")
def otel_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OTEL_CONFIG.read_text(encoding="utf-8"))
    return loaded


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


def test_dockerfile_runtime_copies_only_the_venv_and_runs_non_root() -> None:
    instructions = _dockerfile_instructions()
    froms = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    runtime = instructions[froms[-1] :]
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"], "sources or tools leak into runtime"
    assert not [rest for keyword, rest in runtime if "uv " in rest], "uv must not reach runtime"
    users = [rest for keyword, rest in runtime if keyword == "USER"]
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


def test_dockerfile_exposes_every_service_port() -> None:
    exposed = {
        int(port)
        for keyword, rest in _dockerfile_instructions()
        if keyword == "EXPOSE"
        for port in rest.split()
    }
    image_env = dict(re.findall(r"\b(GRIDLINE_\w+)=(\S+)", DOCKERFILE.read_text(encoding="utf-8")))
    defaults = Settings.model_fields
    # The image separates the surfaces: a public port only where there are public routes.
    wanted = (
        {defaults[f"{s}_http_port"].default for s in HAS_PUBLIC}
        | {int(image_env[_staff_port_var(s)]) for s in APP_SERVICES}
        | {
            defaults[var.removeprefix("GRIDLINE_").lower()].default
            for var in GRPC_PORT_SETTINGS.values()
        }
    )
    assert exposed == wanted


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    vendor = pytest.importorskip("check_jsonschema.builtin_schemas.vendor")
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    schema = json.loads(resources.files(vendor).joinpath("compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors


def test_compose_builds_use_the_repo_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    builders = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert set(builders) == set(APP_SERVICES)
    for name, build in builders.items():
        build = {"context": build} if isinstance(build, str) else build
        context = (ROOT / build.get("context", ".")).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile == DOCKERFILE and dockerfile.is_file(), name


def test_compose_pulled_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


def test_compose_references_name_existing_services(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        depends_on = svc.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {dep: {"condition": "service_started"} for dep in depends_on}
        for dep, rule in depends_on.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} can never become healthy"
            if rule["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} must run once"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_service_runs_its_module(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert _command(services[name]["command"]) == ["python", "-m", f"services.{name}"]
    assert (ROOT / "services" / name / "__main__.py").is_file()


def test_every_gridline_variable_is_a_setting(
    services: dict[str, dict[str, Any]],
    built: dict[str, list[dict[str, Any]]],
    secret_example_vars: set[str],
) -> None:
    used: dict[str, set[str]] = {"docker-compose.yml": set()}
    for svc in services.values():
        used["docker-compose.yml"] |= set(_environment(svc))
    for build, docs in built.items():
        names = used.setdefault(f"deploy/k8s/{build}", set(secret_example_vars))
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                names |= set(doc["data"])
            if doc["kind"] in ("Deployment", "Job"):
                names |= {env["name"] for env in _container(doc).get("env", [])}
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
    services: dict[str, dict[str, Any]], name: ServiceName, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {key: _interpolate(value) for key, value in _environment(services[name]).items()}
    # The operator's secrets, as deploy/README.md makes them.
    env |= {var: _strong("<urlsafe base64 of 32 random bytes>") for var in SECRET_VARS & set(env)}
    settings = _settings(env, monkeypatch)
    has_public = name in HAS_PUBLIC
    assert production_problems(settings, name, has_public_routes=has_public) == []
    assert settings.env == "production"
    assert settings.host == "0.0.0.0"
    assert settings.kafka_idempotence is True
    assert _host_port(settings.kafka_bootstrap)[0] in services
    assert _host_port(settings.database_url.split("@")[-1].split("/")[0])[0] in services
    assert _host_port(settings.redis_url.rpartition("/")[0])[0] in services
    assert settings.seed_demo_county is (name == "assignment")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_secrets_are_required_from_the_environment(
    services: dict[str, dict[str, Any]], name: ServiceName
) -> None:
    env = _environment(services[name])
    # Its own keys, and only those: a service never holds another's.
    assert SECRET_VARS & set(env) == SERVICE_SECRET_VARS[name], name
    for var in SERVICE_SECRET_VARS[name]:
        assert re.fullmatch(rf"\$\{{{var}:\?[^}}]+\}}", env[var]), f"{name}: {var}={env[var]}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_services_run_the_shipped_policies(
    services: dict[str, dict[str, Any]], name: ServiceName
) -> None:
    env = _environment(services[name])
    for variable, source in SHIPPED_POLICIES.items():
        assert variable in env, f"{name}: {variable} unset, the bare fallback would run"
        assert _image_file(_interpolate(env[variable])) == ROOT / source, name


def test_compose_grpc_targets_are_the_serving_services(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _environment(services["intake"])
    for target, (service, port_var) in GRPC_TARGETS.items():
        host, port = _host_port(env[target])
        assert host == service and port == int(_environment(services[service])[port_var])


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
    expected = {NGINX_CONF, OTEL_CONFIG, PROMETHEUS_DIR, GRAFANA_PROVISIONING, GRAFANA_DASHBOARDS}
    assert expected <= referenced
    for path in referenced:
        assert path.exists(), f"{path.relative_to(ROOT)} is mounted but missing"


def test_compose_intake_has_no_fixed_host_port(services: dict[str, dict[str, Any]]) -> None:
    intake = services["intake"]
    # Either would stop `docker compose up --scale intake=N`.
    assert not intake.get("ports")
    assert "container_name" not in intake


def test_compose_publishes_only_public_listeners(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        env = _environment(services[name])
        published = {str(port).rsplit(":", 1)[-1] for port in services[name].get("ports", [])}
        for port in published:
            assert name in HAS_PUBLIC and port == env[_http_port_var(name)], f"{name}: {port}"
        assert env.get(_staff_port_var(name)), f"{name} serves staff routes on its public port"
    upstreams = re.findall(r"server\s+(\w+):(\d+)", NGINX_CONF.read_text(encoding="utf-8"))
    for host, port in upstreams:
        assert port == _environment(services[host])[_http_port_var(host)], "nginx: staff port"


def test_compose_lb_publishes_8001_and_proxies_to_intake(
    services: dict[str, dict[str, Any]],
) -> None:
    published = [str(port).rsplit(":", 2)[-2] for port in services["lb"]["ports"]]
    assert published == ["8001"]
    intake_port = _environment(services["intake"])[_http_port_var("intake")]
    upstreams = re.findall(r"server\s+intake:(\d+)", NGINX_CONF.read_text(encoding="utf-8"))
    assert upstreams == [intake_port]


def test_compose_operations_uis_listen_on_loopback_only(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("prometheus", "grafana", "jaeger"):
        for port in services[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every host"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_healthcheck_probes_readyz_on_the_staff_port(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    svc = services[name]
    test = " ".join(_command(svc["healthcheck"]["test"]))
    port = _environment(svc)[_staff_port_var(name)]
    assert re.findall(r":(\d+)/readyz", test) == [port]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_service_waits_for_infrastructure_and_topics(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    for infra in ("kafka", "postgres", "redis"):
        assert depends_on[infra]["condition"] == "service_healthy"
    assert depends_on["topics"]["condition"] == "service_completed_successfully"


def test_compose_topics_job_creates_every_topic_and_dead_letter(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services["topics"]
    (script,) = _command(job["command"])
    env = {key: _interpolate(value) for key, value in _environment(job).items()}
    # Compose turns `$$` into `$` before the shell sees the script.
    partitions = _run_topic_script(script.replace("$$", "$"), env)
    assert (
        env["GRIDLINE_KAFKA_BOOTSTRAP"]
        == _environment(services["intake"])["GRIDLINE_KAFKA_BOOTSTRAP"]
    )
    # The same partitions as the base manifests, so compose scales its consumers as far.
    (job,) = _load_all(K8S_BASE / "topics-job.yaml")
    base_env = {var["name"]: var["value"] for var in _container(job)["env"] if "value" in var}
    assert partitions == _run_topic_script(script.replace("$$", "$"), {**env, **base_env})


def test_compose_and_kubernetes_create_topics_with_one_script(
    services: dict[str, dict[str, Any]],
) -> None:
    (script,) = _command(services["topics"]["command"])
    (job,) = _load_all(K8S_BASE / "topics-job.yaml")
    (k8s_script,) = _container(job)["args"]
    assert script.replace("$$", "$").split() == k8s_script.split()
    assert services["topics"]["image"] == _container(job)["image"] == services["kafka"]["image"]


# --- OpenTelemetry collector and Jaeger ---------------------------------------------------------


def test_otel_collector_pipelines_use_defined_components(otel_config: dict[str, Any]) -> None:
    pipelines = otel_config["service"]["pipelines"]
    assert "traces" in pipelines
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] and pipeline["exporters"], name
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in otel_config[section], f"{name}: undefined {component}"
    used = {
        (section, component)
        for pipeline in pipelines.values()
        for section in ("receivers", "processors", "exporters")
        for component in pipeline.get(section, [])
    }
    for section in ("receivers", "processors", "exporters"):
        for component in otel_config.get(section, {}):
            assert (section, component) in used, f"{section}.{component} is defined but unused"
    # memory_limiter must come first to protect the rest of the pipeline.
    assert pipelines["traces"]["processors"][0] == "memory_limiter"


def test_services_send_traces_to_the_collector_and_it_to_jaeger(
    services: dict[str, dict[str, Any]], otel_config: dict[str, Any]
) -> None:
    collector = services["otel-collector"]
    mount = next(v for v in collector["volumes"] if v.startswith("./deploy/otel-collector/"))
    assert f"--config={mount.split(':')[1]}" in collector["command"]
    receiver_port = _host_port(otel_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    for name in APP_SERVICES:
        host, port = _host_port(_environment(services[name])["GRIDLINE_OTLP_ENDPOINT"])
        assert (host, port) == ("otel-collector", receiver_port[1]), name
    (exporter,) = otel_config["service"]["pipelines"]["traces"]["exporters"]
    host, port = _host_port(otel_config["exporters"][exporter]["endpoint"])
    assert host in services and port == 4317, "Jaeger takes OTLP/gRPC on 4317"
    assert _environment(services[host])["COLLECTOR_OTLP_ENABLED"] == "true"


# --- Prometheus and Grafana (deploy/prometheus, deploy/grafana) ---------------------------------


def _prometheus_config() -> dict[str, Any]:
    assert PROMETHEUS_CONFIG.is_file(), f"{PROMETHEUS_CONFIG.relative_to(ROOT)} is missing"
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return config


def test_prometheus_config_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    _prometheus_config()
    # Relative rule_files resolve against the config's directory, as in the container.
    result = subprocess.run(
        [promtool, "check", "config", PROMETHEUS_CONFIG.name],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_compose_service_on_its_port(
    services: dict[str, dict[str, Any]],
) -> None:
    targets = set()
    for job in _prometheus_config()["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= {_host_port(target) for target in static["targets"]}
        for dns in job.get("dns_sd_configs", []):
            targets |= {(name, dns["port"]) for name in dns["names"]}
    for host, _ in targets:
        assert host in services or host == "localhost", f"Prometheus scrapes unknown {host}"
    for name in APP_SERVICES:
        port = int(_environment(services[name])[_staff_port_var(name)])
        assert (name, port) in targets, f"Prometheus does not scrape {name}:{port}"


def test_grafana_provisioning_matches_compose(services: dict[str, dict[str, Any]]) -> None:
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("."))
    dashboards_in_container = mounts["./deploy/grafana/dashboards"]
    datasources = [
        source
        for path in sorted((GRAFANA_PROVISIONING / "datasources").glob("*.y*ml"))
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    ]
    prometheus = [source for source in datasources if source["type"] == "prometheus"]
    assert prometheus, "no Prometheus datasource is provisioned"
    for source in prometheus:
        assert _host_port(source["url"]) == ("prometheus", 9090)
    providers = [
        provider
        for path in sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text(encoding="utf-8"))["providers"]
    ]
    assert providers, "no dashboard provider is provisioned"
    for provider in providers:
        assert provider["options"]["path"].rstrip("/") == dashboards_in_container
    uids = {source.get("uid") for source in datasources}
    dashboards = sorted(GRAFANA_DASHBOARDS.glob("*.json"))
    assert dashboards
    for path in dashboards:
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        for uid in re.findall(r'"datasource":\s*\{[^}]*"uid":\s*"([^"$]+)"', text):
            assert uid in uids, f"{path.name} uses datasource {uid}, not provisioned"


# --- deploy/k8s: sources ------------------------------------------------------------------------


def test_secret_examples_are_placeholder_templates_outside_every_build(
    secret_examples: dict[str, dict[str, Any]], built: dict[str, list[dict[str, Any]]]
) -> None:
    for path in K8S.rglob("kustomization.yaml"):
        kustomization = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert SECRET_EXAMPLE not in kustomization.get("resources", []), path
        assert "secretGenerator" not in kustomization, path
    for docs in built.values():
        assert not _of_kind(docs, "Secret"), "a Secret is in a build: secrets stay out of the repo"
    for service, secret in secret_examples.items():
        # Its own keys and its own database user, nothing of another service's.
        keys = set(secret["stringData"])
        assert keys & SECRET_VARS == SERVICE_SECRET_VARS[service], service
        assert keys - SECRET_VARS == {"GRIDLINE_DATABASE_URL"}, service
        assert f"gridline_{service}:" in secret["stringData"]["GRIDLINE_DATABASE_URL"], service
        for key, value in secret["stringData"].items():
            assert "<" in value, f"{service}: {key} looks like a real value, not a placeholder"


# --- deploy/k8s: every build (base, county, province) -------------------------------------------


def test_k8s_manifests_match_the_kubernetes_schemas(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        assert KNOWN_KINDS.get(doc["kind"]) == doc["apiVersion"], doc["kind"]
    validate = pytest.importorskip("kubernetes_validate")
    builtin = ("v1", "apps/v1", "batch/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1")
    for doc in docs:
        if doc["apiVersion"] in builtin:
            validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_k8s_deploys_each_app_service_from_one_image(
    deployments: dict[str, dict[str, Any]],
) -> None:
    assert set(deployments) == set(APP_SERVICES)
    images = set()
    for name, deployment in deployments.items():
        container = _container(deployment)
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert (ROOT / "services" / name / "__main__.py").is_file()
        images.add(container["image"])
    (image,) = images
    assert re.fullmatch(r"([\w.-]+/)*gridline:[\w.-]+", image), image


def test_k8s_deployment_ports_match_configmap(
    deployments: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    for name, deployment in deployments.items():
        # A public listener only where there are public routes, a staff one everywhere.
        expected = {"staff": int(config[_staff_port_var(name)])}
        if name in HAS_PUBLIC:
            expected["http"] = int(config[_http_port_var(name)])
        if name in GRPC_PORT_SETTINGS:
            expected["grpc"] = int(config[GRPC_PORT_SETTINGS[name]])
        assert _ports(_container(deployment)) == expected, name
    startup = _container(deployments["assignment"])["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "staff"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_k8s_configmap_and_each_secret_are_valid_production_settings(
    config: dict[str, str],
    secret_examples: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    name: ServiceName,
) -> None:
    # Kubernetes refuses non-string ConfigMap values.
    assert all(isinstance(value, str) for value in config.values())
    secret = {key: _strong(value) for key, value in secret_examples[name]["stringData"].items()}
    settings = _settings({**config, **secret}, monkeypatch)
    # The service starts on it once the placeholders are real values.
    assert production_problems(settings, name, has_public_routes=name in HAS_PUBLIC) == []
    assert settings.env == "production"
    assert settings.host == "0.0.0.0"
    assert settings.kafka_idempotence is True
    assert not settings.seed_demo_county
    assert settings.grpc_reflection is False
    assert "GRIDLINE_DATABASE_URL" not in config, "it carries a password: it belongs in the Secret"
    assert not SECRET_VARS & set(config), "keys belong in each service's Secret"
    if settings.otlp_endpoint:
        _host_port(settings.otlp_endpoint)


def test_k8s_services_run_the_shipped_policies(config: dict[str, str]) -> None:
    # Every pod reads gridline-config and nothing else (the test below), so it decides for all.
    for variable, source in SHIPPED_POLICIES.items():
        assert variable in config, f"{variable} unset, the bare fallback would run"
        assert _image_file(config[variable]) == ROOT / source


def test_k8s_pods_read_the_config_and_only_their_own_secrets(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    config_maps = set(_of_kind(docs, "ConfigMap"))
    for name, deployment in deployments.items():
        env_from = _container(deployment)["envFrom"]
        assert [ref["configMapRef"]["name"] for ref in env_from if "configMapRef" in ref] == [
            "gridline-config"
        ]
        assert [ref["secretRef"]["name"] for ref in env_from if "secretRef" in ref] == [
            f"gridline-{name}-secrets"
        ]
        for ref in env_from:
            if "configMapRef" in ref:
                assert ref["configMapRef"]["name"] in config_maps, name
        # No Secret of another service, as variables or as files.
        assert not _container(deployment).get("env"), f"{name}: settings come by envFrom only"
        mounted = [v["secret"]["secretName"] for v in _pod(deployment)["volumes"] if "secret" in v]
        for secret_name in mounted:
            assert secret_name.startswith(f"gridline-{name}-"), f"{name} mounts {secret_name}"


def test_k8s_service_selectors_match_deployment_pods(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    k8s_services = _of_kind(docs, "Service")
    # One Service per app, and a headless one of the gRPC port of each gRPC server.
    headless = {f"{server}-grpc" for server, _ in GRPC_TARGETS.values()}
    assert set(k8s_services) == set(APP_SERVICES) | headless
    assert {name for name, service in k8s_services.items() if _headless(service)} == headless
    for name, service in k8s_services.items():
        selector = service["spec"]["selector"]
        matches = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        container_ports = _ports(_container(matches[0]))
        if name in headless:
            assert [port["name"] for port in service["spec"]["ports"]] == ["grpc"], name
        else:
            assert {port["name"] for port in service["spec"]["ports"]} == set(container_ports)
        for port in service["spec"]["ports"]:
            assert port["port"] == container_ports[port["targetPort"]], f"{name}: {port}"


def test_k8s_deployment_selectors_match_their_pod_labels(
    deployments: dict[str, dict[str, Any]],
) -> None:
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_k8s_grpc_targets_are_the_serving_services(
    docs: list[dict[str, Any]], config: dict[str, str]
) -> None:
    k8s_services = _of_kind(docs, "Service")
    for target, (service, port_var) in GRPC_TARGETS.items():
        # Every pod of the server by the DNS name of a headless Service (a ClusterIP would
        # give the client one connection, to one pod), in the namespace the build deploys to.
        name, namespace, port = _dns_target(config[target])
        k8s_service = k8s_services[name]
        assert _headless(k8s_service), f"{target}: {name} has a cluster IP"
        assert k8s_service["metadata"].get("namespace", namespace) == namespace, target
        assert k8s_service["spec"]["selector"]["app.kubernetes.io/name"] == service
        (grpc,) = [p for p in k8s_service["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc["port"] == port == int(config[port_var])


def test_grpc_clients_go_round_robin_over_every_address_of_the_target() -> None:
    # The typed clients' channels (RpcClient, through gridline.rpc.channel) spread calls over
    # the addresses a dns:/// target resolves to; grpc's default, pick_first, uses one of them.
    # tests/assignment/test_grpc_balancing.py sees it happen.
    for client, _ in GRPC_CLIENTS.items():
        module = importlib.import_module(f"gridline.{client.removesuffix('Client').lower()}_client")
        assert issubclass(getattr(module, client), rpc.RpcClient), client
    options = dict(rpc.CHANNEL_OPTIONS)
    config = json.loads(str(options["grpc.service_config"]))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    # Neither a DNS TXT record may choose another policy.
    assert options["grpc.service_config_disable_resolution"] == 1


def test_k8s_ingress_routes_only_public_paths_to_public_listeners(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    (ingress,) = _of_kind(docs, "Ingress").values()
    k8s_services = _of_kind(docs, "Service")
    host = urlsplit(config["GRIDLINE_PUBLIC_BASE_URL"]).hostname
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host, "the Ingress serves the host of the links sent to people"
    assert [t["hosts"] for t in ingress["spec"]["tls"]] == [[host]], "HTTPS only"
    paths = rule["http"]["paths"]
    for path in paths:
        backend = path["backend"]["service"]
        service = k8s_services[backend["name"]]["spec"]["selector"]["app.kubernetes.io/name"]
        # The public listener: the Service port `http`, the container port of the HTTP port.
        (port,) = [p for p in k8s_services[backend["name"]]["spec"]["ports"] if p["name"] == "http"]
        assert backend["port"] == {"name": "http"}, path
        assert _ports(_container(deployments[service]))[port["targetPort"]] == int(
            config[_http_port_var(service)]
        )
        for method, route in ALL_ROUTES[service]:
            if _ingress_matches(path["pathType"], path["path"], _sample(route)):
                assert (method, route) in PUBLIC_ROUTES[service], f"{path['path']}: {route}"
    # And every public route is reachable, on its own service.
    for service, routes in PUBLIC_ROUTES.items():
        for _, route in routes:
            reached = [
                p
                for p in paths
                if _ingress_matches(p["pathType"], p["path"], _sample(route))
                and k8s_services[p["backend"]["service"]["name"]]["spec"]["selector"][
                    "app.kubernetes.io/name"
                ]
                == service
            ]
            assert reached, f"{service}: {route} is public but not in the Ingress"


def _peers(rule: dict[str, Any], side: str) -> list[dict[str, Any]]:
    peers: list[dict[str, Any]] = rule.get(side, [])
    assert peers, f"a rule without `{side}` admits anything: {rule}"
    return peers


def _namespaces(peers: list[dict[str, Any]]) -> set[str]:
    return {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in peers
        if "kubernetes.io/metadata.name" in peer.get("namespaceSelector", {}).get("matchLabels", {})
    }


def _pods(peers: list[dict[str, Any]]) -> set[str]:
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for peer in peers
        if "namespaceSelector" not in peer and "podSelector" in peer
    }


def _rule_ports(rule: dict[str, Any]) -> set[int]:
    ports = rule.get("ports")
    assert ports, f"a rule without ports admits every port: {rule}"
    return {int(port["port"]) for port in ports}


def test_k8s_network_policies_let_each_service_reach_only_what_it_calls(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    policies = _of_kind(docs, "NetworkPolicy")
    grpc_port = {s: int(config[v]) for s, v in GRPC_PORT_SETTINGS.items()}
    callers = {s: {c for c, called in CODE_CALLS.items() if s in called} for s in APP_SERVICES}
    assert CODE_USES_REDIS == REDIS_USERS, "gridline.production.REDIS_USERS is stale"
    for name, deployment in deployments.items():
        assert name in APP_SERVICES, name
        selecting = [
            p
            for p in policies.values()
            if p["spec"]["podSelector"]["matchLabels"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selecting) == 1, f"{name}: {len(selecting)} NetworkPolicies"
        (spec,) = (p["spec"] for p in selecting)
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"], name
        # In: the public port from the ingress controller, the staff port from staff
        # namespaces, the gRPC port from exactly the services that call it.
        allowed_in: dict[int, tuple[set[str], set[str], list[dict[str, Any]]]] = {}
        for rule in spec["ingress"]:
            peers = _peers(rule, "from")
            for port in _rule_ports(rule):
                namespaces, pods, others = allowed_in.setdefault(port, (set(), set(), []))
                namespaces |= _namespaces(peers)
                pods |= _pods(peers)
                others += [p for p in peers if not _namespaces([p]) and not _pods([p])]
        expected_ports = {int(config[_staff_port_var(name)])}
        if name in HAS_PUBLIC:
            public = int(config[_http_port_var(name)])
            expected_ports.add(public)
            assert allowed_in[public][:2] == ({INGRESS_NAMESPACE}, set()), name
            assert not allowed_in[public][2], name
        if callers.get(name):
            expected_ports.add(grpc_port[name])
            assert allowed_in[grpc_port[name]][:2] == (set(), callers[name]), name
        assert set(allowed_in) == expected_ports, f"{name} is reachable on {set(allowed_in)}"
        staff = allowed_in[int(config[_staff_port_var(name)])]
        assert staff[:2] == (set(), set()), f"{name}: staff port open to workloads"
        assert [p["namespaceSelector"]["matchLabels"] for p in staff[2]] == [STAFF_ACCESS], name
        # Out: DNS, the infrastructure, Redis if it uses it, the gRPC servers it calls, and
        # for notify alone the vendors on the internet.
        out_pods: dict[str, set[int]] = {}
        out_namespaces: dict[str, set[int]] = {}
        internet: set[int] = set()
        for rule in spec["egress"]:
            peers = _peers(rule, "to")
            ports = _rule_ports(rule)
            for pod in _pods(peers):
                out_pods.setdefault(pod, set()).update(ports)
            for namespace in _namespaces(peers):
                out_namespaces.setdefault(namespace, set()).update(ports)
            for peer in peers:
                if "ipBlock" in peer:
                    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
                    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(
                        peer["ipBlock"]["except"]
                    ), "the cluster's networks are no vendor"
                    internet |= ports
        assert out_pods == {called: {grpc_port[called]} for called in CODE_CALLS[name]}, name
        wanted = {"kube-system": {53}, **INFRASTRUCTURE}
        if name in REDIS_USERS:
            wanted["redis"] = {6379}
        assert out_namespaces == wanted, name
        assert internet == ({443} if name == "notify" else set()), name

    # The infrastructure the config names lives in the namespaces the policies open.
    def namespace_of(address: str) -> str:
        return address.split("://")[-1].split("/")[0].split(":")[0].split(".")[1]

    assert namespace_of(config["GRIDLINE_KAFKA_BOOTSTRAP"]) == "kafka"
    assert namespace_of(config["GRIDLINE_REDIS_URL"]) == "redis"
    if config["GRIDLINE_OTLP_ENDPOINT"]:
        assert namespace_of(config["GRIDLINE_OTLP_ENDPOINT"]) == "observability"


def test_k8s_overlays_speak_mutual_tls_with_one_identity_per_service(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    for build in BUILDS[1:]:
        docs = built[build]
        config = _of_kind(docs, "ConfigMap")["gridline-config"]["data"]
        settings = Settings(**{k.removeprefix("GRIDLINE_").lower(): v for k, v in config.items()})
        files = (settings.grpc_tls_cert_file, settings.grpc_tls_key_file, settings.grpc_tls_ca_file)
        assert all(files), f"{build}: gRPC without TLS"
        (directory,) = {str(Path(str(f)).parent) for f in files}
        certificates = {c["spec"]["secretName"]: c for c in _of_kind(docs, "Certificate").values()}
        issuers = _of_kind(docs, "Issuer")
        for name, deployment in _of_kind(docs, "Deployment").items():
            namespace = deployment["metadata"]["namespace"]
            mounts = {m["mountPath"]: m["name"] for m in _container(deployment)["volumeMounts"]}
            volumes = {v["name"]: v for v in _pod(deployment)["volumes"]}
            secret_name = volumes[mounts[directory]]["secret"]["secretName"]
            spec = certificates[secret_name]["spec"]
            # The name its callers dial (the Service), in the namespace the overlay sets.
            assert {name, f"{name}.{namespace}.svc"} <= set(spec["dnsNames"]), build
            # And the headless Service's full name, the host of the clients' targets, which
            # their TLS check holds the certificate to.
            for target, (server, _port_var) in GRPC_TARGETS.items():
                if server == name:
                    dialled, dialled_namespace, _port = _dns_target(config[target])
                    host = f"{dialled}.{dialled_namespace}.svc.cluster.local"
                    assert dialled_namespace == namespace, f"{build}: {target}"
                    assert host in spec["dnsNames"], f"{build}: {name} is dialled as {host}"
            assert {"server auth", "client auth"} <= set(spec["usages"]), build
            assert "ca" in issuers[spec["issuerRef"]["name"]]["spec"], build
            # Each server admits exactly the services whose code calls it.
            callers = {c for c, called in CODE_CALLS.items() if name in called}
            if callers:
                assert name in APP_SERVICES, name  # narrows the type; only services are called
                assert set(settings.grpc_clients(name)) == callers, f"{build}: {name}"
        assert settings.grpc_reflection_on is False, build
        assert not settings.production_allowances, f"{build} waives {settings.production_allow}"


def test_k8s_deployment_probes_security_and_resources(
    deployments: dict[str, dict[str, Any]],
) -> None:
    for name, deployment in deployments.items():
        pod = _pod(deployment)
        container = _container(deployment)
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "staff"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "staff"}

        assert pod["securityContext"]["runAsNonRoot"] is True
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        for unit in ("cpu", "memory"):
            request, limit = resources["requests"][unit], resources["limits"][unit]
            assert _quantity(request) <= _quantity(limit), f"{name}: {unit} {request} > {limit}"

        # With a read-only root, /data and /tmp must be writable scratch volumes.
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get("/data") in empty_dirs and mounts.get("/tmp") in empty_dirs, name


def test_k8s_pods_are_annotated_for_prometheus_on_their_staff_port(
    deployments: dict[str, dict[str, Any]],
) -> None:
    for name, deployment in deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        port = int(annotations["prometheus.io/port"])
        assert port == _ports(_container(deployment))["staff"], name


def test_k8s_intake_hpa_scales_the_intake_deployment(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    spec = _of_kind(docs, "HorizontalPodAutoscaler")["intake"]["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "intake",
    }
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "cpu" in _container(deployments["intake"])["resources"]["requests"]


def test_k8s_autoscaled_deployments_set_no_replicas(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    # A replica count in the Deployment would fight the autoscaler on every `kubectl apply`.
    scaled = {
        doc["spec"]["scaleTargetRef"]["name"]
        for doc in docs
        if "scaleTargetRef" in doc.get("spec", {})
    }
    assert scaled == set(APP_SERVICES)
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], name


def test_k8s_consumers_scale_on_the_lag_of_their_real_groups(
    docs: list[dict[str, Any]], config: dict[str, str]
) -> None:
    scaled_objects = _of_kind(docs, "ScaledObject")
    assert set(scaled_objects) == set(SCALED_ON_LAG)
    for name, scaled in scaled_objects.items():
        spec = scaled["spec"]
        assert spec["scaleTargetRef"] == {"name": name}
        # Never to zero: each consumer also serves gRPC or runs timers.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        triggers = set()
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert meta["bootstrapServers"] == config["GRIDLINE_KAFKA_BOOTSTRAP"], name
            assert int(meta["lagThreshold"]) > 0
            assert meta["offsetResetPolicy"] == "earliest", "the consumers start at the earliest"
            triggers.add((meta["consumerGroup"], meta["topic"]))
        assert triggers == CODE_CONSUMERS[name], f"{name}: groups and topics of the code"


def test_k8s_topics_cover_every_consumers_maximum_replicas(
    docs: list[dict[str, Any]], partitions: dict[str, int]
) -> None:
    for name, scaled in _of_kind(docs, "ScaledObject").items():
        for trigger in scaled["spec"]["triggers"]:
            topic = trigger["metadata"]["topic"]
            assert scaled["spec"]["maxReplicaCount"] <= partitions[topic], (
                f"{name} may scale to {scaled['spec']['maxReplicaCount']} replicas, "
                f"but {topic} has {partitions[topic]} partitions"
            )


def test_k8s_topics_job_reads_the_brokers_from_the_config(
    docs: list[dict[str, Any]], config: dict[str, str]
) -> None:
    (job,) = _of_kind(docs, "Job").values()
    assert _pod(job)["securityContext"]["runAsNonRoot"] is True
    _, env = _job_script(job, config)
    assert env["GRIDLINE_KAFKA_BOOTSTRAP"] == config["GRIDLINE_KAFKA_BOOTSTRAP"]


def test_k8s_each_deployment_has_a_disruption_budget_of_its_own(
    docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    budgets = _of_kind(docs, "PodDisruptionBudget")
    covered = []
    for name, budget in budgets.items():
        selector = budget["spec"]["selector"]["matchLabels"]
        matches = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"PodDisruptionBudget {name} selects {len(matches)}"
        covered.append(matches[0]["metadata"]["name"])
        # maxUnavailable (not minAvailable) lets a single-replica consumer still be drained.
        assert "maxUnavailable" in budget["spec"] and "minAvailable" not in budget["spec"]
    assert sorted(covered) == sorted(APP_SERVICES)


# --- deploy/k8s: the overlays -------------------------------------------------------------------


def _scaling(docs: list[dict[str, Any]]) -> dict[str, Any]:
    config = _of_kind(docs, "ConfigMap")["gridline-config"]["data"]
    (job,) = _of_kind(docs, "Job").values()
    intake = _container(_of_kind(docs, "Deployment")["intake"])["resources"]
    return {
        "hpa": _of_kind(docs, "HorizontalPodAutoscaler")["intake"]["spec"],
        "scaled": {n: d["spec"] for n, d in _of_kind(docs, "ScaledObject").items()},
        "partitions": _run_topic_script(*_job_script(job, config)),
        "intake cpu": _quantity(intake["requests"]["cpu"]),
    }


def test_k8s_overlays_set_a_namespace_and_a_registry_image(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    for build in BUILDS[1:]:
        for doc in built[build]:
            assert doc["metadata"].get("namespace"), f"{build}: {doc['kind']} has no namespace"
        for deployment in _of_kind(built[build], "Deployment").values():
            assert "/" in _container(deployment)["image"], f"{build}: image without registry"


def test_k8s_province_is_sized_above_the_county(built: dict[str, list[dict[str, Any]]]) -> None:
    county, province = _scaling(built["overlays/county"]), _scaling(built["overlays/province"])
    assert province["hpa"]["minReplicas"] > county["hpa"]["minReplicas"]
    assert province["hpa"]["maxReplicas"] > county["hpa"]["maxReplicas"]
    assert province["intake cpu"] > county["intake cpu"]
    assert province["partitions"][topics.REPORTS] > county["partitions"][topics.REPORTS]
    for name in SCALED_ON_LAG:
        ours, theirs = province["scaled"][name], county["scaled"][name]
        assert ours["maxReplicaCount"] > theirs["maxReplicaCount"], name
        lags = [
            (int(a["metadata"]["lagThreshold"]), int(b["metadata"]["lagThreshold"]))
            for a, b in zip(ours["triggers"], theirs["triggers"], strict=True)
        ]
        assert all(mine > other for mine, other in lags), f"{name}: {lags}"
