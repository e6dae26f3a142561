"""The outbox sender against a fake Bot API server over real HTTP, on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from fake_botapi_lite import FakeBotAPI
from sched_helpers import RunningClock, local, seed_team
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.core.types import Button, InlineKeyboard, KeyButton, Photo, Reply, ReplyKeyboard
from bot.i18n import Catalogs
from bot.runners.http_transport import HttpTransport
from bot.scheduler.outbox import OutMessage, enqueue, reply_from_dict, reply_to_dict
from bot.scheduler.rules import Rules
from bot.scheduler.sender import Sender, SenderConfig
from bot.store.models import Account, Outbox

Sessions = async_sessionmaker[AsyncSession]
FAST = SenderConfig(rate_per_s=200, per_chat_interval_s=0.05, backoff_base_s=0.01, poll_interval_s=0.05)


async def statuses(sessions: Sessions) -> Counter[str]:
    async with sessions() as s:
        return Counter((await s.scalars(select(Outbox.status))).all())


async def run_until_done(sender: Sender, sessions: Sessions, limit_s: float = 30) -> None:
    """Run the sender until no row is pending (rows put back for later included)."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        async with asyncio.timeout(limit_s):
            while (await statuses(sessions))["pending"]:  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


def test_reply_roundtrip() -> None:
    r = Reply(
        chat_id="42",
        text="<b>你好</b>",
        markup=InlineKeyboard(rows=((Button("走访", data="rm:visit:7"), Button("链接", url="https://x.y")),)),
        photo=Photo(data=b"\x89PNG\x00\xff", filename="c.png"),
        channel="telegram",
    )
    assert reply_from_dict(reply_to_dict(r)) == r
    k = Reply(chat_id="1", text="x", markup=ReplyKeyboard(rows=((KeyButton("位置", request_location=True),),),
                                                         one_time=False, placeholder="p"), format="plain", channel="telegram")
    assert reply_from_dict(reply_to_dict(k)) == k
    with pytest.raises(ValueError):
        reply_from_dict({"v": 99, "chat_id": "1"})


async def test_delivers_each_message_once_despite_429_and_502(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs
) -> None:
    api = FakeBotAPI(rate_429=0.15, rate_502=0.15, retry_after=0.1, overall_limit=200, chat_gap=0.045, seed=3)
    clock = RunningClock(local(2026, 3, 9, 10))
    msgs = [
        OutMessage(dedup_key=f"t:{i}", rule="t", reply=Reply(chat_id=f"chat{i % 40}", text=f"message {i}", channel="telegram"))
        for i in range(160)
    ]
    async with sqlite_sessions() as s, s.begin():
        assert await enqueue(s, msgs, now=clock.now(), quiet=rules) == 160
        # Enqueueing the same keys again (a re-run tick) adds nothing.
        assert await enqueue(s, msgs, now=clock.now(), quiet=rules) == 0
    async with api, HttpTransport(api.token, api.url) as transport:
        sender = Sender(sqlite_sessions, transport, clock, rules, catalogs, FAST)
        await run_until_done(sender, sqlite_sessions)
    delivered = Counter(api.texts())
    assert set(delivered) == {f"message {i}" for i in range(160)}
    assert max(delivered.values()) == 1  # nothing sent twice
    assert api.faults["429"] > 5 and api.faults["502"] > 5  # the faults really happened
    assert api.violations == []  # and the limits were kept meanwhile
    assert await statuses(sqlite_sessions) == Counter({"sent": 160})


async def test_rate_limits_are_kept(sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs) -> None:
    """At 20 msg/s overall and 1 msg/s per chat, the fake server sees no violation and the pace is right."""
    api = FakeBotAPI(overall_limit=20, chat_gap=0.95)
    clock = RunningClock(local(2026, 3, 9, 10))
    # 30 messages to 10 chats: three to each chat, so the per-chat limit matters too.
    msgs = [OutMessage(dedup_key=f"r:{i}", rule="t", reply=Reply(chat_id=f"k{i % 10}", text=f"m{i}", channel="telegram"))
            for i in range(30)]
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, msgs, now=clock.now())
    cfg = SenderConfig(rate_per_s=20, per_chat_interval_s=1.0, poll_interval_s=0.05)
    async with api, HttpTransport(api.token, api.url) as transport:
        await run_until_done(Sender(sqlite_sessions, transport, clock, rules, catalogs, cfg), sqlite_sessions)
    assert len(api.accepted) == 30 and api.violations == []
    span = api.accepted[-1].at - api.accepted[0].at
    assert span >= 1.9  # three rounds per chat need at least two seconds


