"""Notices that follow a visit: the team leader's alert, the villager's confirmation request."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard
from bot.services import visits as vs
from bot.services.households import household_accounts, reachable_accounts
from bot.services.people import team_leader
from bot.store.models import Person, Visit

CONFIRM_WITHIN_DAYS = 7  # villagers are asked to confirm visits of the last week only


async def notify_leader(
    ctx: Ctx, about: Person, key: str, markup: InlineKeyboard | None = None, **args: object
) -> int:
    """Tell the team leader of cadre `about` (every reachable account); returns how many were told."""
    leader = await team_leader(ctx.session, about)
    if leader is None or leader.id == about.id:
        return 0
    accounts = await reachable_accounts(ctx.session, leader.id)
    for account in accounts:
        # An argument may be a function of the reader's translator (dates, distances in their language).
        t = ctx.core.translator_for(account)
        ctx.send_to(account, key, markup, **{k: v(t) if callable(v) else v for k, v in args.items()})
    return len(accounts)


async def ask_villager(ctx: Ctx, visit: Visit, cadre: Person) -> None:
    """A short, polite question to the household's bound account(s). No answer is no mark against anyone.

    Only for recent visits: nobody can confirm a visit back-filled from months ago, and a cadre
    catching up on the ledger must not flood a family with questions.
    """
    if (ctx.today - visit.visit_date).days > CONFIRM_WITHIN_DAYS:
        return
    accounts = await household_accounts(ctx.session, visit.household_id)
    for account in accounts:
        t = ctx.core.translator_for(account)
        when = (
            t("visit.confirm_today")
            if visit.visit_date == ctx.today
            else t("cadre.date_md", m=visit.visit_date.month, d=visit.visit_date.day)
        )
        ctx.send_to(
            account,
            "visit.confirm_ask",
            InlineKeyboard(
                (
                    (
                        Button(t("visit.confirm_yes"), f"vc:{visit.id}:y"),
                        Button(t("visit.confirm_no"), f"vc:{visit.id}:n"),
                    ),
                )
            ),
            when=when,
            surname=vs.surname(cadre.name),
        )
