"""Notices about a difficulty: the new one to the team's managers, each status change to its reporter."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Safe, Translator
from bot.services import difficulties as dsvc
from bot.services.households import reachable_accounts
from bot.store.enums import DifficultyStatus
from bot.store.models import Difficulty, Household, Person


async def card(ctx: Ctx, t: Translator, d: Difficulty) -> str:
    """The difficulty as one message in t's language (user text escaped by the translator)."""
    reporter = await ctx.session.get(Person, d.reporter_id)
    household = await ctx.session.get(Household, d.household_id) if d.household_id else None
    assignee = await ctx.session.get(Person, d.assigned_to_id) if d.assigned_to_id else None
    card = t(
        "difficulty.card",
        id=d.id,
        category=t(f"difficulty.category.{d.category}"),
        urgency=t(f"difficulty.urgency.{d.urgency}"),
        status=t(f"difficulty.status.{d.status}"),
        scope=household.head_name if household else t("problem.whole_village"),
        reporter=reporter.name if reporter else "",
        date=t(
            "cadre.date_md",
            m=d.created_at.astimezone(ctx.core.clock.tz).month,
            d=d.created_at.astimezone(ctx.core.clock.tz).day,
        ),
        description=d.description,
    )
    if assignee is not None:
        card += "\n" + t("difficulty.card_assignee", name=assignee.name)
    if d.resolution_note:
        card += "\n" + t("difficulty.card_note", note=d.resolution_note)
    return card


def actions(t: Translator, d: Difficulty) -> InlineKeyboard | None:
    if d.status == DifficultyStatus.RESOLVED.value:
        return None
    row: list[Button] = []
    if d.status == DifficultyStatus.OPEN.value:
        row.append(Button(t("difficulty.btn_ack"), f"df:ack:{d.id}"))
    row.append(Button(t("difficulty.btn_assign"), f"df:asg:{d.id}"))
    row.append(Button(t("difficulty.btn_resolve"), f"df:res:{d.id}"))
    return InlineKeyboard((tuple(row),))


async def notify_new(ctx: Ctx, d: Difficulty) -> int:
    """Tell the team leader about a new difficulty at once; returns how many accounts were told."""
    told = 0
    for manager in await dsvc.team_managers(ctx.session, d.team_id):
        for account in await reachable_accounts(ctx.session, manager.id):
            t = ctx.core.translator_for(account)
            text = t("difficulty.new_to_leader") + "\n" + await card(ctx, t, d)
            ctx.send_to(account, "cadre.raw", actions(t, d), text=Safe(text))
            told += 1
    return told


async def tell_reporter(ctx: Ctx, d: Difficulty) -> None:
    """Each status change is told to the cadre who reported it."""
    if ctx.person is not None and ctx.person.id == d.reporter_id:
        return
    for account in await reachable_accounts(ctx.session, d.reporter_id):
        t = ctx.core.translator_for(account)
        text = t("difficulty.status_to_reporter", status=t(f"difficulty.status.{d.status}")) + "\n"
        ctx.send_to(account, "cadre.raw", text=Safe(text + await card(ctx, t, d)))
