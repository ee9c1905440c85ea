"""Every dashboard panel's query and every alert rule, asked of real Prometheus servers scraping
the running platform under both scrape configurations of deploy/prometheus.

The platform takes a demo load that touches every panel (reports of each source, rejected and
repeated ones, placements and triage, an acknowledgement, an escalation, deliveries, zero
reports, gRPC calls). Two Prometheus servers scrape it every second: one with compose's
configuration (`prometheus.yml`), one with the Kubernetes `kubernetes-pods` job
(`kubernetes.yml`). Each file is used as written but for its service discovery, which cannot run
on loopback (no DNS names for the services, no Kubernetes API): it is replaced by static targets
carrying the labels the discovery would give, so the files' own relabelling decides what is
scraped and how it is labelled. Under both, each panel's PromQL must be valid and return data,
every alert rule must evaluate, and `GridlineTargetDown` must fire for a replica that stops.
`promtool` checks each service's `/metrics`, both configurations and the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gridline.contracts.v1 import common_pb2
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port, stop_process
from gridline.staff.roles import Role
from gridline.timestamps import now
from gridline_cli.demo import build_reports
from gridline_cli.platform import SERVICES, Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import ACK_DEADLINE_SECONDS, start_platform
from tests.helpers import eventually
from tests.staff.tokens import bearer

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="the Debian package `prometheus` (prometheus and promtool) is not installed",
)

# The scrape configurations the rules and dashboards must work under.
SCRAPE_CONFIGS = {
    "compose": PROMETHEUS_DIR / "prometheus.yml",
    "kubernetes": PROMETHEUS_DIR / "kubernetes.yml",
}
# The label naming a service in both (the pod label app.kubernetes.io/name, as Prometheus's
# labelmap writes it); the rules and dashboards read it, never `job`.
SERVICE_LABEL = "app_kubernetes_io_name"
# A second notify replica served by the test, stopped to see GridlineTargetDown fire.
STAND_IN = "notify"

# What Grafana puts in place of its variables; the scrape interval here is one second.
GRAFANA_VARIABLES = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "5m",
    "$service": ".+",
    "$township": ".*",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels with queries (rows left out, nested ones included)."""
    found = []
    for panel in dashboard["panels"]:
        found += panel.get("panels", [])
        if panel["type"] != "row":
            found.append(panel)
    return found


def substituted(expr: str) -> str:
    """A query with Grafana's variables replaced as Grafana would (all values selected)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable: {expr}"
    return expr


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard/panel/refId, expr) of every target, Grafana's variables substituted."""
    return [
        (f"{name} / {panel['title']} / {target['refId']}", substituted(target["expr"]))
        for name, dashboard in dashboards().items()
        for panel in panels_of(dashboard)
        for target in panel["targets"]
    ]


def label_value_queries() -> list[tuple[str, str, str]]:
    """(dashboard/variable, metric, label) of every `label_values(metric, label)` variable."""
    found = []
    for name, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"])
                assert match, f"{name}: {variable['name']} is no label_values query"
                found.append((f"{name} / {variable['name']}", match[1], match[2]))
    return found


def test_dashboards_choose_their_datasource_and_are_provisioned() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    [source] = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "gridline.yaml").read_text()
    )
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]

    boards = dashboards()
    assert set(boards) == {"pipeline.json", "follow-up.json", "services.json"}
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for name, board in boards.items():
        # No fixed datasource uid anywhere: each board has its datasource variable.
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        uids = set(re.findall(r'"uid": *"([^"]*)"', json.dumps(board))) - {board["uid"]}
        assert uids == {"${datasource}"}, f"{name} names a fixed datasource: {uids}"
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (name, variable["name"])
        for panel in panels_of(board):
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            for used in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert used == DATASOURCE, (name, panel["title"])


def test_titles_are_chinese_and_descriptions_english() -> None:
    # County staff read the titles; the English description (which starts with the panel's
    # English name, as docs/dashboards.md and the runbooks call it) is for integrators and ops.
    for name, board in dashboards().items():
        assert CJK.search(board["title"]) and not CJK.search(board["description"]), name
        rows = [p for p in board["panels"] if p["type"] == "row"]
        for panel in [*rows, *panels_of(board)]:
            assert CJK.search(panel["title"]), f"{name}: {panel['title']} is not Chinese"
        for panel in panels_of(board):
            description = panel.get("description", "")
            assert re.match(r"[A-Za-z][\w ()/-]+\. ", description), (name, panel["title"])
            assert not CJK.search(description), (name, panel["title"])
        for variable in board["templating"]["list"]:
            assert CJK.search(variable["label"]), (name, variable["name"])
            assert not CJK.search(variable["description"]), (name, variable["name"])


