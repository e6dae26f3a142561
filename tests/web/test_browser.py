"""The dashboard in a real headless Chromium (the OS packages chromium + chromium-driver, driven by
Selenium with the driver path given, so nothing is downloaded): sign-in by link, a used link refused,
scope, CSRF, an action on the web seen in the chat and one in the chat seen on the web, charts with
Chinese labels, no console errors, a phone-sized viewport. Screenshots go to the test's tmp folder."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.buttons import DIFFICULTY_ACK
from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.store.models import Difficulty
from bot.web.app import make_app
from tests.conftest import Chat, World, bind
from tests.web.helpers import add_difficulty, other_team, token_of

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                       reason="chromium / chromium-driver not installed (.ci/run installs them)"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--lang=zh-CN"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    assert shutil.which("chromedriver") or os.path.exists(DRIVER)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def base(app: App, clock: FixedClock) -> AsyncIterator[str]:
    server = TestServer(make_app(app.core.settings, clock), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def go(driver: Any, url: str) -> str:
    """Open url (the blocking driver runs in a thread, so this loop keeps serving the app)."""
    await asyncio.to_thread(driver.get, url)
    return str(await asyncio.to_thread(lambda: driver.find_element("tag name", "body").text))


async def click(driver: Any, element_id: str, expect: str) -> str:
    """Press a button and wait (bounded) for the page that answers it to show `expect`."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def body(d: Any) -> str | bool:
        try:
            text = str(d.find_element("tag name", "body").text)
        except WebDriverException as e:
            # Chromium may answer for a node of the page being replaced ("does not belong to the
            # document") rather than "stale": the same race, looked up again.
            if "does not belong to the document" not in str(e.msg):
                raise
            return False
        return text if expect in text else False

    def run() -> str:
        driver.find_element("id", element_id).click()
        # The old page's body goes stale while the answer loads: looked up again until it shows up.
        wait = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,))
        return str(wait.until(body))

    return await asyncio.to_thread(run)


async def errors(driver: Any) -> list[str]:
    logs = await asyncio.to_thread(driver.get_log, "browser")
    return [e["message"] for e in logs if e["level"] == "SEVERE"]


async def leader_token(app: App, world: World) -> tuple[Chat, str]:
    chat = Chat(app, "600", "赵队长")
    await bind(app, chat, person_id=world.leader_id)
    await chat.send("/web")
    return chat, token_of(chat.last_text)


async def test_sign_in_scope_charts_phone(app: App, world: World, base: str, browser: Any, tmp_path: Path) -> None:
    other = await other_team(app)
    chat, token = await leader_token(app, world)
    text = await go(browser, f"{base}/")
    assert "尚未登录" in text
    text = await go(browser, f"{base}/login/{token}")
    assert "总览" in text and "逾期未走访农户" in text
    cookie = await asyncio.to_thread(browser.get_cookie, "bangfu_web")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # Charts: server-side SVG with Chinese labels (week numbers like 第48周).
    labels = await asyncio.to_thread(
        lambda: [e.text for e in browser.find_elements("css selector", "svg.chart text.lbl")])
    assert any(label.startswith("第") and label.endswith("周") for label in labels), labels
    assert await errors(browser) == []
    await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "overview.png"))
    # Scope: another team's household by URL is 404, its name never shown.
    text = await go(browser, f"{base}/households/{other['household']}")
    assert "没有找到" in text and "周外村" not in text
    text = await go(browser, f"{base}/households/{world.households['张大山']}")
    assert "张大山" in text
    # The same link again (another person forwarded it): refused.
    await asyncio.to_thread(browser.delete_all_cookies)
    text = await go(browser, f"{base}/login/{token}")
    assert "已经用过" in text
    await errors(browser)  # drained: the 404 and the refused link above are expected
    # A phone-sized viewport: signed in again, the overview fits the width (no sideways scrolling).
    await chat.send("/web")
    token2 = token_of(chat.last_text)
    await asyncio.to_thread(browser.set_window_size, 390, 844)
    await go(browser, f"{base}/login/{token2}")
    widths = await asyncio.to_thread(
        browser.execute_script, "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, widths
    await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "phone.png"))
    await go(browser, f"{base}/map")
    assert await asyncio.to_thread(lambda: browser.find_elements("css selector", "svg.map circle.far"))
    assert await errors(browser) == []
    if os.environ.get("BANGFU_WEB_SHOTS"):
        shutil.copy(tmp_path / "overview.png", Path(os.environ["BANGFU_WEB_SHOTS"]) / "overview.png")
        shutil.copy(tmp_path / "phone.png", Path(os.environ["BANGFU_WEB_SHOTS"]) / "phone.png")


