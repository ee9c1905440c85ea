"""The staff workbench in headless Chromium against the whole platform: signing in as a
community, a township office and a cadre; triage by hand; acting on a task; the register
downloaded and read back, masked and revealed; the daily picture; scope; the cadre's forms on a
390-px-wide phone."""

from __future__ import annotations

import io
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from playwright.async_api import Browser, Page, ViewportSize

from gridline.staff.roles import Role
from gridline.timestamps import SHANGHAI
from gridline_cli.platform import Platform
from services.intake.domain import id_check_char
from tests.conftest import WebhookServer
from tests.helpers import eventually
from tests.staff.tokens import bearer, token

# The whole platform: run with the other whole-platform tests, one at a time.
pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
TRIAGE_ADDRESS = "皋兰县石洞镇城北社区幸福巷无名院99号"
HOUSEHOLD_GRID = "cm01-g01"
CADRE_GROUP = "grp-p-cadre-0001"
ELSEWHERE = "皋兰县石洞镇城关社区丽景苑1号楼1单元"  # cm02: another community of the township


def _id(serial: int) -> str:
    """A valid resident ID number, one person per serial."""
    first17 = f"110101199003{serial:02d}{serial % 10}12"[:17]
    return first17 + id_check_char(first17)


# Where screenshots are written when asked (docs/workbench/ for the docs).
SHOTS = os.environ.get("GRIDLINE_WORKBENCH_SCREENSHOTS", "")


def _url(platform: Platform, name: str) -> str:
    assert platform.endpoints is not None
    return platform.endpoints.service_url(name)


def _report(address: str, name: str, id_number: str, phone: str) -> dict[str, str]:
    return {
        "source": "self_report", "name": name, "id_number": id_number, "phone": phone,
        "origin_name": "上海市浦东新区", "origin_risk": "medium",
        "arrived_at": "2022-01-28T18:40:00+08:00", "address": address,
    }  # fmt: skip


async def _post(platform: Platform, body: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=_url(platform, "intake")) as client:
        response = await client.post("/v1/reports", json=body)
    assert response.status_code == 202, response.text
    report_id: str = response.json()["report_id"]
    return report_id


async def _tasks(
    platform: Platform, role: Role = Role.COUNTY_OFFICE, node: str = "county"
) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(
        base_url=_url(platform, "escalation"), headers=bearer(platform.data_dir, role, node)
    ) as client:
        found: list[dict[str, Any]] = (await client.get("/v1/tasks", params={"limit": 1000})).json()
    return found