def test_rules_and_dashboards_never_name_a_job() -> None:
    # Job names differ between compose (one per service) and Kubernetes (kubernetes-pods).
    read = [
        (f"{name} / {panel['title']}", target[key])
        for name, board in dashboards().items()
        for panel in panels_of(board)
        for target in panel["targets"]
        for key in ("expr", "legendFormat")
    ]
    read += [
        (f"{name} / ${variable['name']}", variable["definition"])
        for name, board in dashboards().items()
        for variable in board["templating"]["list"]
        if variable["type"] == "query"
    ]
    for path in (PROMETHEUS_DIR / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            read += [(rule["alert"], json.dumps(rule)) for rule in group["rules"]]
    for where, text in read:
        assert not re.search(r"\bjob\b", text), f"{where} reads `job`: {text}"


def test_panel_queries_name_only_declared_metrics() -> None:
    declared = set()
    for path in [ROOT / "gridline" / "metrics.py", *ROOT.glob("services/*/metrics.py")]:
        declared |= set(re.findall(r'"(gridline_[a-z_]+)"', path.read_text()))
    histograms = {f"{name}_{suffix}" for name in declared for suffix in ("bucket", "sum", "count")}
    for where, expr in panel_queries():
        used = set(re.findall(r"\bgridline_[a-z_]+", expr))
        assert used <= declared | histograms, (where, used - declared - histograms)


# --- Prometheus on loopback ---------------------------------------------------------------------


class StandIn:
    """A second notify replica: a /metrics endpoint the test stops to see its target go down."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"# An empty exposition: up is all the test reads of this replica.\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering: later scrapes are refused, as of a replica that died."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()


def _pod_template(service: str) -> dict[str, Any]:
    """The pod template of a service's Deployment in deploy/k8s/base."""
    for doc in yaml.safe_load_all((K8S_BASE / f"{service}.yaml").read_text(encoding="utf-8")):
        if doc and doc["kind"] == "Deployment":
            template: dict[str, Any] = doc["spec"]["template"]
            return template
    raise AssertionError(f"no Deployment in deploy/k8s/base/{service}.yaml")


def _meta(prefix: str, values: dict[str, str]) -> dict[str, str]:
    """Pod labels or annotations as Kubernetes discovery names them (`prometheus.io/port` →
    `__meta_kubernetes_pod_annotation_prometheus_io_port`)."""
    return {f"{prefix}{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": str(v) for k, v in values.items()}


def _pod(service: str, name: str, port: int, template: dict[str, Any]) -> dict[str, Any]:
    """The targets Kubernetes' pod discovery gives for one pod of the manifest on loopback:
    one per declared container port, its annotated port replaced by where it listens here."""
    annotations = dict(template["metadata"].get("annotations", {}))
    if "prometheus.io/port" in annotations:
        annotations["prometheus.io/port"] = str(port)
    ports = [p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])]
    return {
        "targets": [f"127.0.0.1:{p}" for p in ports] or ["127.0.0.1"],
        "labels": {
            "__meta_kubernetes_namespace": "gridline",
            "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_ip": "127.0.0.1",
            **_meta("__meta_kubernetes_pod_label_", template["metadata"]["labels"]),
            **_meta("__meta_kubernetes_pod_annotation_", annotations),
        },
    }


