"""`bangfu run` killed -9 in the middle of a burst of 300 updates and started again: every update gets
exactly one reply (both runners). Updates fetched but not finished are fetched again (the getUpdates offset
only moves past finished ones), finished ones are dropped by dedup, and messages committed but not sent
are delivered by the outbox sender.

The kill comes while Telegram stalls (the fake holds sends unanswered) and once the messages Telegram
accepted are recorded as sent: a message delivered and not yet recorded has an unknown outcome, which no
bot can settle (bot/scheduler/README.md, "After a crash"; on a loaded SQLite the recording can lag a few
hundred ms). Everything else is in flight as usual — updates fetched and not handled, handled and not
sent, sent and the getUpdates offset not yet confirmed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.store.db import create_engine
from tests.botproc import bangfu_env, start_bangfu
from tests.fakebotapi import FakeBotAPI, FakeUser

N = 300

pytestmark = pytest.mark.slow


async def _start(api: FakeBotAPI, db_url: str, kind: str, cwd: Path) -> asyncio.subprocess.Process:
    """Its output (the killed process's, then the restarted one's) is appended to out.log in `cwd`."""
    env = bangfu_env(
        BANGFU_TELEGRAM_TOKEN=api.token, BANGFU_TELEGRAM_API_URL=api.url, BANGFU_DATABASE_URL=db_url,
        BANGFU_OUTBOX_HANDOVER_S="8",
    )
    return await start_bangfu("run", "--runner", kind, cwd=cwd, env=env, stdout=open(cwd / "out.log", "ab"))  # noqa: ASYNC230


async def _confirmed(db_url: str, n: int) -> None:
    """Until n outbox rows are marked sent (the runner confirms a send with the next commit)."""
    engine = create_engine(db_url)
    try:
        async with asyncio.timeout(20):
            while True:
                async with engine.connect() as c:
                    done = (await c.execute(text("SELECT count(*) FROM outbox WHERE status = 'sent'"))).scalar_one()
                if done >= n:
                    return
                await asyncio.sleep(0.02)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["aiogram", "ptb"])
async def test_kill9_mid_burst_loses_and_duplicates_nothing(kind: str, api: FakeBotAPI, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    proc = await _start(api, db_url, kind, tmp_path)
    try:
        await api.wait_for_request("getUpdates", timeout=90)
        users = [FakeUser(900000 + i) for i in range(N)]
        for u in users:
            api.inject_message(u, "/help")
        async with asyncio.timeout(60):  # mid-burst: a good part answered, most not
            while len({str(m["chat"]["id"]) for m in api.sent}) < N // 4:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        api.hold_sends()
        answered = {str(m["chat"]["id"]) for m in api.sent}
        await _confirmed(db_url, len(answered))  # what was delivered is recorded as delivered
        proc.kill()
        await proc.wait()
        api.release_sends()
        answered_before = len({str(m["chat"]["id"]) for m in api.sent})
        assert answered_before < N  # really mid-burst

        proc = await _start(api, db_url, kind, tmp_path)
        chats = {str(u.id) for u in users}
        async with asyncio.timeout(90):
            while len({str(m["chat"]["id"]) for m in api.sent} & chats) < N:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(9)  # anything that would come twice (after the 8 s hand-over) has come
        per_chat = {c: 0 for c in chats}
        for m in api.sent:
            if str(m["chat"]["id"]) in per_chat and m["method"] == "sendMessage":
                per_chat[str(m["chat"]["id"])] += 1
        lost = [c for c, n in per_chat.items() if n == 0]
        duplicated = [c for c, n in per_chat.items() if n > 1]
        print(f"{kind}: answered before the kill {answered_before}/{N}; lost {len(lost)}, duplicated {len(duplicated)}")
        assert (lost, duplicated) == ([], [])
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
