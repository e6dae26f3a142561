"""/checkin, /problem (to the leader and back) and /households with a forged button, end to end: the real
runners over HTTP against the fake Bot API server, one bot serving a cadre and the team leader."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.bootstrap import App
from bot.settings import Settings
from bot.store.models import CheckIn, Difficulty
from tests.cadre.conftest import rows
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import make_runner, telegram_settings

# The dialogs run on both databases in the chat-driver tests; these are about the Telegram path.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


class Phone:
    """One Telegram user's side of the conversation with the fake server."""

    def __init__(self, api: FakeBotAPI, user: FakeUser) -> None:
        self.api, self.user = api, user

    async def said(self, fragment: str, since: int | None = None) -> dict[str, Any]:
        return await self.api.wait_for_sent(
            self.user.id, lambda m: fragment in (m.get("text") or m.get("caption") or ""), since=since
        )

    def send(self, text: str) -> None:
        self.api.inject_message(self.user, text)

    async def press(self, label: str, then: str) -> dict[str, Any]:
        """Press the newest button with this label that the bot showed this user."""
        for m in reversed(self.api.sent_to(self.user.id)):
            markup = (m.get("params") or {}).get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for b in row:
                    if label in b["text"]:
                        self.api.inject_callback(self.user, b["callback_data"], m)
                        return await self.said(then)
        raise AssertionError(f"no button {label!r} shown to {self.user.id}")


async def _login(app: App, phone: Phone, person_id: int, name: str) -> None:
    from bot.services.onboarding import create_invite
    from bot.store.models import Person

    async with app.core.sessions() as s, s.begin():
        code = (await create_invite(s, app.core.clock.now(), person=await s.get(Person, person_id))).code
    phone.send(f"/start {code}")
    await phone.said(name)


async def report_burst_pipe(cadre: Phone) -> None:
    """/problem for 刘老四's frozen water pipe, urgent, up to the question about a photo."""
    cadre.send("/problem")
    await cadre.said("是哪一户的困难")
    cadre.send("刘老")
    await cadre.said("是哪方面的困难")
    await cadre.press("饮水安全", "请说说具体情况")
    cadre.send("自来水管冻裂，全家没水喝")
    await cadre.said("有多急")
    await cadre.press("紧急", "有照片可以发一张")


@contextlib.asynccontextmanager
async def cadre_and_leader(
    app: App, world: World, settings: Settings, api: FakeBotAPI, runner_kind: str, user_id: int
) -> AsyncIterator[tuple[Any, Phone, Phone]]:
    """A started runner with the world's first cadre (Telegram user `user_id`) and the team leader
    (`user_id + 1`) logged in; the runner stops on the way out."""
    runner = make_runner(runner_kind, app, telegram_settings(settings, api))
    await runner.start()
    try:
        cadre = Phone(api, FakeUser(user_id, "建国"))
        leader = Phone(api, FakeUser(user_id + 1, "队长"))
        await _login(app, cadre, world.cadre_ids[0], "王建国")
        await _login(app, leader, world.leader_id, "赵队长")
        yield runner, cadre, leader
    finally:
        await runner.stop()


@pytest.mark.parametrize("runner_kind", ["aiogram", "ptb"])
async def test_checkin_problem_and_forged_button_over_http(
    app: App, world: World, settings: Settings, api: FakeBotAPI, runner_kind: str
) -> None:
    async with cadre_and_leader(app, world, settings, api, runner_kind, 6101) as (_runner, cadre, leader):

        # Village-day check-in: one tap plus the location; the week's count comes back.
        cadre.send("/checkin")
        ask = await cadre.said("发送我现在的位置")
        assert ask["params"]["reply_markup"]["keyboard"][0][0].get("request_location") is True
        api.inject_location(cadre.user, 25.0, 102.7)
        await cadre.said("本周已驻村1天，还差1天")

        # A forged button naming another cadre's household is refused.
        api.inject_callback(cadre.user, f"hh:o:{world.households['陈秀英']}")
        refused = await cadre.said("不能查看")
        assert "陈秀英" not in refused["text"]

        # A difficulty reaches the leader at once; the leader's resolution reaches the cadre.
        mark = len(api.sent)
        await report_burst_pipe(cadre)
        await cadre.press("不发照片", "已记入问题台账")
        alert = await leader.said("刘老四", since=mark)
        assert "紧急" in alert["text"]
        await leader.press("已知悉", "")
        await cadre.said("已受理", since=mark)
        await leader.press("已解决", "")
        leader.send("已联系水务站，明天换管")
        done = await cadre.said("已办结", since=mark)
        assert "明天换管" in done["text"]

    assert len(await rows(app, CheckIn)) == 1
    [d] = await rows(app, Difficulty)
    assert d.status == "resolved" and d.resolution_note == "已联系水务站，明天换管"