def loopback_config(
    kind: str, ports: dict[str, int], stand_in: str, rules: Path, listen: str
) -> dict[str, Any]:
    """The scrape configuration `kind` as written, its discovery replaced by static targets
    with the labels the discovery would give; one-second scrapes and evaluations."""
    config: dict[str, Any] = yaml.safe_load(SCRAPE_CONFIGS[kind].read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules / "*.yml")]
    for job in config["scrape_configs"]:
        static = job.setdefault("static_configs", [])
        # Compose: DNS gives each replica of a service's name; the service listens on its port.
        for dns in job.pop("dns_sd_configs", []):
            for name in dns["names"]:
                replicas = [f"127.0.0.1:{ports[name]}"]
                replicas += [stand_in] if name == STAND_IN else []
                static.append({"targets": replicas, "labels": {"__meta_dns_name": name}})
        # Kubernetes: every pod of the manifests, a second notify pod, and pods the job must
        # leave out (no scrape annotation; a finished one).
        if job.pop("kubernetes_sd_configs", None) is not None:
            for service in SERVICES:
                template = _pod_template(service)
                static.append(_pod(service, f"{service}-5d8f7c9b6-a1b2c", ports[service], template))
            standin_port = int(stand_in.rsplit(":", 1)[1])
            static.append(_pod(STAND_IN, "notify-5d8f7c9b6-z9y8x", standin_port,
                               _pod_template(STAND_IN)))  # fmt: skip
            static.append({
                "targets": [f"127.0.0.1:{ports['intake']}"],
                "labels": {"__meta_kubernetes_pod_name": "gridline-topics-x7k2p",
                           "__meta_kubernetes_pod_label_app_kubernetes_io_name": "gridline-topics",
                           "__meta_kubernetes_pod_phase": "Running"},
            })  # fmt: skip
            finished = _pod(
                "intake", "intake-5d8f7c9b6-old00", ports["intake"], _pod_template("intake")
            )
            finished["labels"]["__meta_kubernetes_pod_phase"] = "Succeeded"
            static.append(finished)
        # Compose scrapes Prometheus itself on localhost:9090.
        for group in static:
            group["targets"] = [listen if t == "localhost:9090" else t for t in group["targets"]]
    return config


