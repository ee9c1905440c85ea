"""Quiet hours: a low-risk escalation to an office at night waits for the morning's one digest;
a high-risk one, and anything its sender did not mark, goes at once.

The notices are the ones escalation's deadline firing really stages (captured at its commit),
delivered by notify on real SQLite to its inbox, with a clock the test moves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import STAGED, Database
from gridline.settings import Settings
from gridline.timestamps import SHANGHAI
from services.escalation import storage as escalation_storage
from services.escalation.deadlines import fire_due
from services.escalation.policy import every_level_after
from services.notify import storage
from services.notify.budget import RobotBudget
from services.notify.channels.base import Outgoing
from services.notify.consumers import Deliverer, RetryPolicy
from services.notify.digests import Digester
from services.notify.quiet_hours import QuietHours
from services.notify.routing import build_router
from tests.escalation.conftest import new_task

TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
OFFICE_GROUP = "grp-township"
# One level up every hour: a task assigned at 20:00 reaches the township office at 23:00.
HOURLY = every_level_after(timedelta(hours=1))
NIGHT = QuietHours(time(22), time(7), frozenset({TOWNSHIP, common_pb2.CHAIN_LEVEL_COUNTY_OFFICE}))


def beijing(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of January 2026 in Beijing time, as UTC."""
    return datetime(2026, 1, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


async def chain(_node_id: str) -> list[common_pb2.Responsible]:
    """Every household under the same five levels, the township office named."""
    levels = (
        common_pb2.CHAIN_LEVEL_CADRE,
        common_pb2.CHAIN_LEVEL_LIAISON,
        common_pb2.CHAIN_LEVEL_COMMUNITY,
        TOWNSHIP,
        common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
    )
    return [
        common_pb2.Responsible(
            level=level,
            group_id=OFFICE_GROUP if level == TOWNSHIP else f"group-{level}",
            group_name="石洞镇联防联控办" if level == TOWNSHIP else "",
        )
        for level in levels
    ]


def capture(db: Database, topic: str, into: list[bytes]) -> None:
    """Take what the database's transactions stage on `topic` at their commit (no broker)."""

    async def hook(session: AsyncSession) -> None:
        into.extend(row["value"] for row in session.info.pop(STAGED, []) if row["topic"] == topic)

    db.before_commit.append(hook)


@dataclass
class Clock:
    """The moment the test says it is."""

    moment: datetime

    def __call__(self) -> datetime:
        return self.moment


# --- the rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "until"),
    [
        (beijing(20, 21, 59), None),
        (beijing(20, 22, 0), beijing(21, 7)),
        (beijing(20, 23, 0), beijing(21, 7)),
        (beijing(21, 3, 30), beijing(21, 7)),
        (beijing(21, 6, 59), beijing(21, 7)),
        (beijing(21, 7, 0), None),
        (beijing(21, 12, 0), None),
    ],
)
def test_the_night_runs_from_22_00_to_7_00_beijing_time(
    at: datetime, until: datetime | None
) -> None:
    assert NIGHT.ends(at) == until


def test_a_window_within_a_day_and_an_empty_one() -> None:
    noon = QuietHours(time(12), time(14), frozenset({TOWNSHIP}))
    assert noon.ends(beijing(20, 13)) == beijing(20, 14)
    assert noon.ends(beijing(20, 23)) is None
    assert QuietHours(time(7), time(7), frozenset({TOWNSHIP})).ends(beijing(20, 23)) is None


def test_only_a_notice_marked_deferrable_to_a_quiet_level_is_held() -> None:
    def notice(
        level: common_pb2.ChainLevel,
        deferrable: bool,
        kind: events_pb2.NotificationKind = events_pb2.NOTIFICATION_KIND_ESCALATION,
    ) -> events_pb2.Notification:
        recipient = common_pb2.Responsible(level=level, group_id="g")
        return events_pb2.Notification(kind=kind, recipient=recipient, deferrable=deferrable)

    night = beijing(20, 23)
    assert NIGHT.held_until(notice(TOWNSHIP, True), night) == beijing(21, 7)
    # Unmarked (every notice of a sender that does not know of quiet hours): at once.
    assert NIGHT.held_until(notice(TOWNSHIP, False), night) is None
    # Not an office with quiet hours.
    assert NIGHT.held_until(notice(common_pb2.CHAIN_LEVEL_CADRE, True), night) is None
    # A broken channel is never held, whoever marked it.
    broken = notice(TOWNSHIP, True, events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN)
    assert NIGHT.held_until(broken, night) is None


