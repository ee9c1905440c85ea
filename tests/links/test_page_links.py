"""The task page and the links notices carry: a link works for its holder until the task is
handed on, a neighbour's only looks, each notice brings a link of its own, and the audit trail
names who acted."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import httpx
from fastapi import FastAPI
from grpc.aio import AioRpcError, Metadata

from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.links import Role
from gridline.settings import Settings
from gridline.timestamps import now, zh_time
from services.escalation import check_in_flows, storage
from services.escalation.deadlines import fire_due
from services.escalation.domain import Action
from services.escalation.flows import Change, change_task
from tests.links.conftest import (
    CADRE,
    CHAIN,
    COMMUNITY,
    LEADER,
    LIAISON,
    LINKS,
    POLICY,
    RULES,
    a_task,
    action_path,
    chain_of,
    notices_of,
    path_of,
    query_of,
    under_quarantine,
)

OTHER_CADRE = common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_CADRE, group_id="g-other")


def cadre_link(task: storage.Task, at: datetime) -> str:
    """The link the cadre got with the task's first notice."""
    return LINKS.link(task.task_id, CADRE, holder=task.assignee_group_id, at=at)


async def stored(db: Database, task_id: str) -> storage.Task:
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
    assert task is not None
    return task


async def trail(db: Database, task_id: str) -> list[storage.TaskChange]:
    async with db.session() as session:
        return list(await storage.changes_of(session, task_id))


async def test_a_reassigned_task_refuses_the_old_holder_s_link_and_opens_the_new_one(
    client: httpx.AsyncClient, db: Database, outbox: Outbox, settings: Settings
) -> None:
    task = await a_task(db, now())
    old = cadre_link(task, now())
    assert (await client.get(path_of(old))).status_code == 200

    await change_task(
        db, POLICY, task.task_id,
        Change(Action.REASSIGN, "社区王主任", "http", assignee=OTHER_CADRE), links=LINKS,
    )  # fmt: skip
    page = await client.get(path_of(old))
    assert page.status_code == 403
    assert "任务已移交" in page.text and "已移交他人办理，您收到的链接已失效" in page.text
    acting = await client.post(action_path(old, "acknowledge"))
    assert acting.status_code == 403 and "任务已移交" in acting.text
    assert (await stored(db, task.task_id)).state == "assigned"

    [notice] = [n for n in await notices_of(settings, outbox, task.task_id)]
    assert notice.recipient.group_id == OTHER_CADRE.group_id
    grant = LINKS.check(task.task_id, query_of(notice.link), now())
    assert (grant.recipient, grant.holder) == ("g-other", "g-other")
    opened = await client.get(path_of(notice.link))
    assert opened.status_code == 200 and "确认接收" in opened.text
    assert (await client.post(action_path(notice.link, "acknowledge"))).status_code == 303
    assert (await stored(db, task.task_id)).state == "acknowledged"


async def test_a_task_handed_back_to_its_first_group_still_refuses_the_links_from_before(
    client: httpx.AsyncClient, db: Database
) -> None:
    task = await a_task(db, now())
    old = cadre_link(task, now() - timedelta(minutes=5))
    await change_task(
        db, POLICY, task.task_id, Change(Action.SEND_TO_TRIAGE, "张伟", "page"), links=LINKS
    )
    assert (await client.get(path_of(old))).status_code == 403
    await change_task(
        db, POLICY, task.task_id,
        Change(Action.REASSIGN, "社区", "http", assignee=CADRE), links=LINKS,
    )  # fmt: skip
    assert (await stored(db, task.task_id)).assignee_group_id == CADRE.group_id
    refused = await client.get(path_of(old))
    assert refused.status_code == 403 and "任务已移交" in refused.text
    assert (await client.get(path_of(cadre_link(task, now())))).status_code == 200


async def test_a_micro_grid_leader_s_link_shows_the_task_and_acts_on_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    task = await under_quarantine(db, now())
    leader = LINKS.link(
        task.task_id, LEADER, holder=CADRE.group_id, at=now(), role=Role.MICRO_GRID_LEADER
    )
    page = await client.get(path_of(leader))
    assert page.status_code == 200
    assert "此链接是发给联户长的查看链接" in page.text
    assert task.summary in page.text and "居家隔离" in page.text
    # Neither the actions nor the check-in code (which lets anyone report for the resident).
    assert 'id="actions"' not in page.text and "<form" not in page.text
    assert task.check_in_code is not None and task.check_in_code not in page.text
    assert "确认时限" not in page.text

    for action in ("end_measure", "acknowledge", "close"):
        refused = await client.post(action_path(leader, action))
        assert refused.status_code == 403
        assert "仅供查看" in refused.text and "不能办理" in refused.text
    check_in = await client.post(
        action_path(leader, "check-in"), json={"submission_id": "n-1", "temperature": 36.5}
    )
    assert check_in.status_code == 403
    assert (check_in.json()["rule"], check_in.json()["title"]) == ("link.view_only", "仅供查看")
    assert "不能办理" in check_in.json()["detail"]
    assert (await stored(db, task.task_id)).state == "under_control"
    assert [c.action for c in await trail(db, task.task_id)] == [
        "acknowledge", "record_visit", "start_measure",
    ]  # fmt: skip

    # The cadre's link on the same task shows the code and the actions: before the measure runs
    # out, asking to end it early (with a reason), not ending it.
    cadre = await client.get(path_of(cadre_link(task, now())))
    assert task.check_in_code in cadre.text and "申请提前解除管控" in cadre.text
    assert ">解除管控措施<" not in cadre.text and "/end_measure?" not in cadre.text


