"""The cadre's task page in headless Chromium, served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright

from gridline import problems
from gridline.bus import topics
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.links import PageLinks
from gridline.settings import Settings
from gridline.timestamps import now
from services.escalation import page, routes, storage
from services.escalation.check_ins import CheckInConfig, CheckInRules, HealthCentre
from services.escalation.deadlines import fire_due
from services.escalation.domain import Action, Measure
from services.escalation.flows import Change, change_task
from services.escalation.policy import every_level_after
from tests.escalation.conftest import new_task, static_chain
from tests.escalation.records import published

POLICY = every_level_after(timedelta(minutes=30))
# Kept in the docs when GRIDLINE_SCREENSHOTS is set (as tests/intake/test_page.py does).
SCREENSHOT = Path(__file__).parents[2] / "docs/screenshots/task-page.png"
CHECK_INS = CheckInRules(
    CheckInConfig(health_centres={"group-4": HealthCentre(group_id="hc-9", group_name="卫生院")})
)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def served(db: Database) -> AsyncIterator[PageLinks]:
    """Escalation's page and API over a real database and broker, on a loopback port."""
    port = _free_port()
    links = PageLinks(f"http://127.0.0.1:{port}", b"test-task-link-key", timedelta(days=3))
    app = FastAPI()
    problems.install(app)  # errors answered as the services answer them
    app.include_router(routes.router)
    app.include_router(page.router)
    app.state.check_ins, app.state.chain_of = CHECK_INS, static_chain
    app.state.db, app.state.policy, app.state.links = db, POLICY, links
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started
    yield links
    server.should_exit = True
    await serving


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


async def stored_task(db: Database) -> storage.Task:
    task = new_task(POLICY, now())
    async with db.session() as session:
        session.add(task)
    return task


def cadre_link(links: PageLinks, task: storage.Task, at: datetime) -> str:
    """The link the task's cadre got in a notice at `at`."""
    cadre = common_pb2.Responsible(
        level=common_pb2.CHAIN_LEVEL_CADRE, group_id=task.assignee_group_id
    )
    return links.link(task.task_id, cadre, holder=task.assignee_group_id, at=at)


async def test_open_the_link_acknowledge_and_the_later_escalation_does_not_fire(
    served: PageLinks, browser: Browser, db: Database, tmp_path: Path
) -> None:
    task = await stored_task(db)
    link = cadre_link(served, task, now())
    tab = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    response = await tab.goto(link)
    assert response is not None and response.status == 200
    assert await tab.locator("#state").inner_text() == "待接收"
    assert "**************1234" in await tab.content()
    await tab.get_by_role("button", name="确认接收").click()
    await tab.wait_for_url(link)
    assert await tab.locator("#state").inner_text() == "已接收"
    labels = await tab.locator("#actions button").all_inner_texts()
    assert labels == [
        "记录入户核查", "核酸检测结果：阴性", "核酸检测结果：阳性", "核酸检测结果：未检测",
        "登记再次外出", "登记查无此人",
    ]  # fmt: skip

    await tab.get_by_role("button", name="记录入户核查").click()
    await tab.wait_for_url(link)
    await tab.get_by_role("button", name="开始居家健康监测").click()
    await tab.wait_for_url(link)
    assert await tab.locator("#state").inner_text() == "管控中"
    # Before its end the measure is not ended on the spot: an early end is asked for.
    assert await tab.locator("#actions button").all_inner_texts() == [
        "申请提前解除管控", "核酸检测结果：阴性", "核酸检测结果：阳性", "核酸检测结果：未检测",
        "登记再次外出", "登记已转运至医院", "登记已转集中隔离",
    ]  # fmt: skip
    assert await tab.locator("#measure-period").inner_text() != ""
    await tab.get_by_role("button", name="核酸检测结果：阴性").click()
    await tab.wait_for_url(link)
    assert await tab.locator("#state").inner_text() == "管控中"
    # What the cadre reads is Chinese: no word of English anywhere on the page (the SMS
    # check-in code is random letters and digits, a code to type, not a word).
    code = await tab.locator("#check-in-code").inner_text()
    text = (await tab.locator("body").inner_text()).replace(code, "")
    assert re.findall(r"[A-Za-z]{2,}", text) == []
    shot = SCREENSHOT if os.environ.get("GRIDLINE_SCREENSHOTS") else tmp_path / SCREENSHOT.name
    await tab.screenshot(path=str(shot), full_page=True)
    await tab.get_by_label("去向（目的地）").fill("兰州市城关区")
    await tab.get_by_role("button", name="登记再次外出").click()
    await tab.wait_for_url(link)
    assert await tab.locator("#state").inner_text() == "已再次外出"

    # The acknowledgement deadline would have fallen 30 minutes after assignment.
    assert await fire_due(db, static_chain, POLICY, now() + timedelta(hours=5)) == []
    async with db.session() as session:
        assert list(await storage.escalations_of(session, task.task_id)) == []
        trail = [(c.action, c.channel) for c in await storage.changes_of(session, task.task_id)]
    assert trail == [
        ("acknowledge", "page"), ("record_visit", "page"), ("start_measure", "page"),
        ("record_test", "page"), ("record_left", "page"),
    ]  # fmt: skip
    async with db.session() as session:
        changes = await storage.changes_of(session, task.task_id)
    assert changes[-2].note == "核酸检测结果：阴性" and changes[-1].note == "兰州市城关区"


