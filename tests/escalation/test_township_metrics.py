"""Follow-up by township: open, overdue and escalated tasks carry the township of their grid."""

from __future__ import annotations

from datetime import timedelta

import grpc
from prometheus_client import REGISTRY

from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from services.assignment import demo_county
from services.assignment.directory import Directory
from services.assignment.metrics import township_label as placement_township
from services.escalation.deadlines import count_open_tasks, fire_due
from services.escalation.domain import TaskState
from services.escalation.metrics import township_label
from services.escalation.policy import every_level_after
from services.escalation.townships import Townships, known
from tests.escalation.conftest import START, Clock, new_task

POLICY = every_level_after(timedelta(minutes=30))
EAST, WEST = "东关镇联防联控办", "西岭乡联防联控办"


def chain(office: str) -> list[common_pb2.Responsible]:
    """A chain from the cadre up whose township office's group is `office`."""
    return [
        common_pb2.Responsible(level=level, group_id=f"grp-{level}-{office}", group_name=name)
        for level, name in (
            (common_pb2.CHAIN_LEVEL_CADRE, "网格员"),
            (common_pb2.CHAIN_LEVEL_LIAISON, "联络员群"),
            (common_pb2.CHAIN_LEVEL_COMMUNITY, "社区防控群"),
            (common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE, office),
            (common_pb2.CHAIN_LEVEL_COUNTY_OFFICE, "县联防联控办"),
        )
    ]


class Directory_:
    """Chains by grid, counting the lookups; `down` grids fail as an unreachable Directory."""

    def __init__(self, **chains: list[common_pb2.Responsible]) -> None:
        self.chains = chains or {"grid-east": chain(EAST), "grid-west": chain(WEST)}
        self.asked: list[str] = []
        self.down: set[str] = set()

    async def __call__(self, node_id: str) -> list[common_pb2.Responsible]:
        self.asked.append(node_id)
        if node_id in self.down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        return self.chains[node_id]


def sample(name: str, **labels: str) -> float:
    """The sum of the samples of `name` with these labels, whatever their other labels."""
    return sum(
        found.value
        for metric in REGISTRY.collect()
        for found in metric.samples
        if found.name == name and labels.items() <= found.labels.items()
    )


def test_a_chain_names_its_township_by_the_office_group() -> None:
    assert township_label(chain(EAST)) == EAST
    unnamed = [common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE, group_id="g")]
    assert township_label(unnamed) == "g"
    assert township_label(chain(EAST)[:3]) == "unknown"


async def test_open_and_overdue_tasks_by_township(db: Database) -> None:
    directory = Directory_()
    tasks = [new_task(POLICY, START - timedelta(hours=h)) for h in (0, 2, 2, 30)]
    for task, grid in zip(tasks, ("grid-east", "grid-east", "grid-west", "grid-gone"), strict=True):
        task.grid_id = grid
    tasks[1].state = TaskState.ACKNOWLEDGED  # past its deadline, but taken: not overdue
    directory.down.add("grid-gone")
    async with db.session() as session:
        session.add_all(tasks)

    counts = await count_open_tasks(db, START, POLICY, Townships(directory))

    assert counts == {(1, "lt_1h"): 1, (1, "1h_4h"): 2, (1, "1d_3d"): 1}
    assert sample("gridline_escalation_open_tasks", township=EAST) == 2
    assert sample("gridline_escalation_open_tasks", township=WEST, age="1h_4h") == 1
    assert sample("gridline_escalation_open_tasks", township="unknown", age="1d_3d") == 1
    # The first deadline is 30 minutes: the fresh east task is not overdue yet.
    assert sample("gridline_escalation_overdue_tasks", township=EAST) == 0
    assert sample("gridline_escalation_overdue_tasks", township=WEST) == 1
    assert sample("gridline_escalation_overdue_tasks", township="unknown") == 1
    assert known("grid-west") == WEST and known("grid-gone") == "unknown"


async def test_townships_are_asked_once_per_refresh_and_a_failure_is_asked_again() -> None:
    # Grids of this test alone: what a process learnt is kept for every caller (`known`).
    directory, moment = Directory_(north=chain(EAST), south=chain(WEST)), [0.0]
    townships = Townships(directory, refresh=600, clock=lambda: moment[0])
    directory.down.add("south")
    assert await townships.of({"north", "south"}) == {"north": EAST, "south": "unknown"}
    directory.down.clear()
    moment[0] = 10
    assert await townships.of({"north", "south"}) == {"north": EAST, "south": WEST}
    assert sorted(directory.asked) == ["north", "south", "south"]
    # A grid moved to another township by a directory import is seen after the refresh, and
    # one the Directory cannot answer for keeps the township it had.
    directory.chains["north"] = chain(WEST)
    directory.down.add("south")
    moment[0] = 700
    assert await townships.of({"north", "south"}) == {"north": WEST, "south": WEST}


async def test_escalations_carry_the_township_of_the_chain(db: Database, clock: Clock) -> None:
    directory = Directory_(**{"household-1": chain(EAST)})
    task = new_task(POLICY, clock())
    async with db.session() as session:
        session.add(task)
    before = sample("gridline_escalation_escalations_total", township=EAST, reason="overdue")
    clock.advance(timedelta(minutes=31))
    assert await fire_due(db, directory, POLICY, clock())
    after = sample("gridline_escalation_escalations_total", township=EAST, reason="overdue")
    assert after == before + 1


def test_placements_name_the_township_as_escalation_does() -> None:
    county = demo_county.generate(households=40)
    directory = Directory(county.nodes, county.people, county.groups)
    household = next(n for n in county.nodes if n.kind.value == "household")
    assert placement_township(directory, household.id) == f"{demo_county.TOWNSHIP_NAME}联防联控办"
    assert placement_township(directory, "no-such-node") == "unknown"
