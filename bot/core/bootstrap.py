"""The one composition root: runners, console, scheduler, tests and benchmarks all call build_core()."""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot import logsafe
from bot.clock import Clock, SystemClock
from bot.core.engine import Core, close_cores
from bot.i18n import Catalogs
from bot.settings import Settings
from bot.store.db import create_engine, session_factory


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
    services: dict[str, Any] | None = None,
) -> App:
    """Wire settings, clock, database, catalogs, routers and dialogs into a Core. No I/O happens here
    except loading catalogs, the reminder rules and the policy knowledge base (once per process)."""
    from bot.dialogs import all_dialogs
    from bot.handlers import all_routers

    logsafe.install()  # bot tokens never reach a log line
    settings = settings or Settings()
    clock = clock or SystemClock(settings.timezone)
    engine = engine or create_engine(settings.database_url, on_loop=settings.sqlite_on_loop)
    catalogs = Catalogs(settings.locales_dir, settings.default_language)
    svc: dict[str, Any] = dict(services or {})
    if "policy" not in svc:
        svc["policy"] = _load_policy(settings)
    if "rules" not in svc:
        svc["rules"] = _load_rules(settings)
    core = Core(settings, clock, session_factory(engine), catalogs, all_routers(), all_dialogs(), svc)
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


def _load_policy(settings: Settings) -> Any:
    """Load the policy engine once at start-up (jieba's dictionary too), never lazily on a first message."""
    return _policy_engine(settings.knowledge_dir, settings.county)


@functools.lru_cache(maxsize=4)
def _policy_engine(knowledge_dir: Path, county: str | None) -> Any:
    """The loaded knowledge base is read-only, so one per (folder, county) is shared by every core in a process."""
    from bot.policy.engine import PolicyEngine

    return PolicyEngine.load(knowledge_dir, county)


def _load_rules(settings: Settings) -> Any:
    """The county's reminder rules (shipped defaults + the override file)."""
    from bot.scheduler.rules import load_rules

    return load_rules(settings.rules_file, timezone=settings.timezone)
