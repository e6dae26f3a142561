"""Handlers: one router per feature. The order here is the order they are consulted in;
the catch-all free-text route (policy questions) comes last."""

from __future__ import annotations

from bot.core.router import Router
from bot.handlers import (
    cases,
    checkin,
    difficulties,
    households,
    lang,
    leader,
    monitoring,
    policy,
    start,
    visits,
)


def all_routers() -> list[Router]:
    """Every feature's router, in dispatch order."""
    cadre = [households.router, visits.router, checkin.router, difficulties.router, monitoring.router]
    return [start.router, lang.router, leader.router, *cadre, cases.router, policy.router]
