"""Two senders at once (two scheduler processes) against one fake Bot API server that counts violations of
Telegram's limits: on their own limiters they break the overall limit together; sharing it through the
real Redis (127.0.0.1:6379, BANGFU_TEST_REDIS_URL) they keep both limits and deliver everything once."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from fake_botapi_lite import FakeBotAPI
from sched_helpers import RunningClock, local
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.types import Reply
from bot.i18n import Catalogs
from bot.runners.http_transport import HttpTransport
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.rules import Rules
from bot.scheduler.sender import Sender, SenderConfig
from bot.scheduler.shared_limit import RedisRateLimiter
from bot.store.models import Outbox

Sessions = async_sessionmaker[AsyncSession]
REDIS_URL = os.environ.get("BANGFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RATE, GAP = 20, 1.0
CFG = SenderConfig(rate_per_s=RATE, per_chat_interval_s=GAP, poll_interval_s=0.05, batch=40)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the real Redis (skipped when none runs, failed when CI says so)."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as e:
        await client.aclose()
        if os.environ.get("BANGFU_TEST_REQUIRE_REDIS"):
            pytest.fail(f"Redis required but not reachable at {REDIS_URL}: {e!r}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"bangfu-test:{uuid.uuid4().hex}"
    try:
        yield prefix
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _two_senders(sessions: Sessions, rules: Rules, catalogs: Catalogs, prefix: str | None) -> FakeBotAPI:
    """60 messages, two to each of 30 chats, drained by two senders at once; returns the server."""
    api = FakeBotAPI(overall_limit=RATE, chat_gap=0.95)
    clock = RunningClock(local(2026, 3, 9, 10))
    msgs = [OutMessage(dedup_key=f"s:{i}", rule="t", reply=Reply(chat_id=f"c{i % 30}", text=f"m{i}", channel="telegram"))
            for i in range(60)]
    async with sessions() as s, s.begin():
        await enqueue(s, msgs, now=clock.now())
    limiters = [RedisRateLimiter.from_url(REDIS_URL, RATE, GAP, prefix=prefix) for _ in range(2)] if prefix else []
    stop = asyncio.Event()
    async with api, HttpTransport(api.token, api.url) as t1, HttpTransport(api.token, api.url) as t2:
        senders = [
            Sender(sessions, t, clock, rules, catalogs, CFG, limiters[i] if limiters else None)
            for i, t in enumerate((t1, t2))
        ]
        tasks = [asyncio.create_task(s.run(stop)) for s in senders]
        try:
            async with asyncio.timeout(30):
                while True:
                    async with sessions() as s:
                        if not (await s.scalars(select(Outbox.id).where(Outbox.status != "sent"))).first():
                            break
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

            for limiter in limiters:
                await limiter.close()
    return api


async def test_two_senders_sharing_limits_through_redis_keep_them(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs, redis_prefix: str
) -> None:
    api = await _two_senders(sqlite_sessions, rules, catalogs, redis_prefix)
    delivered = Counter(api.texts())
    assert set(delivered) == {f"m{i}" for i in range(60)} and max(delivered.values()) == 1
    assert api.violations == []  # neither 20/s overall nor 1/s per chat was broken by the two together
    span = api.accepted[-1].at - api.accepted[0].at
    assert span >= 60 / RATE - 1.1  # the pace of one sender, not two


async def test_two_senders_on_their_own_limiters_break_the_overall_limit(
    sqlite_sessions: Sessions, rules: Rules, catalogs: Catalogs
) -> None:
    """Why the shared limiter exists: each sender keeps 20/s, but together they send up to 40/s."""
    api = await _two_senders(sqlite_sessions, rules, catalogs, None)
    assert len(api.accepted) == 60
    assert any("within 1s" in v for v in api.violations)


async def test_the_scheduler_shares_limits_when_redis_is_configured(redis_prefix: str, ) -> None:
    from bot.scheduler.runner import shared_limiter
    from bot.settings import Settings

    assert shared_limiter(Settings(redis_url=None), CFG) is None  # one sender: it paces itself
    limiter = shared_limiter(Settings(redis_url=REDIS_URL), CFG)
    assert isinstance(limiter, RedisRateLimiter)
    try:
        async with limiter.turn("c1"):  # it really talks to Redis
            pass
    finally:
        await limiter.close()