async def _task_of(platform: Platform, report_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def stored() -> bool:
        found.update(next((t for t in await _tasks(platform) if t["report_id"] == report_id), {}))
        return bool(found)

    await eventually(stored, within=20)
    return found


async def _sign_in(
    browser: Browser, platform: Platform, role: Role, node: str, size: ViewportSize
) -> Page:
    """A tab signed in through the sign-in page with a token of `role` at `node`."""
    tab = await browser.new_page(viewport=size)
    await tab.goto(f"{_url(platform, 'escalation')}/workbench/tasks")
    assert "/workbench/sign-in" in tab.url
    await _shoot(tab, "sign_in")
    await tab.fill("#token", token(platform.data_dir, role, node))
    await tab.get_by_role("button", name="登录").click()
    await tab.wait_for_url("**/workbench/tasks")
    return tab


async def _shoot(tab: Page, name: str) -> None:
    """Screenshots of the page at phone and desktop width, when asked for."""
    if not SHOTS:
        return
    before = tab.viewport_size or DESKTOP
    for kind, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await tab.set_viewport_size(size)
        await tab.screenshot(path=str(Path(SHOTS) / f"{name}-{kind}.png"), full_page=True)
    await tab.set_viewport_size(before)


async def test_a_community_places_a_triage_report_by_hand_and_the_cadre_is_told_once(
    platform: Platform, browser: Browser, webhook: WebhookServer
) -> None:
    triage_id = await _post(platform, _report(TRIAGE_ADDRESS, "李娜", _id(1), "13812345678"))
    other_id = await _post(
        platform,
        _report(f"{ELSEWHERE}101室", "王强", _id(2), "13912345678"),
    )
    triage = await _task_of(platform, triage_id)
    other = await _task_of(platform, other_id)
    assert triage["state"] == "triage"

    for size in (PHONE, DESKTOP):
        tab = await _sign_in(browser, platform, Role.COMMUNITY_STAFF, "cm01", size)
        # Only the community's own tasks: the report placed in another community is not there.
        board = await tab.content()
        assert "幸福巷" in board and "丽景苑" not in board
        await _shoot(tab, "tasks")
        await tab.get_by_role("link", name="分拣", exact=True).click()
        await tab.wait_for_url("**/workbench/triage")
        await _shoot(tab, "triage")
        if size is DESKTOP:
            break
        await tab.close()

    await tab.get_by_label("查找住户").first.fill("三汇小区1号楼 1单元101室")
    await tab.get_by_role("button", name="查找").first.click()
    await tab.get_by_role("button", name="放置到此户").first.wait_for()
    await _shoot(tab, "triage_search")
    await tab.get_by_role("button", name="放置到此户").first.click()
    await tab.locator("#done").wait_for()
    assert "三汇小区1号楼1单元101室" in await tab.locator("#done").inner_text()

    def told() -> list[Any]:
        return [
            r for r in webhook.received
            if r.path == f"/hooks/{CADRE_GROUP}" and r.body.get("task_id") == triage["task_id"]
        ]  # fmt: skip

    async def delivered() -> bool:
        return bool(told())

    await eventually(delivered, within=15)
    # The history names the person who placed it; the other community's task is refused.
    await tab.goto(f"{_url(platform, 'escalation')}/workbench/tasks/{triage['task_id']}")
    history = await tab.locator("#history").inner_text()
    assert "改派" in history and "测试社区工作人员" in history and "人工分拣" in history
    await _shoot(tab, "task")
    refused = await tab.goto(f"{_url(platform, 'escalation')}/workbench/tasks/{other['task_id']}")
    assert refused is not None and refused.status == 403
    placed = await _task_of(platform, triage_id)
    assert placed["state"] == "assigned" and placed["grid_id"] == HOUSEHOLD_GRID
    assert len(told()) == 1


async def test_a_township_office_sees_its_communities_and_a_cadre_acts_on_a_task(
    platform: Platform, browser: Browser
) -> None:
    report_id = await _post(
        platform,
        _report(f"{ELSEWHERE}102室", "赵敏", _id(3), "13712345678"),
    )
    task = await _task_of(platform, report_id)
    office = await _sign_in(browser, platform, Role.TOWNSHIP_OFFICE, "town-01", DESKTOP)
    await office.select_option("#place", label="城关社区")
    await office.get_by_role("button", name="筛选").click()
    await office.wait_for_url("**place=cm02**")
    rows = await office.locator("#task-table tbody tr").all_inner_texts()
    assert rows and all("城关社区" in row for row in rows)
    await _register_as_the_township(office, platform)

    cadre_grid = task["grid_id"]
    cadre = await _sign_in(browser, platform, Role.CADRE, cadre_grid, PHONE)
    await cadre.goto(f"{_url(platform, 'escalation')}/workbench/tasks/{task['task_id']}")
    await cadre.get_by_role("button", name="确认接收").click()
    await cadre.locator("#done").wait_for()
    assert await cadre.locator("#state").inner_text() == "已接收"
    assert "测试包户干部" in await cadre.locator("#history").inner_text()
    # A cadre of another grid sees none of it.
    stranger = await _sign_in(browser, platform, Role.CADRE, "cm01-g01", PHONE)
    response = await stranger.goto(
        f"{_url(platform, 'escalation')}/workbench/tasks/{task['task_id']}"
    )
    assert response is not None and response.status == 403


async def _download(tab: Page, button: str) -> list[list[Any]]:
    """The register's rows as a spreadsheet library reads the downloaded .xlsx."""
    async with tab.expect_download() as started:
        await tab.get_by_role("button", name=button).click()
    download = await started.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    path = await download.path()
    sheet = load_workbook(io.BytesIO(path.read_bytes()), read_only=True).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]