async def test_a_tampered_or_expired_link_is_refused(
    served: PageLinks, browser: Browser, db: Database
) -> None:
    task = await stored_task(db)
    other = await stored_task(db)
    good = cadre_link(served, task, now())
    tampered = [
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # signature changed
        good.replace("e=", "e=9"),  # expiry pushed out
        good.replace(task.task_id, other.task_id),  # another task with this signature
        good.split("?")[0],  # no signature at all
    ]
    tab = await browser.new_page()
    for link in tampered:
        response = await tab.goto(link)
        assert response is not None and response.status == 403, link
        assert "链接无效" in await tab.content()
        assert await tab.locator("#actions").count() == 0

    expired = cadre_link(served, task, now() - timedelta(days=3, seconds=1))
    response = await tab.goto(expired)
    assert response is not None and response.status == 410
    assert "链接已过期" in await tab.content()

    # Acting through a refused link changes nothing.
    action_url = tampered[0].replace(f"/t/{task.task_id}?", f"/t/{task.task_id}/acknowledge?")
    async with httpx.AsyncClient() as client:
        assert (await client.post(action_url)).status_code == 403
        late = expired.replace(f"/t/{task.task_id}?", f"/t/{task.task_id}/acknowledge?")
        assert (await client.post(late)).status_code == 410
    async with db.session() as session:
        again = await storage.get_task(session, task.task_id)
    assert again is not None and again.state == "assigned"


async def test_an_action_the_state_no_longer_allows_names_the_state(
    served: PageLinks, db: Database
) -> None:
    task = await stored_task(db)
    link = cadre_link(served, task, now())
    acknowledge = link.replace(f"/t/{task.task_id}?", f"/t/{task.task_id}/acknowledge?")
    async with httpx.AsyncClient() as client:
        first = await client.post(acknowledge)
        assert first.status_code == 303
        again = await client.post(acknowledge)
    assert again.status_code == 200
    assert "当前状态为「已接收」，不能确认接收" in again.text


async def test_a_fever_checked_in_from_the_phone_is_told_at_once(
    served: PageLinks, browser: Browser, db: Database, outbox: Outbox,
    settings: Settings,
) -> None:  # fmt: skip
    task = await stored_task(db)
    for change in (
        Change(Action.ACKNOWLEDGE, "c", "http"),
        Change(Action.RECORD_VISIT, "c", "http"),
        Change(Action.START_MEASURE, "c", "http", measure=Measure.QUARANTINE),
    ):
        await change_task(db, POLICY, task.task_id, change, check_ins=CHECK_INS)
    tab = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    await tab.goto(cadre_link(served, task, now()))
    await tab.get_by_label("体温（℃）").fill("38.1")
    await tab.get_by_label("咳嗽").check()
    await tab.get_by_role("button", name="提交打卡").click()
    result = tab.locator("#check-in-result")
    await result.filter(has_text="已提交").wait_for()
    assert await result.inner_text() == "已提交，异常情况已报社区和卫生院：体温38.1℃、咳嗽"

    notices = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == task.task_id
    ]  # fmt: skip
    assert sorted(n.recipient.group_id for n in notices) == ["group-3", "hc-9"]
