"""The demo stream: realistic reports posted to a running platform, and what became of them."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.grid import NodeKind
from services.intake.domain import id_check_char

# Where arrivals came from at the peak (GB/T 2260 codes, names, risk).
ORIGINS = (
    ("310115", "上海市浦东新区", "medium"),
    ("500103", "重庆市渝中区", "low"),
    ("510104", "成都市锦江区", "low"),
    ("440305", "深圳市南山区", "medium"),
    ("220102", "长春市南关区", "high"),
    ("110105", "北京市朝阳区", "low"),
    ("330106", "杭州市西湖区", "low"),
    ("610113", "西安市雁塔区", "high"),
)
SOURCES = (
    ("health_code_feed", 55),
    ("self_report", 20),
    ("cadre_visit", 20),
    ("checkpoint_scan", 5),
)
# Gansu region prefixes for the residents' own ID numbers.
ID_PREFIXES = ("620122", "620102", "620103", "620104", "620105")


@dataclass
class DemoReport:
    """One posted report and what the demo expects of it."""

    body: dict[str, Any]
    expected_group: str | None  # the cadre's group, None when the address should go to triage
    report_id: str = ""
    status: int = 0


@dataclass
class DemoResult:
    """What the stream did and what each stage reports."""

    reports: list[DemoReport] = field(default_factory=list)
    latencies: dict[str, float] = field(default_factory=dict)
    right_group: int = 0
    wrong_group: int = 0
    stages: dict[str, float] = field(default_factory=dict)


def _id_number(rng: random.Random) -> str:
    birth = datetime(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    first17 = f"{rng.choice(ID_PREFIXES)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def _written(rng: random.Random, address: str) -> str:
    """An address as people type it: with or without the county, full-width digits, spaces."""
    variant = rng.random()
    if variant < 0.3:
        address = address.removeprefix("皋兰县")
    elif variant < 0.4:
        address = address.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    elif variant < 0.5:
        address = address.replace("号楼", "号楼 ")
    return address


def _with_source_fields(body: dict[str, str], index: int) -> dict[str, Any]:
    """The fields intake requires of cadre visits and checkpoint scans (whose code gives risk)."""
    if body["source"] == "cadre_visit":
        return {**body, "cadre_id": f"demo-cadre-{index % 50:02d}"}
    if body["source"] == "checkpoint_scan":
        scan: dict[str, Any] = {k: v for k, v in body.items() if k != "origin_risk"}
        return {**scan, "checkpoint_id": "demo-toll-01", "health_code": "red"
                if body["origin_risk"] == "high" else "yellow"}  # fmt: skip
    return body


def _new_id_number(rng: random.Random, given: set[str]) -> str:
    """An ID number none of `given` has: two reports of one number are one person's case (one
    task, one notice), and a random draw repeats about once in twenty runs of a few thousand."""
    id_number = _id_number(rng)
    while id_number in given:
        id_number = _id_number(rng)
    given.add(id_number)
    return id_number


def build_reports(count: int, seed: int, unplaceable_share: float = 0.1) -> list[DemoReport]:
    """Deterministic demo reports over the demo county's households."""
    rng = random.Random(seed)
    county = generate()
    directory = Directory(county.nodes, county.people, county.groups)
    households = [n for n in county.nodes if n.kind is NodeKind.HOUSEHOLD]
    sources = [source for source, _ in SOURCES]
    weights = [weight for _, weight in SOURCES]
    reports = []
    given: set[str] = set()
    for i in range(count):
        code, origin, risk = rng.choice(ORIGINS)
        household = rng.choice(households)
        assert household.address is not None
        placeable = rng.random() >= unplaceable_share
        if placeable:
            address = _written(rng, household.address)
            expected: str | None = directory.chain(household.id)[0].group.id
        else:
            address = (
                f"皋兰县石洞镇{rng.choice(('城北', '东湾'))}社区新建平房{rng.randint(1, 99)}号"
            )
            expected = None
        surname = rng.choice("王李张刘陈杨赵马")
        body = {
            "source": rng.choices(sources, weights)[0],
            "source_record_id": f"demo-{seed}-{i:06d}",
            "name": surname + rng.choice(("伟", "芳", "建国", "秀英", "磊", "丽")),
            "id_number": _new_id_number(rng, given),
            "phone": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
            "origin_region_code": code,
            "origin_name": origin,
            "origin_risk": risk,
            "arrived_at": (datetime.now(UTC) - timedelta(hours=rng.randint(1, 48))).isoformat(),
            "address": address,
        }
        reports.append(DemoReport(body=_with_source_fields(body, i), expected_group=expected))
    return reports


