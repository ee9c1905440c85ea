"""Check-ins during a measure: fevers told at once (one notice per group), missed ones late."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta

import httpx
import pytest
from fastapi import FastAPI

from gridline import problems
from gridline.bus import topics
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from gridline.timestamps import SHANGHAI, now
from services.escalation import check_in_flows, routes, storage
from services.escalation.check_ins import (
    CheckInConfig,
    CheckInRefused,
    CheckInRules,
    HealthCentre,
    parse_sms,
)
from services.escalation.domain import Action, Measure
from services.escalation.flows import Change, change_task
from services.escalation.measures import FollowUp, check_in_times, window
from services.escalation.policy import every_level_after
from tests.assignment.support import LINKS
from tests.escalation.conftest import CHAIN, Clock, new_task, static_chain
from tests.escalation.records import published

POLICY = every_level_after(timedelta(minutes=30))
TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
TOWNSHIP_GROUP = f"group-{common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE}"
COMMUNITY_GROUP = f"group-{common_pb2.CHAIN_LEVEL_COMMUNITY}"
RULES = CheckInRules(
    CheckInConfig(
        health_centres={TOWNSHIP_GROUP: HealthCentre(group_id="hc-1", group_name="卫生院")}
    )
)


def test_sms_replies_are_read_or_refused_with_the_reason() -> None:
    assert parse_sms("k7m2q9xr 36.8") == parse_sms("K7M2Q9XR 36.8℃")
    # As a Chinese keyboard types it: full-width letters, digits and comma.
    assert parse_sms("Ｋ７Ｍ２Ｑ９ＸＲ　３６．８") == parse_sms("K7M2Q9XR 36.8")
    reply = parse_sms("K7M2Q9XR 37.5 咳嗽、乏力")
    assert (reply.code, reply.temperature, reply.symptoms) == ("K7M2Q9XR", 37.5, ["咳嗽", "乏力"])
    assert parse_sms("K7M2Q9XR，咽痛").temperature is None
    with pytest.raises(CheckInRefused, match="请按“打卡码 体温 症状”回复"):
        parse_sms("hello")
    with pytest.raises(CheckInRefused, match="请按“打卡码 体温 症状”回复"):
        parse_sms("1A2B3C4D 36.8")  # 1 is no code's character
    with pytest.raises(CheckInRefused, match=r"体温63\.8℃不在34～43℃之间"):
        parse_sms("K7M2Q9XR 63.8")
    with pytest.raises(CheckInRefused, match="没有体温，也没有症状"):
        parse_sms("K7M2Q9XR")


def test_what_is_abnormal() -> None:
    assert RULES.abnormal(37.2, []) is None
    assert RULES.abnormal(37.3, []) == "体温37.3℃"
    assert RULES.abnormal(36.5, ["咳嗽", "想家"]) == "咳嗽"
    assert RULES.abnormal(None, ["无"]) is None


def monitoring_plan(arrived: datetime) -> FollowUp:
    """Seven days of monitoring from arrival, checked in at 08:00 and 15:00."""
    return FollowUp(
        measure_days=7,
        check_in_times=(time(8), time(15)),
        measure_ends_at=arrived + timedelta(days=7),
    )


def test_monitoring_is_checked_at_the_plan_s_times_until_its_end() -> None:
    arrived = datetime(2026, 1, 20, 9, 0, tzinfo=SHANGHAI)
    measure = window(monitoring_plan(arrived), Measure.MONITORING, arrived + timedelta(hours=1))
    slots = check_in_times(measure)
    assert len(slots) == 14
    assert slots[0] == datetime(2026, 1, 20, 15, 0, tzinfo=SHANGHAI)
    assert slots[-1] == datetime(2026, 1, 27, 8, 0, tzinfo=SHANGHAI)
    assert {s.astimezone(SHANGHAI).time() for s in slots} == {time(8), time(15)}


def test_the_check_in_file_no_longer_sets_times() -> None:
    with pytest.raises(ValueError, match="come from assignment's policy file"):
        CheckInConfig.model_validate({"times": ["08:00"]})


async def under_control(db: Database, clock: Clock) -> storage.Task:
    task = new_task(POLICY, clock(), follow_up=monitoring_plan(clock()))
    async with db.session() as session:
        session.add(task)
    for change in (
        Change(Action.ACKNOWLEDGE, "cadre", "http"),
        Change(Action.RECORD_VISIT, "cadre", "http"),
        Change(Action.START_MEASURE, "cadre", "http", measure=Measure.MONITORING),
    ):
        task, _ = await change_task(db, POLICY, task.task_id, change, clock, RULES)
    return task


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)  # errors answered as the services answer them
    app.include_router(routes.router)
    app.state.db, app.state.policy = db, POLICY
    app.state.check_ins, app.state.chain_of = RULES, static_chain
    app.state.links = LINKS
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://escalation"
    ) as http:
        yield http


async def test_a_fever_by_sms_reaches_the_community_and_the_health_centre_once_each(
    client: httpx.AsyncClient, db: Database, outbox: Outbox, settings: Settings
) -> None:
    task = await under_control(db, Clock(now()))
    code = task.check_in_code
    fever = {"message_id": "sms-1", "text": f"{code} 38.2 咳嗽"}
    first = await client.post("/v1/check-ins:sms", json=fever)
    assert first.status_code == 201, first.text
    assert first.json()["abnormal"] == "体温38.2℃、咳嗽" and first.json()["notified"] == 2
    replay = await client.post("/v1/check-ins:sms", json=fever)
    assert replay.status_code == 201 and replay.json()["notified"] == 0
    normal = await client.post(
        "/v1/check-ins:sms", json={"message_id": "sms-2", "text": f"{code} 36.6"}
    )
    assert normal.json()["notified"] == 0 and normal.json()["abnormal"] == ""

    notices = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == task.task_id
    ]  # fmt: skip
    assert sorted(n.recipient.group_id for n in notices) == sorted([COMMUNITY_GROUP, "hc-1"])
    assert all("体温38.2℃、咳嗽" in n.body for n in notices)
    async with db.session() as session:
        assert len(list(await storage.escalations_of(session, task.task_id))) == 0  # events only
        stored = await session.get(storage.CheckIn, first.json()["check_in_id"])
    assert stored is not None and stored.channel == "sms"


async def test_sms_replies_that_match_nothing_are_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    unknown = await client.post(
        "/v1/check-ins:sms", json={"message_id": "x", "text": "FFFFFFFF 36.5"}
    )
    assert unknown.status_code == 422
    clock = Clock(now())
    task = await under_control(db, clock)
    clock.advance(timedelta(days=8))  # the measure ran out
    await change_task(
        db, POLICY, task.task_id, Change(Action.END_MEASURE, "cadre", "http"), clock, RULES
    )
    ended = await client.post(
        "/v1/check-ins:sms", json={"message_id": "y", "text": f"{task.check_in_code} 36.5"}
    )
    assert ended.status_code == 422
    early = new_task(POLICY, now())
    async with db.session() as session:
        session.add(early)
    with pytest.raises(CheckInRefused, match="任务当前为“待接收”，不在管控期内，无需打卡"):
        await check_in_flows.take(
            db, RULES, static_chain, task_id=early.task_id, temperature=36.5, symptoms=[],
            channel="link", source_id="s0", moment=now(),
        )  # fmt: skip


async def test_a_missed_check_in_goes_to_the_cadre_then_the_liaison(
    db: Database, outbox: Outbox, settings: Settings
) -> None:
    start = datetime(2026, 1, 20, 10, 0, tzinfo=SHANGHAI)
    clock = Clock(start)
    task = await under_control(db, clock)
    first_due = datetime(2026, 1, 20, 15, 0, tzinfo=SHANGHAI)

    async def missed(at: datetime) -> list[str]:
        return await check_in_flows.fire_missed(db, static_chain, RULES, at)

    assert await missed(first_due + timedelta(minutes=119)) == []
    to_cadre = await missed(first_due + timedelta(hours=2))
    to_liaison = await missed(first_due + timedelta(hours=4))
    assert len(to_cadre) == len(to_liaison) == 1
    assert await missed(first_due + timedelta(hours=5)) == []
    notices = {
        e.message.notification_id: e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == task.task_id
    }
    assert notices[to_cadre[0]].recipient.group_id == task.assignee_group_id
    assert notices[to_liaison[0]].recipient.group_id == CHAIN[1].group_id
    assert "1月20日 15:00的健康打卡未按时提交" in notices[to_liaison[0]].title

    # The next morning's check-in comes in time: that one is never escalated.
    await check_in_flows.take(
        db, RULES, static_chain, task_id=task.task_id, temperature=36.5, symptoms=[],
        channel="link", source_id="s1", moment=datetime(2026, 1, 21, 7, 50, tzinfo=SHANGHAI),
    )  # fmt: skip
    assert await missed(datetime(2026, 1, 21, 12, 0, tzinfo=SHANGHAI)) == []

    # Ending the measure (early, approved by the township) cancels every check-in awaited.
    for change in (
        Change(Action.REQUEST_EARLY_END, "cadre", "http", note="经核实为误报"),
        Change(Action.APPROVE_EARLY_END, "township", "http", authority=TOWNSHIP),
    ):
        await change_task(db, POLICY, task.task_id, change, clock, RULES)
    assert await missed(datetime(2026, 2, 1, tzinfo=SHANGHAI)) == []