async def test_escalation_notices_from_day_5_of_a_quarantine_carry_links_that_work_on_day_6(
    client: httpx.AsyncClient, db: Database, outbox: Outbox, settings: Settings
) -> None:
    # Whole seconds: a link keeps its issue time to the millisecond.
    day_1 = (now() - timedelta(days=5, hours=1)).replace(microsecond=0)
    task = await under_quarantine(db, day_1)
    first = cadre_link(task, day_1)
    day_5 = day_1 + timedelta(days=4)
    sent = await check_in_flows.fire_missed(db, chain_of, RULES, day_5, LINKS)
    assert sent
    notices = {n.notification_id: n for n in await notices_of(settings, outbox, task.task_id)}
    missed = [notices[i] for i in sent]
    # Day 6: the first link has long expired; every notice of day 5 opens the page.
    assert (await client.get(path_of(first))).status_code == 410
    for notice in missed:
        assert LINKS.check(task.task_id, query_of(notice.link), now()).issued_at == day_5
        assert (await client.get(path_of(notice.link))).status_code == 200


async def test_each_notice_carries_a_link_of_its_own_for_its_recipient(
    db: Database, outbox: Outbox, settings: Settings
) -> None:
    assigned = (now() - timedelta(hours=3)).replace(microsecond=0)
    task = await a_task(db, assigned)
    moments = [assigned + timedelta(minutes=31), assigned + timedelta(minutes=61)]
    for moment in moments:
        assert await fire_due(db, chain_of, POLICY, moment, LINKS)
    # Published by recipient: put back in the order they were made.
    notices = sorted(
        await notices_of(settings, outbox, task.task_id), key=lambda n: n.created_at.ToDatetime()
    )
    assert [n.recipient.group_id for n in notices] == [LIAISON.group_id, COMMUNITY.group_id]
    grants = [LINKS.check(task.task_id, query_of(n.link), now()) for n in notices]
    assert [(g.recipient, g.role, g.issued_at) for g in grants] == [
        ("p-li", Role.LIAISON, moments[0]),
        ("g-community", Role.COMMUNITY, moments[1]),
    ]
    assert len({n.link for n in notices}) == 2


async def test_a_fever_alert_gives_the_community_an_acting_link_and_the_health_centre_a_look(
    client: httpx.AsyncClient, db: Database, outbox: Outbox, settings: Settings
) -> None:
    task = await under_quarantine(db, now() - timedelta(days=4))
    _, sent = await check_in_flows.take_sms(
        db, RULES, chain_of, text=f"{task.check_in_code} 38.5 咳嗽", message_id="sms-1",
        sender="13900000000", moment=now(), links=LINKS,
    )  # fmt: skip
    notices = {n.recipient.group_id: n for n in await notices_of(settings, outbox, task.task_id)}
    assert set(notices) == {"g-community", "g-health"} and len(sent) == 2
    community, centre = notices["g-community"].link, notices["g-health"].link
    assert LINKS.check(task.task_id, query_of(community), now()).acts
    assert LINKS.check(task.task_id, query_of(centre), now()).role is Role.HEALTH_CENTRE
    look = await client.get(path_of(centre))
    assert look.status_code == 200 and "此链接是发给卫生院的查看链接" in look.text
    assert (await client.post(action_path(centre, "end_measure"))).status_code == 403


async def test_the_audit_trail_names_the_recipient_who_acted_through_the_link(
    client: httpx.AsyncClient, db: Database
) -> None:
    task = await a_task(db, now())
    assert (
        await client.post(action_path(cadre_link(task, now()), "acknowledge"))
    ).status_code == 303
    liaison = LINKS.link(task.task_id, LIAISON, holder=CADRE.group_id, at=now())
    assert (await client.post(action_path(liaison, "record_visit"))).status_code == 303
    [acknowledged, visited] = await trail(db, task.task_id)
    assert (acknowledged.actor, acknowledged.channel) == ("包户干部张伟（p-zhang）", "page")
    assert (visited.actor, visited.channel) == ("联络员李娜（p-li）", "page")
    assert "link-holder" not in {acknowledged.actor, visited.actor}


async def test_with_the_directory_down_the_audit_still_names_the_recipient_by_role_and_id(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    async def unreachable(_node_id: str) -> list[common_pb2.Responsible]:
        raise AioRpcError(grpc.StatusCode.UNAVAILABLE, Metadata(), Metadata(), "down")

    app.state.chain_of = unreachable
    task = await a_task(db, now())
    assert (
        await client.post(action_path(cadre_link(task, now()), "acknowledge"))
    ).status_code == 303
    [acknowledged] = await trail(db, task.task_id)
    assert acknowledged.actor == "包户干部（p-zhang）"
    assert CHAIN[0].person_name not in acknowledged.actor


async def test_a_refused_link_says_why_in_chinese(client: httpx.AsyncClient, db: Database) -> None:
    task = await a_task(db, now())
    old = cadre_link(task, now() - timedelta(days=3, seconds=1))
    expired = await client.get(path_of(old))
    assert expired.status_code == 410 and "链接已过期" in expired.text
    tampered = path_of(cadre_link(task, now())).replace("p=cadre", "p=county")
    assert (await client.get(tampered)).status_code == 403
    handed = now() - timedelta(hours=1)
    await change_task(
        db, POLICY, task.task_id,
        Change(Action.REASSIGN, "社区", "http", assignee=OTHER_CADRE), lambda: handed,
    )  # fmt: skip
    moved = await client.get(path_of(cadre_link(task, handed - timedelta(minutes=1))))
    assert moved.status_code == 403
    assert f"此任务于{zh_time(handed)}已移交他人办理" in moved.text
