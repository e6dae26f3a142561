"""A message the bot could not send for a passing reason (Telegram answering 5xx) is not lost: it is in the
outbox since the update's commit, the runner hands it over, and the scheduler's sender delivers it. End to
end over the fake Bot API."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.core.bootstrap import App
from bot.scheduler.sender import Sender, SenderConfig
from bot.settings import Settings
from bot.store.models import Outbox
from tests.cadre.test_dialogs_e2e import cadre_and_leader, report_burst_pipe
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


@pytest.mark.parametrize("runner_kind", ["aiogram", "ptb"])
async def test_alert_that_failed_to_send_is_delivered_from_the_outbox(
    app: App, world: World, settings: Settings, api: FakeBotAPI, runner_kind: str
) -> None:
    async with cadre_and_leader(app, world, settings, api, runner_kind, 6201) as (runner, cadre, leader):
        await report_burst_pipe(cadre)
        mark = len(api.sent)
        api.fail_next("sendMessage", n=1, status=502, chat_id=leader.user.id)  # Telegram has a bad moment
        await cadre.press("不发照片", "已记入问题台账")  # the cadre's own answer still arrives

        async def parked() -> list[Outbox]:
            async with app.core.sessions() as s:
                return list((await s.execute(
                    select(Outbox).where(Outbox.rule == "notify", Outbox.chat_id == str(leader.user.id))
                )).scalars())

        for _ in range(100):  # the runner hands it over right after the failed send
            if [r for r in await parked() if r.last_error]:
                break
            await asyncio.sleep(0.05)
        [row] = await parked()
        assert row.status == "pending" and "Bad Gateway" in row.last_error
        assert not [m for m in api.sent_to(leader.user.id)[mark:] if "刘老四" in (m.get("text") or "")]

        # The sender (in `bangfu run`, or `bangfu scheduler`) delivers it, buttons and all.
        fast = SenderConfig(rate_per_s=100, per_chat_interval_s=0, poll_interval_s=0.05)
        sender = Sender(app.core.sessions, runner.transport, app.core.clock, app.core.services.rules,
                        app.core.catalogs, fast)
        app.core.clock.advance(seconds=2)  # type: ignore[attr-defined]  # past the short backoff
        await sender.run(asyncio.Event(), until_idle=True)
        alert = await leader.said("刘老四", since=mark)
        assert "紧急" in alert["text"]
        await leader.press("已知悉", "")  # its buttons work like the original's would have
        await cadre.said("已受理", since=mark)
    [row] = await parked()
    assert row.status == "sent"