def test_unknown_quiet_levels_stop_the_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, notify_quiet_levels="township_office,township")
    with pytest.raises(ValueError, match="unknown level township"):
        QuietHours.from_settings(settings)
    assert QuietHours.from_settings(Settings(data_dir=tmp_path)).levels == NIGHT.levels


# --- escalation to notify -------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, notify_retry_initial_seconds=0.05)


@pytest.fixture
async def night_notices(
    settings: Settings,
) -> AsyncIterator[dict[str, list[events_pb2.Notification]]]:
    """Escalation's notices to the township office at 23:00, by the risk of their task: two
    low-risk tasks and one high-risk, all assigned at 20:00 and never acknowledged."""
    staged: list[bytes] = []
    async with Database(settings, "escalation", escalation_storage.TABLES) as db:
        capture(db, topics.NOTIFICATIONS, staged)
        tasks = {
            risk: [new_task(HOURLY, beijing(20, 20), origin_risk=risk) for _ in range(count)]
            for risk, count in ((common_pb2.RISK_LEVEL_LOW, 2), (common_pb2.RISK_LEVEL_HIGH, 1))
        }
        async with db.session() as session:
            session.add_all([task for made in tasks.values() for task in made])
        for hour in (21, 22, 23):
            await fire_due(db, chain, HOURLY, beijing(20, hour))
        notices = [events_pb2.Notification.FromString(value) for value in staged]
        yield {
            "low" if risk == common_pb2.RISK_LEVEL_LOW else "high": [
                n
                for n in notices
                if n.recipient.level == TOWNSHIP and n.task_id in {t.task_id for t in made}
            ]
            for risk, made in tasks.items()
        }


@pytest.fixture
async def notify_db(settings: Settings) -> AsyncIterator[tuple[Database, list[bytes]]]:
    """Notify's database; the delivery events its transactions stage, captured."""
    recorded: list[bytes] = []
    async with Database(settings, "notify", storage.TABLES) as db:
        capture(db, topics.DELIVERIES, recorded)
        yield db, recorded


def inbox(settings: Settings) -> list[dict[str, Any]]:
    path = settings.inbox_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def replica(
    settings: Settings, db: Database, redis: aioredis.Redis, clock: Callable[[], datetime]
) -> tuple[Deliverer, Digester]:
    """One notify replica's delivering parts, as its app makes them, on the test's clock."""
    router = build_router(settings)
    deliverer = Deliverer(
        router, db, RetryPolicy.from_settings(settings), RobotBudget(redis), clock=clock
    )
    return deliverer, Digester(deliverer, db)