async def test_actions_csrf_and_chat(app: App, world: World, base: str, browser: Any) -> None:
    cadre = Chat(app, "601", "王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    did = await add_difficulty(app, world.cadre_ids[0], world.team_id, world.households["张大山"], "房屋漏雨")
    leader, token = await leader_token(app, world)
    await go(browser, f"{base}/login/{token}")
    await go(browser, f"{base}/difficulties/{did}")
    # CSRF: a tampered form token is refused and nothing changes.
    await asyncio.to_thread(browser.execute_script,
                            "document.querySelector('form[action$=\"/ack\"] input[name=csrf]').value='forged'")
    text = await click(browser, "ack", "表单已过期")
    assert "表单已过期" in text
    assert [e for e in await errors(browser) if "403" not in e] == []  # the refusal itself is the one 403
    async with app.core.sessions() as s:
        assert (await s.get(Difficulty, did)).status == "open"  # type: ignore[union-attr]
    # The real form: acknowledged on the web, seen in the chat.
    await go(browser, f"{base}/difficulties/{did}")
    text = await click(browser, "ack", "已通知反映人")
    assert "已受理" in text
    await leader.send("/difficulties")
    assert "已受理" in leader.last_text
    # Done in the chat, seen on the web.
    did2 = await add_difficulty(app, world.cadre_ids[0], world.team_id, world.households["张小山"], "缺水")
    await leader.press(DIFFICULTY_ACK.pack(did2))
    await go(browser, f"{base}/difficulties/{did2}")
    status = await asyncio.to_thread(lambda: browser.find_element("id", "status").text)
    assert status == "已受理"
    # Resolve with a note from the web.
    await asyncio.to_thread(lambda: browser.find_element("name", "note").send_keys("已修好屋顶"))
    await click(browser, "resolve", "已通知反映人")
    assert await asyncio.to_thread(lambda: browser.find_element("id", "status").text) == "已办结"
    assert await errors(browser) == []


async def test_board_and_cases_on_a_phone(app: App, world: World, base: str, browser: Any, tmp_path: Path) -> None:
    """The monitoring board, a case page and the villagers' cases at a phone-sized viewport: Chinese labels,
    no sideways scrolling, no console errors; an action from the phone reaches the case."""
    from datetime import timedelta

    from sqlalchemy import select

    from bot.store.models import Account, MonitorCase
    from tests.web.helpers import add_monitor_case, add_villager_case

    today = app.core.clock.now().date()
    late = await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "assess",
                                  started=today - timedelta(days=9), due=today - timedelta(days=2))
    await add_monitor_case(app, world.village_id, world.households["张小山"], "张小山", "verify",
                           started=today, due=today + timedelta(days=2))
    villager = Chat(app, "610", "村民")
    await bind(app, villager, household_id=world.villager_household)
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "610"))).scalar_one()
    cid = await add_villager_case(app, acc, "医保报销还没到", days_ago=10)
    _, token = await leader_token(app, world)
    await asyncio.to_thread(browser.set_window_size, 390, 844)
    await go(browser, f"{base}/login/{token}")
    text = await go(browser, f"{base}/monitoring")
    assert "防返贫监测" in text and "民主评议" in text and "入户核实" in text and "逾期 2 天" in text
    heads = await asyncio.to_thread(lambda: [e.text for e in browser.find_elements("css selector", ".column h2")])
    assert len(heads) == 10 and heads[0].startswith("乡镇受理"), heads
    color = await asyncio.to_thread(lambda: browser.find_element(
        "css selector", f'a.mcard[data-case="{late}"]').value_of_css_property("border-left-color"))
    assert color.replace(" ", "") in ("rgba(179,38,30,1)", "rgb(179,38,30)"), color  # overdue in red
    widths = await asyncio.to_thread(
        browser.execute_script, "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, widths
    await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "board.png"))
    # The overdue case: its page, its timeline, and the leader's action at the assessment step.
    text = await go(browser, f"{base}/monitoring/{late}")
    assert "办理记录" in text and "民主评议" in text
    widths = await asyncio.to_thread(
        browser.execute_script, "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, widths
    await asyncio.to_thread(lambda: browser.find_element("name", "text").send_keys("评议通过，无异议"))
    text = await click(browser, "approve", "已办理")
    assert "村内公示" in text and "评议通过，无异议" in text
    async with app.core.sessions() as s:
        assert (await s.get(MonitorCase, late)).step == "publicize"  # type: ignore[union-attr]
    # The villagers' cases: the list (late in red) and one case, answered from the phone.
    text = await go(browser, f"{base}/cases")
    assert "群众诉求" in text and "超时未回复" in text and "医保报销还没到" not in text
    await go(browser, f"{base}/cases/{cid}")
    widths = await asyncio.to_thread(
        browser.execute_script, "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, widths
    await asyncio.to_thread(lambda: browser.find_element("name", "text").send_keys("已催办"))
    text = await click(browser, "reply", "已回复")
    assert await asyncio.to_thread(lambda: browser.find_element("id", "status").text) == "已回复"
    # The cadre page's timeline chart: weeks on x in Chinese.
    await go(browser, f"{base}/cadres/{world.cadre_ids[0]}")
    labels = await asyncio.to_thread(
        lambda: [e.text for e in browser.find_elements("css selector", "svg.timeline text.lbl:not(.legend)")])
    assert len(labels) == 8 and all(x.startswith("第") and x.endswith("周") for x in labels), labels
    await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "cases.png"))
    assert await errors(browser) == []
