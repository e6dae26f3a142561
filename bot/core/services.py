"""The services the bot, the scheduler, io and the CLI share, typed and built once per process.

`load_services(settings)` is the one place they come from: the county's reminder rules (the shipped
defaults merged with the county's file, read once per process) and the policy knowledge base with its
parser (loaded once per knowledge folder and county). `build_core` puts them on `Core.services`; the
scheduler, the io commands and the CLI call `load_services` / `county_rules` themselves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.scheduler.rules import Rules, load_rules
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.policy.engine import PolicyEngine


@dataclass(frozen=True)
class Services:
    """What handlers and dialogs reach through `ctx.core.services`."""

    rules: Rules  # the county's reminder rules: seasons, visit cadence, village days
    policy: PolicyEngine | None = None  # answers policy questions; None: questions are logged, not answered


def load_services(settings: Settings, *, policy: bool = True) -> Services:
    """The process's services for these settings (each part loaded once per process)."""
    return Services(
        rules=county_rules(settings),
        policy=policy_engine(settings.knowledge_dir, settings.county) if policy else None,
    )


def county_rules(settings: Settings) -> Rules:
    """The county's reminder rules: the shipped defaults merged with `settings.rules_file`."""
    return _rules(settings.rules_file, settings.timezone)


@functools.lru_cache(maxsize=8)
def _rules(rules_file: Path | None, timezone: str) -> Rules:
    return load_rules(rules_file, timezone=timezone)


@functools.lru_cache(maxsize=4)
def policy_engine(knowledge_dir: Path, county: str | None) -> PolicyEngine:
    """The loaded knowledge base is read-only, so one per (folder, county) is shared by every core in a
    process. Loaded at start-up (jieba's dictionary too), never lazily on a first message."""
    from bot.policy.engine import PolicyEngine  # jieba and the knowledge base: only for processes that answer

    return PolicyEngine.load(knowledge_dir, county)
