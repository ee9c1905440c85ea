"""What both fuzz modules share: the started apps, things of the county worth aiming at, and a
way to drive hypothesis (which is synchronous) against apps that live on the test's loop.

The apps are the access matrix's (`tests.staff.test_access_matrix.ctx`): assignment, escalation
and notify started once per module on real SQLite, with the local issuer and the small county
of `tests.staff.county`. Hypothesis runs in a worker thread; each request it makes is handed to
the test's event loop, where the apps' databases, Redis and gRPC clients live, and waited for
with a bound: an answer that does not come is a hang, and fails the test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings

from gridline.staff.roles import Role
from services.escalation.domain import TaskState
from tests.staff.county import A, B, C
from tests.staff.test_access_matrix import (
    Ctx,
    ctx,  # noqa: F401  (the started apps: a module-scoped fixture, re-exported here)
    reveal,
)
from tests.staff.tokens import bearer

T = TypeVar("T")

# Every call must answer within this; one that does not is a hang (the "no hang").
CALL_TIMEOUT_SECONDS = 5.0

# Given (e.g. 10) to fuzz longer than CI's bounded run, on a machine with time to spare.
SCALE = float(os.environ.get("GRIDLINE_TEST_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings for a bounded, repeatable run: the same examples on every run and
    machine (derandomized, no example database), no per-example deadline (a slow shared CI
    machine is not a finding; the call timeout is), and no shrinking (a failure reports the
    request as sent, and shrinking against live apps could take minutes). `max_examples` is
    scaled by GRIDLINE_TEST_FUZZ_SCALE."""
    return settings(
        max_examples=max(1, round(max_examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@dataclass(frozen=True)
class OnLoop:
    """Runs coroutines on the test's event loop from hypothesis's worker thread."""

    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """The coroutine's result; AssertionError (and the coroutine cancelled) if it has none
        within `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise AssertionError(f"no answer within {timeout} s: a hang") from None


@pytest.fixture(scope="module")
async def on_loop() -> OnLoop:
    return OnLoop(asyncio.get_running_loop())


# Nodes of `tests.staff.county`, every level from the county down to households.
NODES = ("c", "t1", "t2", "cmA", "cmB", "cmC", "gA", "gB", "gC", "bA", "uA", "uA2", "hA1", "hA3")


@dataclass(frozen=True)
class Known:
    """Identifiers that exist in the started county, so that fuzzed requests also reach the
    code behind "not found": a task in every state in each of three communities; a report
    with sealed personal data; the people, nodes and chat groups of the directory; a
    notification."""

    task_ids: tuple[str, ...]
    report_ids: tuple[str, ...]
    person_ids: tuple[str, ...]
    node_ids: tuple[str, ...]
    group_ids: tuple[str, ...]
    notification_ids: tuple[str, ...]

    def for_name(self, name: str) -> tuple[str, ...]:
        """The identifiers a field or parameter of this name could take (all, for another)."""
        by_name = {
            "task_id": self.task_ids,
            "report_id": self.report_ids,
            "person_id": self.person_ids,
            "backup_id": self.person_ids,
            "node_id": self.node_ids,
            "household_id": self.node_ids,
            "grid_id": self.node_ids,
            "group_id": self.group_ids,
            "notification_id": self.notification_ids,
        }
        return by_name.get(name) or tuple(dict.fromkeys(sum(by_name.values(), ())))


@pytest.fixture(scope="module")
async def known(ctx: Ctx) -> Known:  # noqa: F811  (the fixture re-exported above)
    task_ids = []
    for spot in (A, B, C):
        for state in TaskState:
            measure = "quarantine" if state is TaskState.UNDER_CONTROL else None
            task_ids.append(await ctx.task(spot, state, measure))
    # The access matrix's reveal places a report of household hA1 with sealed personal data.
    answer, report_id = await reveal(ctx, bearer(ctx.data_dir, Role.CADRE, "gA"))
    assert answer.status_code == 200, answer.text
    task_reports = [f"r-{task_id}" for task_id in task_ids[:3]]
    return Known(
        task_ids=tuple(task_ids),
        report_ids=(report_id, *task_reports),
        person_ids=("p-county", "p-t1", "p-cmA", "p-lA", "p-cadreA", "p-cadreA2", "p-cadreB"),
        node_ids=NODES,
        group_ids=("grp-p-cadreA", "grp-p-cadreA2", "grp-p-cmA", "grp-p-county"),
        notification_ids=("n-1",),
    )
