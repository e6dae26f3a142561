"""Notices about a difficulty: a new one to the team's managers, each status change to its reporter,
an assignment to the assignee. `card` and `actions` are also the leader's own view of one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.buttons import DIFFICULTY_ACK, DIFFICULTY_ASSIGN, DIFFICULTY_RESOLVE
from bot.core.context import Ctx, Rendered
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Safe, Translator
from bot.services import difficulties as dsvc
from bot.services.households import reachable_accounts
from bot.store.enums import DifficultyStatus
from bot.store.models import Account, Difficulty, Household, Person


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
        row.append(Button(t("difficulty.btn_ack"), DIFFICULTY_ACK.pack(d.id)))
    row.append(Button(t("difficulty.btn_assign"), DIFFICULTY_ASSIGN.pack(d.id)))
    row.append(Button(t("difficulty.btn_resolve"), DIFFICULTY_RESOLVE.pack(d.id)))
    return InlineKeyboard((tuple(row),))


@dataclass(frozen=True)
class NewDifficulty:
    """A difficulty just reported: the team's managers are told at once, with buttons to act on it."""

    difficulty: Difficulty

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        accounts: list[Account] = []
        for manager in await dsvc.team_managers(ctx.session, self.difficulty.team_id):
            accounts += await reachable_accounts(ctx.session, manager.id)
        return accounts

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        d = self.difficulty
        text = t("difficulty.new_to_leader") + "\n" + await card(ctx, t, d)
        return Rendered(t("cadre.raw", text=Safe(text)), actions(t, d))


@dataclass(frozen=True)
class StatusChanged:
    """Each status change is told to the cadre who reported the difficulty (unless they made it)."""

    difficulty: Difficulty

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        if ctx.person is not None and ctx.person.id == self.difficulty.reporter_id:
            return []
        return await reachable_accounts(ctx.session, self.difficulty.reporter_id)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        d = self.difficulty
        text = t("difficulty.status_to_reporter", status=t(f"difficulty.status.{d.status}")) + "\n"
        return Rendered(t("cadre.raw", text=Safe(text + await card(ctx, t, d))))


@dataclass(frozen=True)
class AssignedToYou:
    """A difficulty assigned to someone other than the one assigning it: the assignee is told."""

    difficulty: Difficulty
    assignee: Person

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        if ctx.person is not None and ctx.person.id == self.assignee.id:
            return []
        return await reachable_accounts(ctx.session, self.assignee.id)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        text = t("difficulty.assigned_to_you") + "\n" + await card(ctx, t, self.difficulty)
        return Rendered(t("cadre.raw", text=Safe(text)))
