"""Every dashboard panel's query, asked of a real Prometheus scraping the running platform.

The platform takes a demo load that touches every panel (reports of each source, rejected and
repeated ones, placements and triage, an acknowledgement, an escalation, deliveries, zero
reports, gRPC calls); Prometheus scrapes the four services every second, and each panel's PromQL
must be valid and return data. `promtool` checks each service's `/metrics`, the Prometheus
config and the alert rules, whose evaluation must succeed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gridline.contracts.v1 import common_pb2
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port, stop_process
from gridline.timestamps import now
from gridline_cli.demo import build_reports
from gridline_cli.platform import SERVICES, Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import ACK_DEADLINE_SECONDS, start_platform
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="the Debian package `prometheus` (prometheus and promtool) is not installed",
)

# What Grafana puts in place of its variables; the scrape interval here is one second.
GRAFANA_VARIABLES = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "5m",
    "$job": ".+",
}


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


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard/panel/refId, expr) of every target, Grafana's variables substituted."""
    queries = []
    for name, dashboard in dashboards().items():
        for panel in panels_of(dashboard):
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                assert "$" not in expr, f"unsubstituted variable in {panel['title']}: {expr}"
                queries.append((f"{name} / {panel['title']} / {target['refId']}", expr))
    return queries


def test_every_dashboard_uses_the_provisioned_datasource() -> None:
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
        for panel in panels_of(board):
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            assert panel.get("description"), f"{name}: {panel['title']} says not what it shows"
            for used in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert used == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        for variable in board["templating"]["list"]:
            assert variable["datasource"]["uid"] == source["uid"]


@needs_prometheus
def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout + checked.stderr
    rules = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rules
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer) -> Iterator[Platform]:
    """The platform on embedded parts, for this module alone."""
    platform = start_platform(tmp_path_factory.mktemp("dashboards"), webhook)
    yield platform
    platform.stop()


class Prometheus:
    """A real Prometheus server scraping the platform's services every second."""

    def __init__(self, platform: Platform, workdir: Path) -> None:
        assert PROMETHEUS is not None and platform.endpoints is not None
        self.url = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(PROMETHEUS_DIR / "rules" / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": name,
                    "static_configs": [
                        {"targets": [platform.endpoints.service_url(name).removeprefix("http://")]}
                    ],
                }
                for name in SERVICES
            ],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self._log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
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
            answer = await client.post(f"{urls['escalation']}/v1/tasks/{task_id}:acknowledge")
            return answer.status_code == 200

        await eventually(acknowledged, within=10)

        # Zero reports: one before its due time (tomorrow's), one after it (yesterday's).
        today = now().date()
        for day in (today + timedelta(days=1), today - timedelta(days=1)):
            answer = await client.post(
                f"{urls['escalation']}/v1/zero-reports",
                json={"grid_id": "cm05-g02", "day": day.isoformat(), "arrivals": 0,
                      "under_control": 0, "abnormal": 0, "households_visited": 0},
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


@needs_prometheus
async def test_every_panel_query_returns_data_from_a_real_prometheus(
    running: Platform, webhook: WebhookServer, tmp_path: Path
) -> None:
    prometheus = Prometheus(running, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def scraping() -> bool:
                try:
                    ready = await client.get(f"{prometheus.url}/-/ready")
                except httpx.HTTPError:
                    return False
                if ready.status_code != 200:
                    return False
                up = await prometheus.query(client, "sum(up)")
                return bool(up) and up[0]["value"][1] == str(len(SERVICES))

            await eventually(scraping, within=20)
            await drive_demo_load(running, webhook)
            await lint_metrics(running)

            # Every series the panels read has a few scrapes after the load.
            async def scraped_after_load() -> bool:
                result = await prometheus.query(
                    client, "min(count_over_time(gridline_consumer_lag_records[5s]))"
                )
                return bool(result) and float(result[0]["value"][1]) >= 4

            await eventually(scraped_after_load, within=20)

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
            assert not empty, "panels without data:\n" + "\n".join(empty)

            rules = (await client.get(f"{prometheus.url}/api/v1/rules")).json()["data"]
            evaluated = [rule for group in rules["groups"] for rule in group["rules"]]
            assert evaluated
            broken = {r["name"]: r.get("lastError") for r in evaluated if r["health"] != "ok"}
            assert not broken, broken
    finally:
        prometheus.stop()


def test_panel_queries_name_only_declared_metrics() -> None:
    declared = set()
    for path in [ROOT / "gridline" / "metrics.py", *ROOT.glob("services/*/metrics.py")]:
        declared |= set(re.findall(r'"(gridline_[a-z_]+)"', path.read_text()))
    histograms = {f"{name}_{suffix}" for name in declared for suffix in ("bucket", "sum", "count")}
    for where, expr in panel_queries():
        used = set(re.findall(r"\bgridline_[a-z_]+", expr))
        assert used <= declared | histograms, (where, used - declared - histograms)