def loopback_rules(tmp_path: Path) -> Path:
    """The rules as written, but GridlineTargetDown's `for` cut to seconds (the test's bound)."""
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    for path in (PROMETHEUS_DIR / "rules").glob("*.yml"):
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in content["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "GridlineTargetDown":
                    rule["for"] = "2s"
        (rules / path.name).write_text(yaml.safe_dump(content, allow_unicode=True))
    return rules


class Prometheus:
    """A real Prometheus server scraping the platform under one of the scrape configurations."""

    def __init__(self, kind: str, ports: dict[str, int], stand_in: str, workdir: Path) -> None:
        assert PROMETHEUS is not None
        workdir.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        listen = f"127.0.0.1:{free_port()}"
        self.url = f"http://{listen}"
        config = loopback_config(kind, ports, stand_in, loopback_rules(workdir), listen)
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self._log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={listen}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """Stop the server and close its log."""
        stop_process(self.process)
        self._log.close()

    async def query(self, client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
        """An instant query's result; fails the test unless Prometheus answers success."""
        response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def value(self, client: httpx.AsyncClient, expr: str) -> float | None:
        """The value of a query answering one series, None for no series."""
        result = await self.query(client, expr)
        return float(result[0]["value"][1]) if result else None

    async def alerts(self, client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
        """The pending and firing alerts of one rule."""
        body = (await client.get(f"{self.url}/api/v1/alerts")).json()
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


@needs_prometheus
@pytest.mark.parametrize("kind", sorted(SCRAPE_CONFIGS))
def test_scrape_configs_and_rules_pass_promtool(kind: str, tmp_path: Path) -> None:
    assert PROMTOOL is not None
    ports = {name: 1000 + n for n, name in enumerate(SERVICES)}
    config = loopback_config(kind, ports, "127.0.0.1:999", loopback_rules(tmp_path),
                             "127.0.0.1:9090")  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    # The loopback form, since Debian's promtool is built without Kubernetes discovery; the
    # files' own relabelling is what it checks.
    checked = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.yml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout + checked.stderr
    rules = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rules
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, rules)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer) -> Iterator[Platform]:
    """The platform on embedded parts, for this module alone."""
    platform = start_platform(tmp_path_factory.mktemp("dashboards"), webhook)
    yield platform
    platform.stop()


def report_with(body: dict[str, Any], **changes: str) -> dict[str, Any]:
    """A copy of a report body with other field values."""
    return {**body, **changes}


async def drive_demo_load(platform: Platform, webhook: WebhookServer) -> None:
    """Reports of every source and outcome, an acknowledgement, an escalation, zero reports."""
    assert platform.endpoints is not None
    urls = {name: platform.endpoints.service_url(name) for name in SERVICES}
    reports = build_reports(24, seed=8)
    sources = {r.body["source"] for r in reports}
    assert sources == {"health_code_feed", "self_report", "cadre_visit", "checkpoint_scan"}
    assert any(r.expected_group is None for r in reports), "no report for community triage"
    placeable = [r.body for r in reports if r.expected_group]
    async with httpx.AsyncClient(timeout=15) as client:
        report_ids = []
        for report in reports:
            answer = await client.post(f"{urls['intake']}/v1/reports", json=report.body)
            assert answer.status_code == 202, answer.text
            report_ids.append(answer.json()["report_id"])
        # A repeat, a rejected record and a later report of an already reported person.
        repeated = await client.post(f"{urls['intake']}/v1/reports", json=placeable[0])
        assert repeated.json()["replayed"] is True
        rejected = await client.post(
            f"{urls['intake']}/v1/reports", json=report_with(placeable[1], phone="2381234567")
        )
        assert rejected.status_code == 422
        again = report_with(placeable[2], source_record_id="demo-8-again")
        assert (await client.post(f"{urls['intake']}/v1/reports", json=again)).status_code == 202

        # Report status asks assignment's Directory and escalation's Tasks over gRPC.
        for report_id in report_ids[:3]:
            await client.get(f"{urls['intake']}/v1/reports/{report_id}")

        # One task acknowledged in time; the others escalate past the short test deadline.
        def cadre_tasks() -> list[str]:
            return [
                r.body["task_id"] for r in webhook.received
                if r.body.get("kind") == "NOTIFICATION_KIND_TASK_ASSIGNED"
                and r.body.get("level") == common_pb2.CHAIN_LEVEL_CADRE
            ]  # fmt: skip

        async def noticed() -> bool:
            return bool(cadre_tasks())

        await eventually(noticed, within=20)
        task_id = cadre_tasks()[0]

        async def acknowledged() -> bool:
            answer = await client.post(
                f"{urls['escalation']}/v1/tasks/{task_id}:acknowledge",
                headers=bearer(platform.data_dir),
            )
            return answer.status_code == 200

        await eventually(acknowledged, within=10)

        # Zero reports: one before its due time (tomorrow's), one after it (yesterday's).
        today = now().date()
        for day in (today + timedelta(days=1), today - timedelta(days=1)):
            answer = await client.post(
                f"{urls['escalation']}/v1/zero-reports",
                json={"grid_id": "cm05-g02", "day": day.isoformat(), "arrivals": 0,
                      "under_control": 0, "abnormal": 0, "households_visited": 0},
                headers=bearer(platform.data_dir, Role.LIAISON, "cm05-g02"),
            )  # fmt: skip
            assert answer.status_code == 201, answer.text

    async with DirectoryClient(platform.endpoints.directory_grpc) as directory:
        await directory.placement(report_ids[0])

    async def escalated() -> bool:
        return any(r.body.get("kind") == "NOTIFICATION_KIND_ESCALATION" for r in webhook.received)

    await eventually(escalated, within=ACK_DEADLINE_SECONDS + 15)


async def lint_metrics(platform: Platform) -> None:
    """`promtool check metrics` on every service's exposition."""
    assert platform.endpoints is not None and PROMTOOL is not None
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SERVICES:
            exposition = (await client.get(f"{platform.endpoints.service_url(name)}/metrics")).text
            promtool = await asyncio.create_subprocess_exec(
                PROMTOOL, "check", "metrics", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await promtool.communicate(exposition.encode())
            assert promtool.returncode == 0, f"{name}: {output.decode()}"


# Targets each configuration must end with: the four services and the stand-in notify replica.
EXPECTED_UP = {("intake", 1), ("assignment", 1), ("escalation", 1), ("notify", 2)}


@dataclass
class Scraped:
    """Both Prometheus servers, scraping the platform after its demo load, and the stand-in."""

    servers: dict[str, Prometheus]
    stand_in: StandIn


@pytest.fixture(scope="module")
async def scraped(
    running: Platform, webhook: WebhookServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scraped]:
    """Both configurations' Prometheus scraping the platform and a stand-in notify replica,
    after the demo load (driven once for both) has been scraped a few times."""
    if PROMETHEUS is None or PROMTOOL is None:
        pytest.skip("the Debian package `prometheus` (prometheus and promtool) is not installed")
    assert running.endpoints is not None
    ports = {name: int(running.endpoints.service_url(name).rsplit(":", 1)[1]) for name in SERVICES}
    stand_in = StandIn()
    workdir = tmp_path_factory.mktemp("prometheus")
    servers = {
        kind: Prometheus(kind, ports, stand_in.address, workdir / kind) for kind in SCRAPE_CONFIGS
    }
    up = f'count by ({SERVICE_LABEL}) (up{{{SERVICE_LABEL}!=""}} == 1)'
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def scraping(prometheus: Prometheus) -> bool:
                try:
                    ready = await client.get(f"{prometheus.url}/-/ready")
                except httpx.HTTPError:
                    return False
                if ready.status_code != 200:
                    return False
                result = await prometheus.query(client, up)
                found = {(r["metric"].get(SERVICE_LABEL), int(r["value"][1])) for r in result}
                return found == EXPECTED_UP

            await asyncio.gather(*(eventually(partial(scraping, p), within=20)
                                   for p in servers.values()))  # fmt: skip
            await drive_demo_load(running, webhook)
            await lint_metrics(running)

            # Every series the panels read has a few scrapes after the load.
            async def scraped_after_load(prometheus: Prometheus) -> bool:
                lag = "min(count_over_time(gridline_consumer_lag_records[5s]))"
                return (await prometheus.value(client, lag) or 0) >= 4

            await asyncio.gather(*(eventually(partial(scraped_after_load, p), within=20)
                                   for p in servers.values()))  # fmt: skip
        yield Scraped(servers, stand_in)
    finally:
        stand_in.stop()
        for prometheus in servers.values():
            prometheus.stop()


@needs_prometheus
@pytest.mark.parametrize("kind", sorted(SCRAPE_CONFIGS))
async def test_every_panel_query_returns_data(scraped: Scraped, kind: str) -> None:
    prometheus = scraped.servers[kind]
    async with httpx.AsyncClient(timeout=10) as client:
        # A series born at the end of the load (an escalation) needs two scrapes for rate().
        empty: list[str] = []

        async def every_panel_has_data() -> bool:
            empty.clear()
            for where, expr in panel_queries():
                if not await prometheus.query(client, expr):
                    empty.append(f"{where}: {expr}")
            return not empty

        with contextlib.suppress(AssertionError):
            await eventually(every_panel_has_data, within=15)
        assert not empty, f"{kind}: panels without data:\n" + "\n".join(empty)

        # The variables' values: every service (the dashboards split by it) and a township.
        for where, metric, label in label_value_queries():
            answer = await client.get(
                f"{prometheus.url}/api/v1/label/{label}/values", params={"match[]": metric}
            )
            values = set(answer.json()["data"])
            assert values, f"{kind}: {where} has no values"
            if label == SERVICE_LABEL:
                assert values == set(SERVICES), (kind, where, values)
            if label == "township":
                # The demo county's one township, named by its office's group.
                assert "石洞镇联防联控办" in values, (kind, where, values)


@needs_prometheus
@pytest.mark.parametrize("kind", sorted(SCRAPE_CONFIGS))
async def test_alert_rules_evaluate_and_a_stopped_replica_fires_target_down(
    scraped: Scraped, kind: str
) -> None:
    prometheus = scraped.servers[kind]
    async with httpx.AsyncClient(timeout=10) as client:
        rules = (await client.get(f"{prometheus.url}/api/v1/rules")).json()["data"]
        evaluated = [rule for group in rules["groups"] for rule in group["rules"]]
        assert {r["name"] for r in evaluated} >= {"GridlineTargetDown", "GridlineServiceDown"}
        broken = {r["name"]: r.get("lastError") for r in evaluated if r["health"] != "ok"}
        assert not broken, (kind, broken)
        # Only the pods and replicas of the four services are targets (the Kubernetes job
        # leaves out pods without the scrape annotation and finished ones).
        targets = (await client.get(f"{prometheus.url}/api/v1/targets")).json()["data"]
        services = sorted(
            t["labels"].get(SERVICE_LABEL, t["labels"]["job"]) for t in targets["activeTargets"]
        )
        expected = sorted([*SERVICES, STAND_IN] + (["prometheus"] if kind == "compose" else []))
        assert services == expected, (kind, services)

        scraped.stand_in.stop()

        async def target_down() -> bool:
            firing = [a for a in await prometheus.alerts(client, "GridlineTargetDown")
                      if a["state"] == "firing"]  # fmt: skip
            return bool(firing)

        with contextlib.suppress(AssertionError):
            await eventually(target_down, within=20)
        alerts = await prometheus.alerts(client, "GridlineTargetDown")
        assert [
            (a["state"], a["labels"][SERVICE_LABEL], a["labels"]["instance"]) for a in alerts
        ] == [("firing", STAND_IN, scraped.stand_in.address)], (kind, alerts)
        assert alerts[0]["annotations"]["summary"] == (
            f"{STAND_IN} replica {scraped.stand_in.address} cannot be scraped"
        )
        # The other notify replica still answers: the service is not down.
        assert not await prometheus.alerts(client, "GridlineServiceDown"), kind
