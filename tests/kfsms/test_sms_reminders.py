"""Reminders to a cadre who chose SMS: the outbox sender sends them as the approved template through the
SMS transport, and the per-number limits put the extra ones back in the outbox (zero violations)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels.sms.cli import prefer
from bot.channels.sms.sender import SmsSender
from bot.channels.sms.transport import SmsTransport, first_line
from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.scheduler.member_limits import channel_limiters
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.sender import Sender, SenderConfig
from bot.store.models import Outbox, Person
from tests.conftest import World
from tests.fakesms import FakeSms


def test_first_line_fits_the_template_variable() -> None:
    assert first_line("\n本周还有 3 户未走访\n张大山、张小山") == "本周还有 3 户未走访"
    assert len(first_line("很" * 80)) == 35


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_reminders_by_sms_within_the_limits(app: App, world: World, sms: SmsSender, fakesms: FakeSms,
                                                  clock: FixedClock) -> None:
    clock.set(clock.now().astimezone(clock.tz).replace(hour=10, minute=0))
    async with app.core.sessions() as s, s.begin():
        cadre = await s.get(Person, world.cadre_ids[0])
        assert cadre is not None
        account = await prefer(s, cadre, clock.now())
        msgs = [OutMessage(dedup_key=f"visit.cadre:w{i}:a{account.id}", rule="visit.cadre", account_id=account.id,
                           reply=Reply(chat_id=account.chat_id, text=f"<b>本周还有 {i} 户未走访</b>\n张大山",
                                       channel="sms")) for i in (1, 2, 3)]
        await enqueue(s, msgs, now=clock.now())
    transport = SmsTransport(sms, app.core.sessions)
    cfg = SenderConfig(poll_interval_s=0.01, backoff_base_s=0.01)
    sender = Sender(app.core.sessions, transport, clock, app.core.services.rules, app.core.catalogs, cfg,
                    limiters=channel_limiters(["sms"]))
    await asyncio.wait_for(sender.run(asyncio.Event(), until_idle=True), 20)
    [m] = fakesms.sent
    assert m.phone == "13900000001" and m.params["name"] == "王建国" and m.params["what"].startswith("本周还有")
    for _ in range(2):
        clock.advance(seconds=61)
        await asyncio.wait_for(sender.run(asyncio.Event(), until_idle=True), 20)
    assert sorted(x.params["what"] for x in fakesms.sent) == [f"本周还有 {i} 户未走访" for i in (1, 2, 3)]
    assert fakesms.violations == []
    assert all(b.at - a.at >= timedelta(seconds=60) for a, b in zip(fakesms.sent, fakesms.sent[1:], strict=False))
    async with app.core.sessions() as s:
        assert {r.status for r in (await s.execute(select(Outbox))).scalars()} == {"sent"}
