"""The register (台账) of the demo county's busiest day: time to produce the `.xlsx` and the CSV
through the real route (HTTP on loopback, the real escalation and assignment apps, the persons
over gRPC) and through the functions alone.

The day's arrivals are written straight into the real tables (assignment's placements and
sealed persons, escalation's tasks), spread over the demo county's households, with sealed
names, ID numbers and phones, as intake and the consumers would have left them.

Run: `.venv/bin/python benchmarks/register_bench.py [--rows 2400] [--runs 5]`. Numbers go to
docs/benchmarks/register.md; this is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridline.contracts.v1 import common_pb2
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.personal import Sealer, mask_id_number, mask_name, mask_phone
from gridline.settings import Settings
from gridline.staff.identity import Staff
from gridline.staff.issuer import LocalIssuer
from gridline.staff.roles import Role
from gridline.timestamps import SHANGHAI, now
from services.assignment import demo_county, sealed
from services.assignment import storage as assignment_storage
from services.assignment.app import create_app as assignment_app
from services.assignment.directory import Directory
from services.assignment.grid import NodeKind
from services.escalation import storage as escalation_storage
from services.escalation.app import create_app as escalation_app
from services.escalation.domain import TaskState
from services.escalation.register import to_csv, to_xlsx
from services.escalation.register_flows import Scope, person_of, register_rows
from services.intake.domain import id_check_char
from tests.intake.local import local_settings, started

SURNAMES = "王李张刘陈杨赵黄周吴"
TRANSPORT = ("自驾", "火车", "飞机", "长途客车", "其他")


def _id_number(rng: random.Random) -> str:
    first = f"620102{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first += f"{rng.randint(0, 999):03d}"
    return first + id_check_char(first)


async def _arrivals(app_a: Any, app_e: Any, sealer: Sealer, rows: int, day: date) -> str:
    """`rows` arrivals of `day` on the demo county's households; the county's node id."""
    rng = random.Random(2022)
    county = demo_county.generate()
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    async with app_a.state.db.session() as session:
        await assignment_storage.replace_directory(session, directory)
    await app_a.state.follower.refresh()
    households = [n for n in county.nodes if n.kind is NodeKind.HOUSEHOLD]
    county_id = next(n.id for n in county.nodes if n.kind is NodeKind.COUNTY)
    start = datetime.combine(day, datetime.min.time(), SHANGHAI).astimezone(UTC)
    placements, persons, tasks = [], [], []
    for n in range(rows):
        home = rng.choice(households)
        grid = directory.ancestor(home.id, NodeKind.GRID)
        community = directory.ancestor(home.id, NodeKind.COMMUNITY)
        township = directory.ancestor(home.id, NodeKind.TOWNSHIP)
        assert grid and community and township
        cadre = directory.ancestor(home.id, NodeKind.UNIT)
        arrived = start + timedelta(seconds=rng.randint(0, 20 * 3600))
        name = rng.choice(SURNAMES) + "建国"
        id_number, phone = _id_number(rng), f"138{rng.randint(0, 99_999_999):08d}"
        report_id = f"r-{n:05d}"
        placements.append({
            "report_id": report_id, "task_id": f"k-{n:05d}", "case_id": report_id,
            "merged_into": "", "node_id": home.id, "grid_id": grid.id, "triage": False,
            "assignee_id": (cadre.responsible_id if cadre else "") or "", "holder_group_id": "",
            "holder_level": 0, "risk": 1, "measure_id": "", "policy_version": "",
            "placed_at": arrived,
        })  # fmt: skip
        persons.append({
            "report_id": report_id, "person_key": report_id, "key_id": "",
            "id_number_sealed": sealer.seal(id_number, "id_number"),
            "phone_sealed": sealer.seal(phone, "phone"), "name_sealed": sealer.seal(name, "name"),
            "name_masked": mask_name(name), "id_number_masked": mask_id_number(id_number),
            "phone_masked": mask_phone(phone), "origin_name": "上海市浦东新区",
            "arrived_at": arrived, "address": home.address or "",
            "transport": rng.choice(TRANSPORT),
            "received_at": arrived,
        })  # fmt: skip
        measured = n % 3 == 0
        tasks.append({
            "task_id": f"k-{n:05d}", "report_id": report_id, "node_id": home.id,
            "grid_id": grid.id, "community_id": community.id, "township_id": township.id,
            "triage": False, "state": TaskState.UNDER_CONTROL if measured else TaskState.ASSIGNED,
            "level": common_pb2.CHAIN_LEVEL_CADRE, "assignee_group_id": "g",
            "assignee_level": common_pb2.CHAIN_LEVEL_CADRE,
            "origin_risk": rng.choice((1, 1, 1, 2, 3)),
            "measure": "monitoring" if measured else None, "measure_name": "",
            "summary": "某* 自上海返回", "report_accepted_at": arrived, "report_source": 1,
            "created_at": arrived, "assigned_at": arrived, "step": 0, "version": 0,
            "measure_started_at": arrived if measured else None,
            "measure_ends_at": arrived + timedelta(days=14) if measured else None,
        })  # fmt: skip
    async with app_a.state.db.session() as session:
        await session.exec(insert(assignment_storage.PLACEMENT), params=placements)
        await session.exec(insert(sealed.SEALED_PERSON), params=persons)
    async with app_e.state.db.session() as session:
        await session.exec(insert(escalation_storage.TASK), params=tasks)
    return county_id


async def _timed(runs: int, work: Callable[[], Awaitable[object]]) -> dict[str, float]:
    """Median and worst of `runs` runs (after one warm-up), in seconds."""
    await work()
    times = []
    for _ in range(runs):
        started_at = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started_at)
    return {"median": statistics.median(times), "max": max(times)}


async def run(rows: int, runs: int) -> dict[str, dict[str, float]]:
    """Every measurement, by name."""
    data_dir = Path(tempfile.mkdtemp(prefix="register-bench-"))
    settings = local_settings(Settings(data_dir=data_dir))
    settings = settings.model_copy(
        update={"directory_target": f"127.0.0.1:{settings.directory_grpc_port}"}
    )
    day = now().astimezone(SHANGHAI).date()
    staff = Staff("bench", "县联防联控办值班员", Role.COUNTY_OFFICE, "")
    results: dict[str, dict[str, float]] = {}
    with pytest.MonkeyPatch.context() as patch:
        async with (
            started(assignment_app, settings, patch) as (_, assignment, _),
            started(escalation_app, settings, patch) as (_, escalation, _),
        ):
            county_id = await _arrivals(
                assignment, escalation, Sealer.from_settings(settings), rows, day
            )
            staff = Staff("bench", "县联防联控办值班员", Role.COUNTY_OFFICE, county_id)
            token = LocalIssuer(data_dir).mint(staff, audience="gridline", minutes=60, now=now())
            directory: DirectoryClient = escalation.state.directory
            db = escalation.state.db

            for reveal in (False, True):

                async def persons(ids: Any, reveal: bool = reveal) -> dict[str, Any]:
                    listed = await directory.persons(token, ids, reveal=reveal, purpose="压测")
                    return {p.report_id: person_of(p) for p in listed}

                async def rows_only(persons: Any = persons) -> list[Any]:
                    return await register_rows(db, persons, Scope("township_id", None), day, day)

                made = await rows_only()
                assert len(made) == rows, (len(made), rows)
                label = "明文" if reveal else "脱敏"
                results[f"函数：取数（任务+人员 gRPC，{label}）"] = await _timed(runs, rows_only)
                results[f"函数：写 .xlsx（{label}）"] = await _timed(
                    runs, partial(asyncio.to_thread, to_xlsx, made, "台账")
                )
                results[f"函数：写 CSV（{label}）"] = await _timed(
                    runs, partial(asyncio.to_thread, to_csv, made)
                )

            port = free_port()
            config = uvicorn.Config(escalation, host="127.0.0.1", port=port, lifespan="off",
                                    log_config=None, access_log=False)  # fmt: skip
            config.load()
            server = uvicorn.Server(config)
            server.lifespan = config.lifespan_class(config)  # "off": the apps are started above
            await server.startup()
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                for kind in ("xlsx", "csv"):
                    for reveal in (False, True):
                        form = {"start": day.isoformat(), "end": day.isoformat(), "format": kind}
                        if reveal:
                            form |= {"reveal": "1", "purpose": "压测"}

                        async def download(form: dict[str, str] = form) -> None:
                            answer = await http.post(
                                "/workbench/register/download", data=form, headers=headers
                            )
                            assert answer.status_code == 200, answer.text[:300]

                        label = "明文" if reveal else "脱敏"
                        results[f"HTTP 路由：下载 .{kind}（{label}）"] = await _timed(
                            runs, download
                        )
            await server.shutdown()
    return results


def main() -> None:
    """Run and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2400)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    results = asyncio.run(run(options.rows, options.runs))
    lines = [f"| 台账 {options.rows} 行 | 中位数 | 最慢 |", "| --- | ---: | ---: |"]
    for name, times in results.items():
        lines.append(f"| {name} | {times['median'] * 1000:.0f} ms | {times['max'] * 1000:.0f} ms |")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
