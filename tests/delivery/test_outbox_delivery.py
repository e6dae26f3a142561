"""Delivery: every message of an update is in the outbox from the update's commit, sent once by the runner
or else by the sender; faults (a proxy's 502 page, a lost answer, a long 429, a process dying after the
commit) lose nothing and duplicate only what the documented per-kind policy allows. Both runners over the
fake Bot API; the dedup key carries the bot's id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.bootstrap import App
from bot.core.types import Incoming, Reply, User
from bot.scheduler.outbox import reply_to_dict
from bot.scheduler.sender import Sender, SenderConfig, SenderStats
from bot.settings import Settings
from bot.store.models import Outbox
from tests.cadre.test_dialogs_e2e import Phone, cadre_and_leader, report_burst_pipe
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import RUNNERS, make_runner, telegram_settings

FAST = SenderConfig(rate_per_s=100, per_chat_interval_s=0, poll_interval_s=0.05, backoff_base_s=0.01)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def rows(app: App, *where: Any) -> list[Outbox]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(Outbox).where(*where).order_by(Outbox.id))).scalars())


async def settle(app: App, predicate: Any, timeout: float = 5.0) -> list[Outbox]:  # noqa: ASYNC109
    """Outbox rows once predicate(rows) holds (the runner writes confirmations a few ms after a send)."""
    async with asyncio.timeout(timeout):
        while not predicate(found := await rows(app)):  # noqa: ASYNC110
            await asyncio.sleep(0.03)
    return found


async def drain(app: App, transport: Any) -> SenderStats:
    sender = Sender(app.core.sessions, transport, app.core.clock, app.core.services.rules, app.core.catalogs, FAST)
    return await sender.run(asyncio.Event(), until_idle=True)


def texts_to(api: FakeBotAPI, chat: int, fragment: str, since: int = 0) -> list[str]:
    return [m.get("text") or "" for m in api.sent[since:]
            if str(m["chat"]["id"]) == str(chat) and fragment in (m.get("text") or "")]


# ------------------------------------------------------------------------------------- dedup key
async def test_dedup_is_per_bot(app: App) -> None:
    """A new bot token (or a Bot API server numbering from 1 again) is not dropped as redelivered."""
    def help_from(bot_id: str) -> Incoming:
        return Incoming("telegram", User("77", "x"), "77", update_id="1", text="/help", command="help", bot_id=bot_id)

    assert (await app.core.handle(help_from("111"))).actions
    assert (await app.core.handle(help_from("222"))).actions  # the same update id, another bot
    assert not (await app.core.handle(help_from("222"))).actions  # really redelivered: dropped


async def test_replies_are_outbox_rows_of_the_update_transaction(app: App) -> None:
    app.core.use_outbox(30.0, reply_to_dict)
    inc = Incoming("telegram", User("78", "x"), "78", update_id="5", text="/help", command="help", bot_id="9")
    replies = [a for a in (await app.core.handle(inc)).actions if isinstance(a, Reply)]
    assert replies and all(r.outbox_key for r in replies)
    found = await rows(app)
    assert [r.dedup_key for r in found] == [r.outbox_key for r in replies]
    assert {r.rule for r in found} == {"reply"} and {r.status for r in found} == {"pending"}
    start = app.core.clock.now()
    assert all(abs((r.not_before.replace(tzinfo=start.tzinfo) - start).total_seconds() - 30) < 1 for r in found)
    # A redelivered update writes nothing twice.
    assert not (await app.core.handle(inc)).actions
    assert len(await rows(app)) == len(found)


# ------------------------------------------------------------------------------------- faults
@sqlite_only
@pytest.mark.parametrize("kind", RUNNERS)
async def test_proxy_502_page_loses_nothing(kind: str, app: App, settings: Settings, api: FakeBotAPI) -> None:
    runner = make_runner(kind, app, telegram_settings(settings, api))
    await runner.start()
    try:
        api.fail_next_html("sendMessage", n=1, status=502)
        api.inject_message(FakeUser(7101), "/help")
        [row] = await settle(app, lambda rs: len(rs) == 1 and rs[0].last_error)
        assert row.status == "pending" and not api.sent_to(7101)
        app.core.clock.advance(seconds=2)  # type: ignore[attr-defined]
        stats = await drain(app, runner.transport)
        assert stats.sent == 1 and len(api.sent_to(7101)) == 1
        assert [r.status for r in await rows(app)] == ["sent"]
    finally:
        await runner.stop()


@sqlite_only
@pytest.mark.parametrize("kind", RUNNERS)
async def test_long_429_is_honoured(kind: str, app: App, settings: Settings, api: FakeBotAPI) -> None:
    """A reply answered 429 retry_after=40 is not sent again before 40 s have passed (time-travel clock)."""
    runner = make_runner(kind, app, telegram_settings(settings, api))
    await runner.start()
    try:
        api.fail_next("sendMessage", n=1, status=429, retry_after=40)
        api.inject_message(FakeUser(7102), "/help")
        await settle(app, lambda rs: len(rs) == 1 and rs[0].last_error)
        app.core.clock.advance(seconds=0.4)  # type: ignore[attr-defined]
        assert (await drain(app, runner.transport)).sent == 0
        app.core.clock.advance(seconds=20)  # type: ignore[attr-defined]
        assert (await drain(app, runner.transport)).sent == 0
        assert not api.sent_to(7102)
        app.core.clock.advance(seconds=20)  # type: ignore[attr-defined]
        assert (await drain(app, runner.transport)).sent == 1
        assert len(api.sent_to(7102)) == 1
    finally:
        await runner.stop()


@sqlite_only
@pytest.mark.parametrize("kind", RUNNERS)
async def test_lost_answer_own_reply_resent_once(kind: str, app: App, settings: Settings, api: FakeBotAPI) -> None:
    """The user's own reply whose answer was lost is sent once more (documented at-least-once for "reply")."""
    runner = make_runner(kind, app, telegram_settings(settings, api))
    await runner.start()
    try:
        api.lose_response_next("sendMessage", n=1)
        api.inject_message(FakeUser(7103), "/help")
        await settle(app, lambda rs: len(rs) == 1 and rs[0].last_error.startswith("outcome unknown"))
        assert len(api.sent_to(7103)) == 1  # delivered, though the runner could not know
        stats = await drain(app, runner.transport)
        assert (stats.sent, stats.unknown_resent) == (1, 1)
        assert len(api.sent_to(7103)) == 2
        assert (await drain(app, runner.transport)).sent == 0  # and never a third time
    finally:
        await runner.stop()