async def _post_all(intake: str, reports: list[DemoReport], rate: float, console: Console) -> None:
    limit = asyncio.Semaphore(16)
    interval = 1.0 / rate if rate > 0 else 0.0
    async with httpx.AsyncClient(base_url=intake, timeout=10.0) as client:
        with Progress(console=console, transient=False) as progress:
            bar = progress.add_task("posting reports", total=len(reports))

            async def post(report: DemoReport) -> None:
                async with limit:
                    response = await client.post("/v1/reports", json=report.body)
                    report.status = response.status_code
                    if response.status_code == 202:
                        report.report_id = response.json()["report_id"]
                    progress.advance(bar)

            pending = []
            for report in reports:
                pending.append(asyncio.create_task(post(report)))
                if interval:
                    await asyncio.sleep(interval)
            await asyncio.gather(*pending)


def _read_inbox(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as inbox:
        return [json.loads(line) for line in inbox if line.strip()]


async def _metric_total(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def run_demo(
    endpoints: dict[str, str], count: int, rate: float, seed: int, console: Console, wait: float
) -> DemoResult:
    """Post the stream, wait for the deliveries, and gather each stage's counts."""
    result = DemoResult(reports=build_reports(count, seed))
    started = time.monotonic()
    await _post_all(endpoints["intake"], result.reports, rate, console)
    expected = {r.report_id: r for r in result.reports if r.report_id and r.expected_group}
    inbox = Path(endpoints["inbox"])
    deadline = time.monotonic() + wait
    while True:
        # A report's task notices go to its cadre and to its micro-grid leader: find the cadre's.
        cadre_notice: dict[str, dict[str, str]] = {}
        noticed: set[str] = set()
        for line in _read_inbox(inbox):
            report = expected.get(line["report_id"])
            if report is None or line["kind"] != "NOTIFICATION_KIND_TASK_ASSIGNED":
                continue
            noticed.add(line["report_id"])
            if line["group_id"] == report.expected_group:
                cadre_notice.setdefault(line["report_id"], line)
        if len(cadre_notice) >= len(expected) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    for report_id, line in cadre_notice.items():
        accepted = datetime.fromisoformat(line["report_accepted_at"])
        delivered = datetime.fromisoformat(line["delivered_at"])
        result.latencies[report_id] = (delivered - accepted).total_seconds()
    result.right_group = len(cadre_notice)
    result.wrong_group = len(noticed - set(cadre_notice))
    async with httpx.AsyncClient(timeout=5.0) as client:
        stages = {
            "intake: reports accepted": (
                endpoints["intake"], "gridline_intake_reports_total", {"outcome": "accepted"}),
            "assignment: placed on a household": (
                endpoints["assignment"], "gridline_assignment_placements_total",
                {"outcome": "household"}),
            "assignment: sent to community triage": (
                endpoints["assignment"], "gridline_assignment_placements_total",
                {"outcome": "triage"}),
            "escalation: tasks opened": (
                endpoints["escalation"], "gridline_escalation_tasks_opened_total", {}),
            "escalation: escalations raised": (
                endpoints["escalation"], "gridline_escalation_escalations_total", {}),
            "notify: deliveries": (
                endpoints["notify"], "gridline_notify_deliveries_total", {"outcome": "delivered"}),
        }  # fmt: skip
        for label, (url, name, labels) in stages.items():
            result.stages[label] = await _metric_total(client, url, name, **labels)
    result.stages["demo: seconds"] = round(time.monotonic() - started, 1)
    return result


def print_summary(result: DemoResult, console: Console) -> None:
    """The demo's summary: each stage's counts (since the platform started) and latencies."""
    posted = len(result.reports)
    accepted = sum(1 for r in result.reports if r.status == 202)
    placeable = sum(1 for r in result.reports if r.report_id and r.expected_group)
    table = Table(title="Demo summary")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_row("demo: reports posted", str(posted))
    table.add_row("demo: answered 202", str(accepted))
    for label, value in result.stages.items():
        table.add_row(label, f"{value:g}")
    table.add_row("demo: placeable reports delivered to their cadre's group",
                  f"{result.right_group}/{placeable}")  # fmt: skip
    table.add_row("demo: noticed, but not in their cadre's group", str(result.wrong_group))
    if result.latencies:
        values = sorted(result.latencies.values())
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        within = sum(1 for v in values if v <= 2.0)
        table.add_row("latency 202 → cadre group, median s", f"{statistics.median(values):.3f}")
        table.add_row("latency 202 → cadre group, p95 s", f"{p95:.3f}")
        table.add_row("latency 202 → cadre group, max s", f"{values[-1]:.3f}")
        table.add_row("delivered within 2 s", f"{within}/{len(values)}")
    console.print(table)