async def _register_as_the_township(office: Page, platform: Platform) -> None:
    """The township's register of 1月28日: 赵敏 of 城关社区, masked, then in clear with a purpose;
    and the day's picture."""
    await office.goto(
        f"{_url(platform, 'escalation')}/workbench/register"
        "?node=town-01&start=2022-01-28&end=2022-01-28"
    )
    await _shoot(office, "register")
    masked = await _download(office, "下载 Excel 表格")
    header = masked[1]  # under the sheet's title
    assert header[:5] == ["序号", "姓名", "性别", "身份证号", "联系电话"]
    assert len(header) == 17 and header[-1] == "备注"
    [zhao] = [row for row in masked[2:] if row[4] == "137****5678"]
    assert zhao[1] == "赵*" and str(zhao[3]).startswith("*") and zhao[2] in ("男", "女")
    await office.check("#reveal")
    await office.fill("#purpose", "报送县联防联控办核对")
    revealed = await _download(office, "下载 Excel 表格")
    [zhao] = [row for row in revealed[2:] if row[4] == "13712345678"]
    assert (zhao[1], zhao[3]) == ("赵敏", _id(3))
    await office.get_by_role("link", name="每日情况", exact=True).click()
    await office.wait_for_url("**/workbench/picture**")
    assert "城关社区" in await office.locator("main").inner_text()
    await _shoot(office, "picture")


async def test_a_cadre_files_an_arrival_and_the_zero_report_from_a_phone(
    platform: Platform, browser: Browser
) -> None:
    tab = await _sign_in(browser, platform, Role.CADRE, "cm01-g01", PHONE)
    await tab.get_by_role("link", name="来人登记", exact=True).click()
    await tab.wait_for_url("**/workbench/arrival")
    await tab.fill("#name", "孙丽")
    await tab.fill("#id_number", "62010219900307123")  # one digit short: intake refuses it
    await tab.fill("#phone", "13612345678")
    await tab.fill("#origin_name", "上海市浦东新区")
    await tab.select_option("#origin_risk", "low")
    await tab.select_option("#transport", "火车")
    await tab.fill("#arrived_at", "2022-01-28T18:40")
    await tab.fill("#address", "皋兰县石洞镇城北社区三汇小区1号楼1单元102室")
    await tab.get_by_role("button", name="提交登记").click()
    await tab.locator("#errors").wait_for()
    assert "身份证号" in await tab.locator("#errors").inner_text()
    await _shoot(tab, "arrival")
    await tab.fill("#id_number", _id(4))
    await tab.get_by_role("button", name="提交登记").click()
    await tab.locator("#done").wait_for()

    async def placed() -> bool:
        tasks = await _tasks(platform)
        return any("孙*" in t["summary"] and "入户排摸" in t["summary"] for t in tasks)

    await eventually(placed, within=20)

    await tab.get_by_role("link", name="零报告", exact=True).click()
    await tab.wait_for_url("**/workbench/zero-report")
    await _shoot(tab, "zero_report")
    await tab.get_by_role("button", name="报送").click()
    await tab.locator("#done").wait_for()
    assert "零报告" in await tab.locator("#done").inner_text()
    async with httpx.AsyncClient(
        base_url=_url(platform, "escalation"),
        headers=bearer(platform.data_dir, Role.COMMUNITY_STAFF, "cm01"),
    ) as client:
        day = datetime.now(SHANGHAI).date().isoformat()
        reports = (await client.get("/v1/zero-reports", params={"day": day})).json()
    assert any(r["grid_id"] == "cm01-g01" for r in reports), reports