async def test_blocked_chat_marks_unreachable_and_tells_leader_once(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs
) -> None:
    w = await seed_team(sqlite_sessions)
    api = FakeBotAPI(chat_gap=0.0, overall_limit=1000, blocked={w.chat[w.a]})
    clock = RunningClock(local(2026, 3, 9, 10))
    msgs = [
        OutMessage(dedup_key=f"x:{i}", rule="t", account_id=w.account[w.a],
                   reply=Reply(chat_id=w.chat[w.a], text=f"to A {i}", channel="telegram"))
        for i in range(3)
    ] + [OutMessage(dedup_key="x:b", rule="t", account_id=w.account[w.b], reply=Reply(chat_id=w.chat[w.b], text="to B", channel="telegram"))]
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, msgs, now=clock.now())
    async with api, HttpTransport(api.token, api.url) as transport:
        sender = Sender(sqlite_sessions, transport, clock, rules, catalogs, FAST)
        await run_until_done(sender, sqlite_sessions)
        # A later message to A is never tried, and the leader is not told again.
        async with sqlite_sessions() as s, s.begin():
            await enqueue(s, [OutMessage(dedup_key="x:later", rule="t", account_id=w.account[w.a],
                                         reply=Reply(chat_id=w.chat[w.a], text="later", channel="telegram"))], now=clock.now())
        await run_until_done(sender, sqlite_sessions)
    async with sqlite_sessions() as s:
        assert (await s.get(Account, w.account[w.a])).unreachable is True  # type: ignore[union-attr]
    to_leader = api.texts(w.chat[w.leader])
    assert len(to_leader) == 1 and "王建国" in to_leader[0]
    assert api.texts(w.chat[w.b]) == ["to B"]
    assert api.texts(w.chat[w.a]) == []
    assert api.faults["403"] == 1  # the other rows to A, "later" included, failed without a request
    st = await statuses(sqlite_sessions)
    assert st["failed"] == 4 and st["sent"] == 2


async def test_quiet_hours_hold_messages_until_morning(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs, fake_api: FakeBotAPI
) -> None:
    clock = FixedClock(local(2026, 3, 9, 22, 30))
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, [OutMessage(dedup_key="q:1", rule="t", reply=Reply(chat_id="9", text="早上好", channel="telegram"))],
                      now=clock.now(), quiet=rules)
        row = await s.scalar(select(Outbox))
        assert row is not None and row.not_before == local(2026, 3, 10, 7, 30)
    async with HttpTransport(fake_api.token, fake_api.url) as transport:
        sender = Sender(sqlite_sessions, transport, clock, rules, catalogs, FAST)
        for at in (local(2026, 3, 9, 23, 0), local(2026, 3, 10, 3, 0), local(2026, 3, 10, 7, 29)):
            clock.set(at)
            await sender.run(asyncio.Event(), until_idle=True)
            assert fake_api.accepted == []
        clock.set(local(2026, 3, 10, 7, 31))
        await sender.run(asyncio.Event(), until_idle=True)
    assert fake_api.texts() == ["早上好"]


async def test_sender_respects_quiet_hours_for_rows_already_due(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs, fake_api: FakeBotAPI
) -> None:
    """A row written without quiet-hours handling (e.g. by another feature) still waits at night."""
    clock = FixedClock(local(2026, 3, 9, 20, 0))
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, [OutMessage(dedup_key="q:2", rule="t", reply=Reply(chat_id="9", text="晚上", channel="telegram"))],
                      now=clock.now())
    clock.set(local(2026, 3, 9, 21, 5))
    async with HttpTransport(fake_api.token, fake_api.url) as transport:
        sender = Sender(sqlite_sessions, transport, clock, rules, catalogs, FAST)
        await sender.run(asyncio.Event(), until_idle=True)
        assert fake_api.accepted == []
        clock.set(local(2026, 3, 10, 8, 0))
        await sender.run(asyncio.Event(), until_idle=True)
    assert fake_api.texts() == ["晚上"]


async def test_photo_payload_reaches_server(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs, fake_api: FakeBotAPI
) -> None:
    clock = FixedClock(local(2026, 3, 9, 10))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    reply = Reply(chat_id="5", text="图表", photo=Photo(data=png, filename="w.png"),
                  markup=InlineKeyboard(rows=((Button("打卡", data="rm:checkin"),),)), channel="telegram")
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, [OutMessage(dedup_key="p:1", rule="t", reply=reply)], now=clock.now())
    async with HttpTransport(fake_api.token, fake_api.url) as transport:
        await Sender(sqlite_sessions, transport, clock, rules, catalogs, FAST).run(asyncio.Event(), until_idle=True)
    [got] = fake_api.accepted
    assert got.method == "sendPhoto" and got.photo_size == len(png) and got.text == "图表"
    async with sqlite_sessions() as s:
        row = await s.scalar(select(Outbox))
        assert row is not None and row.status == "sent"
        # Once sent, the bytes are dropped from the stored payload (the size is kept).
        assert row.payload["photo"]["data"] is None and row.payload["photo"]["sent_bytes"] == len(png)
    assert got.reply_markup == {"inline_keyboard": [[{"text": "打卡", "callback_data": "rm:checkin"}]]}


async def test_prune_keeps_pending_and_recent(sqlite_sessions: Sessions) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from bot.scheduler.outbox import prune

    now = local(2026, 6, 1, 9)
    async with sqlite_sessions() as s, s.begin():
        await enqueue(s, [OutMessage(dedup_key=f"p:{i}", rule="t", reply=Reply(chat_id="1", text=str(i), channel="telegram"))
                          for i in range(3)], now=now)
        await s.execute(update(Outbox).where(Outbox.dedup_key == "p:0")
                        .values(status="sent", sent_at=now - timedelta(days=120)))
        await s.execute(update(Outbox).where(Outbox.dedup_key == "p:1")
                        .values(status="sent", sent_at=now - timedelta(days=10)))
        assert await prune(s, now=now) == 1
    async with sqlite_sessions() as s:
        assert sorted((await s.scalars(select(Outbox.dedup_key))).all()) == ["p:1", "p:2"]
