"""Running the scheduler: APScheduler (AsyncIOScheduler, in memory) for the tick, plus the outbox sender.

There is one cron job, a tick at the top of every minute (and once at start), which runs whatever
rules are due for the current local time; and one long-running task, the sender. No job per user
and no persistent job store: what is due lives in the database, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.core.services import county_rules
from bot.core.transports import Transports
from bot.core.types import Transport
from bot.i18n import Catalogs
from bot.scheduler import figures
from bot.scheduler.member_limits import channel_limiters
from bot.scheduler.rules import Rules
from bot.scheduler.sender import Sender, SenderConfig
from bot.scheduler.tick import TickResult, run_tick
from bot.settings import Settings
from bot.store.db import create_engine, session_factory

log = logging.getLogger(__name__)


async def safe_tick(sessions: async_sessionmaker[AsyncSession], rules: Rules, catalogs: Catalogs,
                    clock: Clock, draft_keep_days: int = 7) -> TickResult | None:
    """One tick; an error is logged and the next minute tries again (ticks are idempotent)."""
    try:
        return await run_tick(sessions, rules, catalogs, clock.now(), draft_keep_days=draft_keep_days)
    except Exception:
        log.exception("scheduler tick failed")
        return None


def shared_limiter(settings: Settings, cfg: SenderConfig) -> Any:
    """With BANGFU_REDIS_URL, Telegram's send limits shared by every sender process through Redis (several
    scheduler processes or webhook workers at once); without it, None: each sender paces itself."""
    if not settings.redis_url:
        return None
    from bot.scheduler.shared_limit import RedisRateLimiter

    log.info("send limits shared through Redis at %s", settings.redis_url)
    return RedisRateLimiter.from_url(settings.redis_url, cfg.rate_per_s, cfg.per_chat_interval_s)


async def run_scheduler(
    settings: Settings,
    clock: Clock,
    transport: Transport | Transports,
    stop_event: asyncio.Event,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    rules: Rules | None = None,
    catalogs: Catalogs | None = None,
    sender_config: SenderConfig | None = None,
) -> None:
    """Tick every minute and drain the outbox until stop_event is set (`bangfu scheduler`). `transport`:
    one channel's transport, or a `Transports` registry when the outbox holds several channels.

    Pass `sessions` / `catalogs` / `rules` to share them with a bot in the same process.
    """
    engine = None
    if sessions is None:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
    rules = rules or county_rules(settings)
    catalogs = catalogs or Catalogs(settings.locales_dir, settings.default_language)
    sched = AsyncIOScheduler(timezone=rules.tz)
    ticking = asyncio.Lock()

    async def tick() -> None:
        async with ticking:
            await safe_tick(sessions, rules, catalogs, clock, settings.draft_keep_days)
            await figures.tick_refresh(sessions, rules, clock.now())  # the web dashboard's figures

    sched.add_job(
        tick,
        CronTrigger(second=0, timezone=rules.tz),
        id="tick",
        max_instances=1,  # a slow tick is not overlapped by the next one...
        coalesce=True,  # ...and missed minutes collapse into one run
        misfire_grace_time=50,
        next_run_time=datetime.now(rules.tz),  # one tick right away: catch up after a restart
    )
    limiter = shared_limiter(settings, sender_config or SenderConfig())
    transports = Transports.of(transport)
    limiters = channel_limiters((t.channel for t in transports), settings.redis_url)
    sender = Sender(sessions, transports, clock, rules, catalogs, sender_config, limiter, limiters)
    sched.start()
    log.info("scheduler started (timezone %s)", rules.timezone)
    try:
        await sender.run(stop_event)
    finally:
        # Let a tick in progress finish (its outbox rows are one transaction) rather than cancel it mid-way.
        sched.pause()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await ticking.acquire()
        sched.shutdown(wait=False)
        if engine is not None:
            await engine.dispose()
        if limiter is not None:
            await limiter.close()
        for own in limiters.values():
            if hasattr(own, "close"):
                await own.close()
        log.info("scheduler stopped")
