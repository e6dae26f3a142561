"""The one composition root: runners, console, scheduler, tests and benchmarks all call build_core().

The only module of bot/core that knows the features (bot/handlers, bot/dialogs): it wires them in."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot import logsafe
from bot.clock import Clock, SystemClock
from bot.core.engine import Core, close_cores
from bot.core.services import Services, load_services
from bot.dialogs import all_dialogs
from bot.handlers import all_routers
from bot.i18n import Catalogs
from bot.services.menu import commands_for
from bot.settings import Settings
from bot.store.db import create_engine, is_sqlite, session_factory


@dataclass
class App:
    core: Core
    engine: AsyncEngine

    async def close(self) -> None:
        await close_cores(self.engine)
        await self.engine.dispose()


def build_core(
    settings: Settings | None = None,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    services: Services | None = None,
) -> App:
    """Wire settings, clock, database, catalogs, services, routers and dialogs into a Core. No I/O happens
    here except loading catalogs, the reminder rules and the policy knowledge base (once per process)."""
    logsafe.install()  # bot tokens never reach a log line
    settings = settings or Settings()
    clock = clock or SystemClock(settings.timezone)
    if engine is None:
        # PostgreSQL: the pool sized for this process's updates in flight (Settings.pool_size); SQLite's
        # own pool (one writer) is create_engine's.
        pool = {} if is_sqlite(settings.database_url) else {"pool_size": settings.pool_size()}
        engine = create_engine(settings.database_url, on_loop=settings.sqlite_on_loop, **pool)
    catalogs = Catalogs(settings.locales_dir, settings.default_language)
    services = services or load_services(settings)
    core = Core(
        settings, clock, session_factory(engine), catalogs, all_routers(), all_dialogs(), services, commands_for
    )
    return App(core, engine)


def freeze_startup_heap() -> int:
    """Take everything allocated at start-up (the knowledge base, jieba's dictionary, catalogs, SQLAlchemy's
    mappers and compiled statements) out of the cyclic garbage collector's sight; returns how many objects.

    Those objects live as long as the process, yet every full collection walks them all: measured in
    bench/core_bench.py, one full collection stalled every user for ~70 ms. After a freeze it took ~2 ms.
    Call it once, when start-up is done, before serving updates.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