async def test_a_low_risk_escalation_at_night_waits_for_one_morning_digest_a_high_risk_one_goes(
    settings: Settings,
    night_notices: dict[str, list[events_pb2.Notification]],
    notify_db: tuple[Database, list[bytes]],
    redis_client: aioredis.Redis,
) -> None:
    low, high = night_notices["low"], night_notices["high"]
    assert len(low) == 2 and len(high) == 1
    # Escalation marked only the low-risk ones as able to wait.
    assert [n.deferrable for n in low + high] == [True, True, False]

    db, recorded = notify_db
    clock = Clock(beijing(20, 23))
    deliverer, _ = replica(settings, db, redis_client, clock)
    await deliverer.deliver_all([*low, *high])
    # The high-risk one at once; the low-risk ones held, and settled so a replay sends nothing.
    assert [line["notification_id"] for line in inbox(settings)] == [high[0].notification_id]
    await deliverer.deliver_all([*low, *high])
    assert len(inbox(settings)) == 1
    async with db.session() as session:
        held = (await session.exec(select(storage.DigestEntry))).all()
        rows = [await storage.delivery(session, n.notification_id, "inbox") for n in low]
    assert {entry.held_until for entry in held} == {beijing(21, 7)}
    assert [row.outcome for row in rows if row] == [storage.HELD, storage.HELD]
    assert len(recorded) == 1  # only the high-risk delivery is recorded yet

    # A restart in the night: two new replicas on the same database, whose digesters find the
    # held entries; nothing goes before 7:00, and at 7:00 one digest, once, whoever sends it.
    clock.moment = beijing(21, 6, 59)
    replicas = [replica(settings, db, redis_client, clock)[1] for _ in range(2)]
    assert [await digester.flush() for digester in replicas] == [0, 0]
    clock.moment = beijing(21, 7)
    sent = await asyncio.gather(*(digester.flush() for digester in replicas))
    assert sorted(sent) == [0, 1]
    assert [await digester.flush() for digester in replicas] == [0, 0]

    lines = inbox(settings)
    assert len(lines) == 2
    digest = lines[1]
    assert digest["kind"] == "NOTIFICATION_KIND_DIGEST"
    assert digest["group_id"] == OFFICE_GROUP
    assert digest["title"].startswith("【夜间汇总】石洞镇联防联控办 2 条通知")
    assert "22:00至次日7:00" in digest["text"]
    for notice in low:
        assert notice.link in digest["text"]
    async with db.session() as session:
        assert (await session.exec(select(storage.DigestEntry))).all() == []
        rows = [await storage.delivery(session, n.notification_id, "inbox") for n in low]
    assert [row.outcome for row in rows if row] == [storage.DELIVERED, storage.DELIVERED]
    delivered = [events_pb2.DeliveryRecorded.FromString(r) for r in recorded]
    assert sorted(d.notification_id for d in delivered) == sorted(
        n.notification_id for n in [*low, *high]
    )


async def test_a_notice_quiet_hours_may_hold_is_claimed_before_its_call_and_a_crashed_one_not_held(
    settings: Settings,
    night_notices: dict[str, list[events_pb2.Notification]],
    notify_db: tuple[Database, list[bytes]],
    redis_client: aioredis.Redis,
) -> None:
    low, high = night_notices["low"], night_notices["high"]
    db, _ = notify_db
    clock = Clock(beijing(20, 21))  # the evening: nothing is held yet
    deliverer, _ = replica(settings, db, redis_client, clock)
    inbox_channel = deliverer.router.channel("inbox")
    assert inbox_channel is not None
    send = inbox_channel.send
    at_call: dict[str, str | None] = {}

    async def looking(outgoing: Outgoing) -> None:
        async with db.session() as session:
            row = await storage.delivery(session, outgoing.message.notification_id, "inbox")
        at_call[outgoing.message.notification_id] = row.outcome if row else None
        await send(outgoing)

    inbox_channel.send = looking  # type: ignore[method-assign]
    await deliverer.deliver_all([low[0], high[0]])
    # A replay at night must not hold a low-risk notice whose call may have gone out: its row
    # is there before the call. The high-risk one is never held: no row before its outcome.
    assert at_call == {low[0].notification_id: storage.SENDING, high[0].notification_id: None}

    # What a crash in the evening between the call and its outcome leaves, replayed at night:
    # sent again at once (the inbox drops the double), not held for the morning's digest.
    async with db.session() as session:
        await storage.open_deliveries(
            session,
            [
                {
                    "notification_id": low[1].notification_id,
                    "channel": "inbox",
                    "group_id": OFFICE_GROUP,
                    "outcome": storage.SENDING,
                    "attempts": 0,
                    "error": "",
                    "finished_at": clock.moment,
                }
            ],
        )
    clock.moment = beijing(20, 23)
    await deliverer.deliver_all([low[1]])
    async with db.session() as session:
        row = await storage.delivery(session, low[1].notification_id, "inbox")
        queued = (await session.exec(select(storage.DigestEntry))).all()
    assert row is not None and row.outcome == storage.DELIVERED
    assert queued == []
    assert low[1].notification_id in {line["notification_id"] for line in inbox(settings)}
