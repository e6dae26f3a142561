"""Notices that follow a visit: the team leader's alerts (far location, a villager's "no"), and the
villager's confirmation request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.buttons import CONFIRM_VISIT
from bot.core.context import Ctx, Rendered
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Translator
from bot.services import visits as vs
from bot.services.households import household_accounts, reachable_accounts
from bot.services.people import team_leader
from bot.services.texts import date_text, distance_text
from bot.store.models import Account, Household, Person, Visit

CONFIRM_WITHIN_DAYS = 7  # villagers are asked to confirm visits of the last week only


async def leader_accounts(ctx: Ctx, cadre: Person) -> list[Account]:
    """The reachable accounts of cadre's team leader (none when the cadre leads the team)."""
    leader = await team_leader(ctx.session, cadre)
    if leader is None or leader.id == cadre.id:
        return []
    return await reachable_accounts(ctx.session, leader.id)


@dataclass(frozen=True)
class _ToLeader:
    """A notice about one visit for the cadre's team leader."""

    cadre: Person
    household: Household
    visit: Visit

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await leader_accounts(ctx, self.cadre)


@dataclass(frozen=True)
class FarVisit(_ToLeader):
    """A visit saved far from the household's location: the cadre's team leader is told."""

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(
            t(
                "visit.far_to_leader",
                cadre=self.cadre.name,
                name=self.household.head_name,
                date=date_text(t, self.visit.visit_date, ctx.today.year),
                distance=distance_text(t, self.visit.distance_m or 0),
            )
        )


@dataclass(frozen=True)
class VisitDenied(_ToLeader):
    """The household answered "no, nobody came": the cadre's team leader is told."""

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(
            t(
                "visit.denied_to_leader",
                cadre=self.cadre.name,
                name=self.household.head_name,
                date=date_text(t, self.visit.visit_date, ctx.today.year),
            )
        )


@dataclass(frozen=True)
class ConfirmRequest:
    """A short, polite question to the household's bound account(s). No answer is no mark against anyone.

    Only for recent visits: nobody can confirm a visit back-filled from months ago, and a cadre
    catching up on the ledger must not flood a family with questions.
    """

    visit: Visit
    cadre: Person

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        if (ctx.today - self.visit.visit_date).days > CONFIRM_WITHIN_DAYS:
            return []
        return await household_accounts(ctx.session, self.visit.household_id)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        v = self.visit
        when = t("visit.confirm_today") if v.visit_date == ctx.today else t("cadre.date_md", m=v.visit_date.month,
                                                                             d=v.visit_date.day)
        buttons = InlineKeyboard(
            ((Button(t("visit.confirm_yes"), CONFIRM_VISIT.pack(v.id, "y")), Button(t("visit.confirm_no"), CONFIRM_VISIT.pack(v.id, "n"))),)
        )
        return Rendered(t("visit.confirm_ask", when=when, surname=vs.surname(self.cadre.name)), buttons)
