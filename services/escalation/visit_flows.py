"""Household visits and visit rounds: recording them, a round's coverage, its deadline timer.

A visit is taken for a household the Directory knows, under the staff member's node, and
names the person who recorded it. A round's row is its timer, as a task's deadline is: the
watcher reads the rounds whose deadline passed, asks the Directory for their households and
chains with no transaction open, then locks them (SKIP LOCKED), counts the households reached
and, below full coverage, raises the round once to the office above its node. A round whose
node the Directory no longer knows is tried again later (`retries.retry_at`); one whose
Directory cannot be reached stays due for the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import grpc
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.ids import derived_id, new_id
from gridline.logging import get_logger
from gridline.staff.identity import Place, Staff
from gridline.timestamps import now, to_timestamp
from gridline.workers import PeriodicWorker
from services.escalation import metrics, storage
from services.escalation.chains import ChainLookup, described, for_one_pass, look_up, unreachable
from services.escalation.retries import retry_at
from services.escalation.visits import (
    ABOVE,
    PLACE_FIELD,
    REACHED,
    Outcome,
    RoundLevel,
    VisitRefused,
    check_round_time,
    check_runs_rounds,
    check_visit_time,
    covered,
    round_level,
    short_round_text,
)

log = get_logger(__name__)

# Where a household or a grid/community sits, asked of the Directory: grpc NOT_FOUND for an id
# it lacks (for households: for an id that is no household).
PlaceLookup = Callable[[str], Awaitable[Place]]

ROUND_SHORT_REASON = "入户排摸轮次截止时未做到全覆盖"

# Rounds checked per transaction, and Directory lookups in flight at once.
_BATCH = 200
_AT_ONCE = 16


class HouseholdCounts(Protocol):
    """How many households the Directory has under grids and communities."""

    async def of(self, nodes: Collection[tuple[RoundLevel, str]]) -> dict[str, int]:
        """The household count of each node, by node id (0 for a node without any)."""


class DirectoryHouseholds:
    """Household counts from the Directory: its per-grid counts, summed over a community's
    grids (which community a grid is in is asked once per grid and remembered)."""

    def __init__(self, directory: DirectoryClient) -> None:
        self._directory = directory
        self._community_of: dict[str, str] = {}

    async def of(self, nodes: Collection[tuple[RoundLevel, str]]) -> dict[str, int]:
        """The household count of each grid or community."""
        grids = await self._directory.grid_households()
        if any(level is RoundLevel.COMMUNITY for level, _ in nodes):
            await self._learn_communities([g for g in grids if g not in self._community_of])
        found: dict[str, int] = {}
        for level, node_id in nodes:
            if level is RoundLevel.GRID:
                found[node_id] = grids.get(node_id, 0)
            else:
                found[node_id] = sum(
                    n for g, n in grids.items() if self._community_of.get(g) == node_id
                )
        return found

    async def _learn_communities(self, grid_ids: list[str]) -> None:
        for first in range(0, len(grid_ids), _AT_ONCE):
            part = grid_ids[first : first + _AT_ONCE]
            places = await asyncio.gather(*map(self._directory.place, part))
            for grid_id, place in zip(part, places, strict=True):
                self._community_of[grid_id] = place.community_id


async def locate(place_of: PlaceLookup, node_id: str, field: str, missing: str) -> Place:
    """Where a node sits; VisitRefused (`field`, the `missing` message) when the Directory has no
    such node. Its other failures (unreachable) are raised as they are."""
    try:
        return await place_of(node_id)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise VisitRefused(field, missing) from error
        raise


def no_household(household_id: str) -> str:
    """The refusal of a visit to a household the Directory does not have."""
    return f"目录中没有编号为“{household_id}”的户，请核对户编号（须为具体的户，不是楼栋或单元）"


@dataclass(frozen=True)
class Visit:
    """A visit as a staff member reports it."""

    household_id: str
    outcome: Outcome
    visited_at: datetime
    note: str = ""
    # The client's id of the entry: a retry of the same entry records nothing twice.
    submission_id: str = ""


async def record_visit(
    db: Database,
    visit: Visit,
    place: Place,
    staff: Staff,
    *,
    channel: str,
    moment: datetime,
) -> storage.HouseholdVisit:
    """Store a visit to a household at `place` (the Directory's answer), recorded by `staff`.

    Forbidden unless the household lies under the staff member's node; VisitRefused for a time
    that cannot be. The same submission from the same person again returns the first record.
    """
    staff.require_scope(place, "该户")
    check_visit_time(visit.visited_at, moment)
    visit_id = (
        derived_id("household-visit", staff.subject, visit.submission_id)
        if visit.submission_id
        else new_id()
    )
    row = storage.HouseholdVisit(
        visit_id=visit_id, household_id=visit.household_id, grid_id=place.grid_id,
        community_id=place.community_id, township_id=place.township_id,
        outcome=visit.outcome.value, note=visit.note, visited_at=visit.visited_at,
        visitor=staff.audit_name, visitor_subject=staff.subject, channel=channel,
        recorded_at=moment,
    )  # fmt: skip
    # A retry racing its first try: the row the first one stored stands.
    with contextlib.suppress(IntegrityError):
        async with db.session() as session:
            if await session.get(storage.HouseholdVisit, visit_id) is None:
                session.add(row)
                return row
    async with db.session() as session:
        stored = await session.get(storage.HouseholdVisit, visit_id)
    if stored is None:
        raise RuntimeError(f"household visit {visit_id} neither stored nor found")
    return stored


async def open_round(
    db: Database,
    *,
    name: str,
    node_id: str,
    place: Place,
    starts_at: datetime,
    deadline_at: datetime,
    staff: Staff,
    moment: datetime,
) -> storage.VisitRound:
    """Open a round over the grid or community `node_id` (at `place`, the Directory's answer).

    Forbidden unless the staff member runs rounds and the node lies under their node;
    VisitRefused for a node that is neither grid nor community or for times that cannot be.
    """
    check_runs_rounds(staff)
    level = round_level(place, node_id)
    staff.require_scope(place, "该网格或社区")
    check_round_time(starts_at, deadline_at, moment)
    row = storage.VisitRound(
        round_id=new_id(), name=name, node_id=node_id, node_level=level.value,
        grid_id=place.grid_id, community_id=place.community_id, township_id=place.township_id,
        starts_at=starts_at, deadline_at=deadline_at, created_by=staff.audit_name,
        created_at=moment, next_at=deadline_at,
    )  # fmt: skip
    async with db.session() as session:
        session.add(row)
    return row


async def reached(db: Database, visit_round: storage.VisitRound) -> int:
    """The households of a round's node reached between its start and its deadline."""
    field = PLACE_FIELD[RoundLevel(visit_round.node_level)]
    async with db.session() as session:
        found = await storage.households_reached(
            session, visit_round.starts_at, visit_round.deadline_at, REACHED, field,
            visit_round.node_id,
        )  # fmt: skip
    return found.get(visit_round.node_id, 0)


async def check_due_rounds(
    db: Database, counts: HouseholdCounts, chain_of: ChainLookup, moment: datetime
) -> list[str]:
    """Check a batch of rounds whose deadline passed by `moment`; the ids of those checked.

    Each is checked once: its coverage is stored, and a round short of its households raises one
    escalation (its id derived from the round) to the office above its node.
    """
    async with db.session() as session:
        due = await storage.due_rounds(session, moment, _BATCH)
    if not due:
        return []
    # Asked with no transaction open; the Directory unreachable ends the pass (the next tries).
    households = await counts.of({(RoundLevel(r.node_level), r.node_id) for r in due})
    found = await look_up(chain_of, {r.node_id for r in due})
    checked: list[str] = []
    async with db.session() as session:
        for visit_round in await storage.lock_due_rounds(
            session, [r.round_id for r in due], moment
        ):
            chain = found.chains.get(visit_round.node_id)
            if chain is None:
                error = found.failed.get(visit_round.node_id)
                if error is not None and not unreachable(error):
                    visit_round.next_at = retry_at(visit_round.deadline_at, moment)
                    session.add(visit_round)
                    log.warning("visit round set aside", round_id=visit_round.round_id,
                                node_id=visit_round.node_id, error=described(error),
                                retry_at=visit_round.next_at.isoformat())  # fmt: skip
                continue
            level = RoundLevel(visit_round.node_level)
            total = households.get(visit_round.node_id, 0)
            done = await storage.households_reached(
                session, visit_round.starts_at, visit_round.deadline_at, REACHED,
                PLACE_FIELD[level], visit_round.node_id,
            )  # fmt: skip
            visit_round.households, visit_round.visited = total, done.get(visit_round.node_id, 0)
            visit_round.next_at = None
            if not covered(visit_round.visited, total):
                visit_round.escalated = _raise_short(session, visit_round, level, chain, moment)
            session.add(visit_round)
            checked.append(visit_round.round_id)
    return checked


def _raise_short(
    session: AsyncSession,
    visit_round: storage.VisitRound,
    level: RoundLevel,
    chain: list[common_pb2.Responsible],
    moment: datetime,
) -> bool:
    """Stage the escalation and notice of a round short at its deadline; False when the chain
    has no office above the node."""
    recipient = next((r for r in chain if r.level == ABOVE[level]), None)
    if recipient is None:
        log.warning("visit round short, no office above its node", round_id=visit_round.round_id,
                    node_id=visit_round.node_id)  # fmt: skip
        return False
    grid_key = visit_round.grid_id or visit_round.node_id
    raised = events_pb2.EscalationRaised(
        escalation_id=derived_id("visit-round-short", visit_round.round_id),
        level=recipient.level, reason=ROUND_SHORT_REASON, grid_id=grid_key, recipient=recipient,
        raised_at=to_timestamp(moment),
    )  # fmt: skip
    stage(
        session,
        topics.ESCALATIONS,
        Envelope(event_id=raised.escalation_id, key=grid_key, message=raised),
    )
    title, body = short_round_text(
        visit_round.name, level, visit_round.deadline_at, visit_round.visited or 0,
        visit_round.households or 0,
    )  # fmt: skip
    notice = build_notice(
        derived_id("visit-round-short", visit_round.round_id, "notice"),
        events_pb2.NOTIFICATION_KIND_ESCALATION, recipient, title=title, body=body, at=moment,
    )  # fmt: skip
    stage(session, topics.NOTIFICATIONS, notice_envelope(notice))
    metrics.ESCALATIONS.labels(
        metrics.level_label(recipient.level), "visit_round_short", metrics.township_label(chain)
    ).inc()
    return True


class RoundWatcher(PeriodicWorker):
    """Checks the rounds whose deadline passed every `tick` seconds while its context is open."""

    def __init__(
        self,
        db: Database,
        counts: HouseholdCounts,
        chain_of: ChainLookup,
        tick: float,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._db, self._counts, self._chain_of, self._clock = db, counts, chain_of, clock
        super().__init__(tick)

    name = "visit-rounds"

    async def run_pass(self) -> None:
        """Check due rounds batch by batch while there are."""
        chain_of = for_one_pass(self._chain_of)
        while not self.stopping and await check_due_rounds(
            self._db, self._counts, chain_of, self._clock()
        ):
            pass


@dataclass(frozen=True)
class Progress:
    """Where a round stands: households reached and households (None while the Directory's
    count cannot be had), as checked at its deadline or, while it runs, now."""

    visit_round: storage.VisitRound
    visited: int
    households: int | None


async def progress(
    db: Database, counts: HouseholdCounts, rounds: Sequence[storage.VisitRound]
) -> list[Progress]:
    """The progress of each round; the running ones' households asked of the Directory."""
    running = [r for r in rounds if r.next_at is not None or r.visited is None]
    households: Mapping[str, int] | None = {}
    if running:
        try:
            households = await counts.of({(RoundLevel(r.node_level), r.node_id) for r in running})
        except grpc.aio.AioRpcError as exc:
            log.warning("household counts unavailable, round coverage left unknown",
                        code=exc.code().name)  # fmt: skip
            households = None
    found = []
    for visit_round in rounds:
        if visit_round in running:
            total = None if households is None else households.get(visit_round.node_id, 0)
            found.append(Progress(visit_round, await reached(db, visit_round), total))
        else:
            found.append(Progress(visit_round, visit_round.visited or 0, visit_round.households))
    return found
