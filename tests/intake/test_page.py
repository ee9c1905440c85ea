"""The self-report page in headless Chromium (Debian's): fill, submit, confirm; only Chinese on
a phone-sized screen (its screenshot is kept in docs/screenshots/)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from gridline.contracts.v1 import common_pb2
from gridline.embedded import EmbeddedBroker
from gridline.timestamps import SHANGHAI, zh_date
from tests.intake.conftest import intake_process
from tests.intake.test_routes import reports_on_topic

CHROMIUM = "/usr/bin/chromium"
HAS_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Kept in the docs when GRIDLINE_SCREENSHOTS is set (`GRIDLINE_SCREENSHOTS=1 pytest ...`), so that
# an ordinary run leaves the tree as it was.
SCREENSHOT = Path(__file__).parents[2] / "docs/screenshots/self-report-page.png"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def intake_url(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with intake_process(
        broker.bootstrap,
        tmp_path_factory.mktemp("intake-page"),
        GRIDLINE_INTAKE_SELF_REPORT_PER_HOUR="50",
    ) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAS_CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


async def open_form(browser: Browser, intake_url: str) -> Page:
    """The form on a phone-sized screen."""
    page = await browser.new_page(viewport=PHONE, locale="zh-CN")
    await page.goto(f"{intake_url}/report")
    await page.fill("#name", "张伟")
    await page.fill("#id_number", "11010519491231002x")
    await page.fill("#phone", "138 1234 5678")
    await page.fill("#origin_name", "上海市浦東新區")
    await page.select_option("#arrived_day", index=1)  # yesterday
    await page.select_option("#arrived_hour", "18")
    await page.select_option("#arrived_minute", "40")
    await page.fill("#address", "皋兰县石洞镇城北社区三汇小区23号楼3单元301室")
    return page


async def test_a_resident_reports_and_sees_what_was_received_masked(
    browser: Browser, intake_url: str, broker: EmbeddedBroker
) -> None:
    page = await open_form(browser, intake_url)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#confirmation:not([hidden])", timeout=20_000)
    assert await page.text_content("#c-id_number") == "**************002X"
    assert await page.text_content("#c-phone") == "138****5678"
    assert await page.text_content("#c-name") == "张*"
    assert await page.text_content("#c-origin") == "上海市浦东新区"
    yesterday = (datetime.now(SHANGHAI) - timedelta(days=1)).date()
    assert await page.text_content("#c-arrived_at") == f"{zh_date(yesterday)} 18:40"
    report_id = await page.text_content("#c-report_id")
    assert report_id
    assert "11010519491231002X" not in await page.content()
    [report] = [r for r in await reports_on_topic(broker.bootstrap) if r.report_id == report_id]
    assert report.origin_region_code == "310115"
    # The resident chose no risk: the county's risk-area list decides it where it is placed.
    assert report.origin_risk == common_pb2.RISK_LEVEL_LOW
    await page.close()


async def test_the_page_is_for_anyone_arriving_says_how_data_is_used_and_reads_only_chinese(
    browser: Browser, intake_url: str, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport=PHONE, locale="zh-CN")
    await page.goto(f"{intake_url}/report")
    assert await page.title() == "来返人员主动报备"
    assert await page.locator("#origin_risk").count() == 0
    privacy = await page.text_content("#privacy") or ""
    for said in ("收集什么", "为什么收集", "谁能看到", "办结后保存30天"):
        assert said in privacy, said
    shown = await page.inner_text("body")
    assert re.findall(r"[A-Za-z]+", shown) == [], shown
    shot = SCREENSHOT if os.environ.get("GRIDLINE_SCREENSHOTS") else tmp_path / SCREENSHOT.name
    await page.screenshot(path=str(shot), full_page=True)
    await page.close()


async def test_a_risk_posted_by_the_form_is_not_taken_and_errors_are_chinese(
    intake_url: str, broker: EmbeddedBroker
) -> None:
    form = {
        "name": "张伟",
        "id_number": "11010519491231002X",
        "phone": "13812345678",
        "origin_name": "上海市浦东新区",
        "origin_risk": "high",
        "arrived_at": "2022-01-28T18:40:00+08:00",
        "address": "皋兰县石洞镇城北社区三汇小区23号楼3单元301室",
    }
    async with httpx.AsyncClient(base_url=intake_url) as client:
        taken = await client.post("/report", json=form)
        refused = await client.post(
            "/report",
            json={**form, "name": "张" * 65, "document_type": "passport", "id_number": "1"},
        )
    assert taken.status_code == 202, taken.text
    [report] = [
        r
        for r in await reports_on_topic(broker.bootstrap)
        if r.report_id == taken.json()["report_id"]
    ]
    assert report.origin_risk == common_pb2.RISK_LEVEL_LOW
    assert refused.status_code == 422
    said = {e["field"]: e["detail"] for e in refused.json()["errors"]}
    assert said == {"name": "内容过长，请精简", "id_number": "护照号码格式不正确"}


async def test_invalid_input_shows_the_fields_error_in_the_browser(
    browser: Browser, intake_url: str
) -> None:
    page = await open_form(browser, intake_url)
    await page.fill("#phone", "2381234567")
    await page.fill("#id_number", "110105194912310021")
    await page.click("button[type=submit]")
    assert await page.text_content("#error-phone") == "请填写11位手机号码"
    assert await page.text_content("#error-id_number") == "身份证号码校验位不正确"
    assert await page.is_hidden("#confirmation")
    await page.close()


async def test_server_side_rules_show_at_their_field(browser: Browser, intake_url: str) -> None:
    page = await open_form(browser, intake_url)
    await page.fill("#origin_name", "火星市")  # the page cannot know place names; intake does
    await page.click("button[type=submit]")
    await page.wait_for_function(
        "document.getElementById('error-origin_name').textContent !== ''", timeout=20_000
    )
    assert "未找到该地名" in (await page.text_content("#error-origin_name") or "")
    assert await page.is_hidden("#confirmation")
    await page.close()


async def test_the_honeypot_is_answered_but_nothing_is_produced(
    intake_url: str, broker: EmbeddedBroker
) -> None:
    form = {
        "name": "机器人",
        "id_number": "11010519491231002X",
        "phone": "13812345678",
        "origin_name": "上海市浦东新区",
        "origin_risk": "low",
        "arrived_at": "2022-01-28T18:40:00+08:00",
        "address": "皋兰县石洞镇",
        "website": "http://spam.example",
    }
    async with httpx.AsyncClient(base_url=intake_url) as client:
        answer = await client.post("/report", json=form)
        metrics = (await client.get("/metrics")).text
    assert answer.status_code == 202
    fake_id = answer.json()["report_id"]
    assert fake_id not in {r.report_id for r in await reports_on_topic(broker.bootstrap)}
    assert "gridline_intake_honeypot_caught_total 1.0" in metrics


def test_each_address_is_rate_limited(broker: EmbeddedBroker, tmp_path: Path) -> None:
    with (
        intake_process(broker.bootstrap, tmp_path, GRIDLINE_INTAKE_SELF_REPORT_PER_HOUR="2") as url,
        httpx.Client(base_url=url) as client,
    ):
        answers = [client.post("/report", json={}).status_code for _ in range(3)]
    assert answers == [422, 422, 429]