@sqlite_only
@pytest.mark.parametrize("kind", RUNNERS)
async def test_lost_answer_leader_alert_not_resent_and_kill_after_commit(
    kind: str, app: App, world: World, settings: Settings, api: FakeBotAPI
) -> None:
    async with cadre_and_leader(app, world, settings, api, kind, 7110) as (runner, cadre, leader):
        # 1. The leader's alert is accepted but its answer lost: it is not sent again (at-most-once).
        await report_burst_pipe(cadre)
        mark = len(api.sent)
        api.lose_response_next("sendMessage", n=1, chat_id=leader.user.id)
        await cadre.press("不发照片", "已记入问题台账")
        await settle(app, lambda rs: [r for r in rs if r.rule == "notify" and r.status == "unknown"])
        alert_rows = [r for r in await rows(app) if r.rule == "notify" and r.status == "unknown"]
        assert len(alert_rows) == 1
        assert len(texts_to(api, leader.user.id, "刘老四", mark)) == 1
        stats = await drain(app, runner.transport)
        assert stats.sent == 0 and len(texts_to(api, leader.user.id, "刘老四", mark)) == 1

        # 2. The process dies right after the commit, before sending anything: the cadre's reply and the
        #    leader's alert are in the outbox and the sender delivers each exactly once.
        cadre2 = Phone(api, cadre.user)
        await report_burst_pipe(cadre2)
        mark = len(api.sent)
        alive = runner.bridge.transport

        class Dead:
            channel = "telegram"

            async def send(self, action: Any) -> None:
                raise ConnectionAbortedError("process killed")

        runner.bridge.transport = Dead()
        before = {r.id for r in await rows(app)}
        [cb] = [m for m in reversed(api.sent_to(cadre.user.id)) if "不发照片" in str(m.get("params"))][:1]
        button = next(b for row in cb["params"]["reply_markup"]["inline_keyboard"] for b in row if "不发照片" in b["text"])
        api.inject_callback(cadre.user, button["callback_data"], cb)
        new = await settle(app, lambda rs: len([r for r in rs if r.id not in before]) >= 2)
        runner.bridge.transport = alive
        fresh = [r for r in new if r.id not in before]
        assert {r.rule for r in fresh} == {"reply", "notify"} and {r.status for r in fresh} == {"pending"}
        assert len(api.sent) == mark  # nothing went out
        app.core.clock.advance(seconds=31)  # type: ignore[attr-defined]  # past the hand-over time
        stats = await drain(app, alive)
        assert stats.sent == len(fresh)
        assert len(texts_to(api, cadre.user.id, "已记入问题台账", mark)) == 1
        assert len(texts_to(api, leader.user.id, "刘老四", mark)) == 1
        assert (await drain(app, alive)).sent == 0
