"""Shared pieces of the monitoring dialogs and handler: number input, telling people after a move."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.core.context import Ctx
from bot.notices.monitoring import ReporterTold, StepWaiting
from bot.store.enums import MonitorStep
from bot.store.models import MonitorCase

_MONEY = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


def money(text: str | None) -> Decimal | None:
    """Yuan from untrusted text: ASCII digits, at most two decimals (commas and 元 dropped)."""
    s = (text or "").strip().replace(",", "").replace("，", "").removesuffix("元").strip()
    if not s.isascii() or not _MONEY.match(s):
        return None
    return Decimal(s)


async def tell_after(ctx: Ctx, case: MonitorCase, before: str, action: str, reason: str = "") -> None:
    """After a transition: the next step's owners, and a self-reporting household when it matters."""
    if action == "reject":
        await ctx.notify(ReporterTold(case, "mon.told.rejected", reason))
        if case.open:  # a refused closing: the household stays monitored
            await ctx.notify(StepWaiting(case))
        return
    if case.open:
        await ctx.notify(StepWaiting(case))
    if before == MonitorStep.ACCEPT.value and action == "approve":
        await ctx.notify(ReporterTold(case, "mon.told.accepted"))
    elif before == MonitorStep.COUNTY.value and action == "approve" and case.phase == "identify":
        await ctx.notify(ReporterTold(case, "mon.told.identified"))
    elif case.step == MonitorStep.CLOSED.value:
        await ctx.notify(ReporterTold(case, "mon.told.closed"))
