"""The sender routes each outbox row by its channel to that channel's transport (a registry), and leaves
a row whose channel has no transport in this process to a process that has one (never sending it through
the wrong one)."""

from __future__ import annotations

import asyncio
from collections import Counter

from sched_helpers import local
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.core.transports import Transports
from bot.core.types import Outgoing, Reply
from bot.i18n import Catalogs
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.rules import Rules
from bot.scheduler.sender import Sender, SenderConfig
from bot.store.models import Outbox

FAST = SenderConfig(rate_per_s=200, per_chat_interval_s=0.0, backoff_base_s=0.01, poll_interval_s=0.05)


class Recorder:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[Outgoing] = []

    async def send(self, action: Outgoing) -> str | None:
        self.sent.append(action)
        return str(len(self.sent))

    async def download(self, file_id: str) -> bytes:
        return b""


async def test_rows_go_to_their_channels_transport(
    sqlite_sessions: async_sessionmaker[AsyncSession], rules: Rules, catalogs: Catalogs
) -> None:
    clock = FixedClock(local(2026, 3, 9, 10))
    rows = [
        OutMessage(dedup_key="c:1", rule="t", reply=Reply(chat_id="1", text="<b>电报</b>", channel="telegram")),
        OutMessage(dedup_key="c:2", rule="t", reply=Reply(chat_id="2", text="控制台", channel="console")),
        OutMessage(dedup_key="c:3", rule="t", reply=Reply(chat_id="3", text="企业微信", channel="wecom")),
    ]
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, rows, now=clock.now())
    telegram, console = Recorder("telegram"), Recorder("console")
    sender = Sender(sqlite_sessions, Transports(telegram, console), clock, rules, catalogs, FAST)
    await sender.run(asyncio.Event(), until_idle=True)
    assert [a.text for a in telegram.sent if isinstance(a, Reply)] == ["<b>电报</b>"]
    assert [a.text for a in console.sent if isinstance(a, Reply)] == ["控制台"]
    async with sqlite_sessions() as s:
        status = {key: st for key, st in (await s.execute(select(Outbox.dedup_key, Outbox.status))).all()}
    assert status == {"c:1": "sent", "c:2": "sent", "c:3": "pending"}
    assert Counter(status.values()) == Counter({"sent": 2, "pending": 1})
    # A WeCom process takes it.
    wecom = Recorder("wecom")
    await Sender(sqlite_sessions, Transports(wecom), clock, rules, catalogs, FAST).run(asyncio.Event(), until_idle=True)
    assert [a.text for a in wecom.sent if isinstance(a, Reply)] == ["企业微信"]
