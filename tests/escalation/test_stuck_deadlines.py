"""One task that cannot go up never holds up the others: it is set aside, counted and logged.

The chains come from the real Directory servicer over loopback gRPC, so an unknown node is the
NOT_FOUND the running service answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from gridline.bus import topics
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.settings import Settings
from services.escalation import deadlines, storage
from services.escalation.deadlines import DeadlineWatcher, fire_due
from services.escalation.policy import every_level_after
from services.escalation.retries import RETRY_MAX, RETRY_MIN
from tests.assignment.serving import directory_server
from tests.escalation.conftest import Clock, new_task
from tests.escalation.local import HOUSEHOLD, county, escalation_db, staged
from tests.helpers import database_settings

EVERY_30 = every_level_after(timedelta(minutes=30))
GONE = "h-gone"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    # Not async: the PostgreSQL database is made with a loop of its own, before the test's.
    return database_settings(request, Settings(data_dir=tmp_path))


@pytest.fixture
async def db(db_settings: Settings) -> AsyncIterator[Database]:
    async with escalation_db(db_settings) as database:
        yield database


@pytest.fixture
async def directory(tmp_path: Path) -> AsyncIterator[DirectoryClient]:
    """A client of the real Directory over the small county (no node `GONE`)."""
    async with (
        directory_server(county(), Settings(data_dir=tmp_path / "assignment")) as target,
        DirectoryClient(target, timeout=2.0, attempts=1) as client,
    ):
        yield client


async def store(db: Database, clock: Clock, node_ids: list[str]) -> list[storage.Task]:
    """A task at each node, assigned now, oldest first (one second apart)."""
    tasks = []
    for n, node_id in enumerate(node_ids):
        task = new_task(EVERY_30, clock() + timedelta(seconds=n))
        task.node_id = node_id
        tasks.append(task)
    async with db.session() as session:
        session.add_all(tasks)
    return tasks


async def raised(db: Database, task_id: str) -> int:
    async with db.session() as session:
        return len(await storage.escalations_of(session, task_id))


async def deadline_of(db: Database, task_id: str) -> tuple[int, object]:
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
    assert task is not None
    return task.step, task.deadline_at


def set_aside(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "gridline_escalation_deadlines_set_aside_total", {"reason": reason}
    )
    return value or 0.0


async def test_with_a_task_at_a_node_not_in_the_directory_every_other_deadline_fires(
    db: Database, directory: DirectoryClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The unknown nodes' tasks are the oldest and fill whole batches: the pass goes past them.
    monkeypatch.setattr(deadlines, "_BATCH", 2)
    stuck = await store(db, clock, [GONE, GONE, "h-also-gone"])
    fine = await store(db, clock, [HOUSEHOLD, HOUSEHOLD, HOUSEHOLD])
    before = set_aside("node_unknown")
    moment = clock.advance(timedelta(minutes=31))
    watcher = DeadlineWatcher(db, directory.chain, EVERY_30, tick=60, clock=clock)

    with capture_logs() as logs:
        await watcher.run_pass()

    assert [await raised(db, t.task_id) for t in fine] == [1, 1, 1]  # each told its liaison
    assert await staged(db, topics.ESCALATIONS) == 3
    assert await staged(db, topics.NOTIFICATIONS) == 3
    assert [await raised(db, t.task_id) for t in stuck] == [0, 0, 0]
    # Set aside: the step is kept, the next try comes after as long as it has been overdue
    # (about a minute), each is counted and named.
    for task in stuck:
        assert task.deadline_at is not None
        overdue = moment - task.deadline_at
        assert await deadline_of(db, task.task_id) == (0, moment + overdue)
    assert set_aside("node_unknown") - before == 3
    warnings = [e for e in logs if e["event"] == "deadline set aside"]
    assert {(e["task_id"], e["reason"], e["log_level"]) for e in warnings} == {
        (t.task_id, "node_unknown", "warning") for t in stuck
    }
    assert {e["error"] for e in warnings} == {"NOT_FOUND"}

    # Until its node is known it keeps coming back, less and less often, without holding
    # up anyone; the fine tasks' next steps still fire on time.
    again = clock.advance(timedelta(minutes=2))
    await watcher.run_pass()
    first_due = stuck[0].deadline_at
    assert first_due is not None and again - first_due == timedelta(minutes=3)
    assert await deadline_of(db, stuck[0].task_id) == (0, again + timedelta(minutes=3))
    assert set_aside("node_unknown") - before == 6
    clock.moment = moment + timedelta(minutes=30)
    await watcher.run_pass()
    assert [await raised(db, t.task_id) for t in fine] == [2, 2, 2]


async def test_a_task_whose_step_cannot_be_computed_is_set_aside_for_the_longest_wait(
    db: Database, directory: DirectoryClient, clock: Clock
) -> None:
    broken, fine = await store(db, clock, [HOUSEHOLD, HOUSEHOLD])
    async with db.session() as session:
        task = await storage.get_task(session, broken.task_id)
        assert task is not None
        task.plan = [{"after": "half an hour"}]  # a plan written by no version of escalation
        session.add(task)
    before = set_aside("fire_failed")
    moment = clock.advance(timedelta(minutes=31))

    fired = await fire_due(db, directory.chain, EVERY_30, moment)

    assert len(fired) == 1 and await raised(db, fine.task_id) == 1
    assert await deadline_of(db, broken.task_id) == (0, moment + RETRY_MAX)
    assert set_aside("fire_failed") - before == 1
    # Nothing of the broken task was staged.
    assert await staged(db, topics.NOTIFICATIONS) == 1


async def test_when_the_directory_cannot_be_reached_due_tasks_stay_due(
    db: Database, clock: Clock
) -> None:
    (task,) = await store(db, clock, [HOUSEHOLD])
    moment = clock.advance(timedelta(minutes=31))
    before = sum(set_aside(r) for r in ("node_unknown", "lookup_failed", "fire_failed"))
    async with DirectoryClient(f"127.0.0.1:{free_port()}", timeout=0.5, attempts=1) as nobody:
        assert await fire_due(db, nobody.chain, EVERY_30, moment) == []
    # An outage is no fault of the task: it fires as soon as the Directory answers again.
    assert await deadline_of(db, task.task_id) == (0, task.deadline_at)
    assert sum(set_aside(r) for r in ("node_unknown", "lookup_failed", "fire_failed")) == before


def test_tries_of_a_set_aside_step_space_out_within_bounds(clock: Clock) -> None:
    due = clock()
    assert deadlines.retry_at(due, due) == due + RETRY_MIN
    late = due + timedelta(minutes=5)
    assert deadlines.retry_at(due, late) == late + timedelta(minutes=5)
    much_later = due + timedelta(days=1)
    assert deadlines.retry_at(due, much_later) == much_later + RETRY_MAX
    assert deadlines.retry_at(None, due) == due + RETRY_MAX
