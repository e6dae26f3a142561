"""A leader's nudge from /overdue: the cadre is told, politely, which paired households are overdue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.context import Ctx, Rendered
from bot.i18n import Safe, Translator
from bot.scheduler import render
from bot.scheduler.due import HouseholdDue
from bot.services.households import reachable_accounts
from bot.store.models import Account, Person


@dataclass(frozen=True)
class OverdueNudge:
    """The cadre's overdue households (by the /overdue rule), with a "log a visit" button for each."""

    cadre: Person
    leader: Person
    households: Sequence[HouseholdDue]
    cadence_days: int

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await reachable_accounts(ctx.session, self.cadre.id)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        rows = self.households
        head = t(
            "leader.nudge.to_cadre",
            cadre=self.cadre.name,
            leader=self.leader.name,
            n=len(rows),
            cadence=self.cadence_days,
        )
        lines = [
            t("leader.nudge.line", head=r.head_name, code=r.household_code, days=r.days_overdue) for r in rows
        ]
        return Rendered(
            t("cadre.raw", text=Safe(render.join_limited(t, head, lines))), render.visit_buttons(t, rows)
        )
