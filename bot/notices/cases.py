"""Notices about a villager's case: a new one to the paired cadre (a hardship marked urgent) and to the
team leader, a hand-over to the leader, and every change of status to the villager who raised it.
`card` and `actions` are also the cadre's and leader's own view of one case (/cases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.buttons import CASE_REPLY, CASE_RESOLVE, CASE_TO_LEADER
from bot.core.context import Ctx, Rendered
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Safe, Translator
from bot.services.households import reachable_accounts
from bot.store.enums import CaseKind, CaseStatus, Role
from bot.store.models import Account, Case, Household, Person, Team


def topic_label(ctx: Ctx, t: Translator, topic: str) -> str:
    """A policy topic's title in t's language; "未分类" for none or an unknown id."""
    engine = ctx.core.services.policy
    kb = getattr(engine, "kb", None)
    entry = kb.topics.get(topic) if kb is not None and topic != "none" else None
    if entry is None:
        return t("case.topic_none")
    return str(entry.title.get("en" if t.lang == "en" else "zh") or entry.title["zh"])


async def villager_name(ctx: Ctx, case: Case) -> str:
    household = await ctx.session.get(Household, case.household_id) if case.household_id else None
    if household is not None:
        return household.head_name
    account = await ctx.session.get(Account, case.account_id) if case.account_id else None
    return account.display_name if account else ""


def age_days(ctx: Ctx, case: Case) -> int:
    """Whole local days since the case was raised."""
    return (ctx.today - case.created_at.astimezone(ctx.core.clock.tz).date()).days


async def card(ctx: Ctx, t: Translator, case: Case) -> str:
    """The case as one message in t's language (user text escaped by the translator)."""
    cadre = await ctx.session.get(Person, case.cadre_id) if case.cadre_id else None
    household = await ctx.session.get(Household, case.household_id) if case.household_id else None
    local = case.created_at.astimezone(ctx.core.clock.tz)
    text = t(
        "case.card",
        number=case.id,
        kind=t(f"case.kind.{case.kind}"),
        status=t(f"case.status.{case.status}"),
        topic=topic_label(ctx, t, case.topic),
        villager=household.head_name if household is not None else await villager_name(ctx, case),
        phone=(household.phone if household and household.phone else "—"),
        cadre=cadre.name if cadre else "—",
        date=t("cadre.date_md", m=local.month, d=local.day),
        age=age_days(ctx, case),
        text=case.text or "—",
    )
    if case.reply_text:
        text += "\n" + t("case.card_reply", reply=case.reply_text)
    return text


def actions(t: Translator, case: Case, role: Role) -> InlineKeyboard | None:
    """Reply and resolve; a cadre may also hand the case to the leader."""
    if case.status == CaseStatus.RESOLVED.value:
        return None
    row = [Button(t("case.btn_reply"), CASE_REPLY.pack(case.id)), Button(t("case.btn_resolve"), CASE_RESOLVE.pack(case.id))]
    if role is Role.CADRE and case.status != CaseStatus.LEADER.value:
        row.append(Button(t("case.btn_lead"), CASE_TO_LEADER.pack(case.id)))
    return InlineKeyboard((tuple(row),))


async def leader_of(ctx: Ctx, case: Case) -> Person | None:
    """The active leader of the case's team, if any."""
    team = await ctx.session.get(Team, case.team_id) if case.team_id else None
    if team is None or team.leader_id is None:
        return None
    leader = await ctx.session.get(Person, team.leader_id)
    return leader if leader is not None and leader.active else None


async def _villager_accounts(ctx: Ctx, case: Case) -> list[Account]:
    account = await ctx.session.get(Account, case.account_id) if case.account_id else None
    return [account] if account is not None and not account.unreachable else []


def _head_key(case: Case) -> str:
    if case.kind == CaseKind.CALLBACK.value:
        return "case.new_callback"
    return "case.new_hardship" if case.hardship else "case.new_case"


@dataclass(frozen=True)
class NewCase:
    """A new case, to the paired cadre at once (a hardship marked urgent), with reply / resolve / hand-over
    buttons."""

    case: Case

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await reachable_accounts(ctx.session, self.case.cadre_id) if self.case.cadre_id else []

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        head = t(_head_key(self.case), days=ctx.core.services.rules.cases.first_reply_working_days)
        text = head + "\n" + await card(ctx, t, self.case)
        return Rendered(t("cadre.raw", text=Safe(text)), actions(t, self.case, Role.CADRE))


@dataclass(frozen=True)
class NewCaseToLeader:
    """The same case to the team leader: a copy when a cadre has it, the case itself when none does."""

    case: Case

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        leader = await leader_of(ctx, self.case)
        if leader is None or leader.id == self.case.cadre_id:
            return []
        return await reachable_accounts(ctx.session, leader.id)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        lines = [t(_head_key(self.case), days=ctx.core.services.rules.cases.first_reply_working_days)]
        if self.case.cadre_id is not None:
            lines.insert(0, t("case.copy_to_leader"))
        lines.append(await card(ctx, t, self.case))
        return Rendered(t("cadre.raw", text=Safe("\n".join(lines))), actions(t, self.case, Role.LEADER))


@dataclass(frozen=True)
class CaseAdded:
    """The villager added to their open case: the cadre (and the leader) get the addition; a hardship it
    revealed is marked urgent."""

    case: Case
    added: str
    became_hardship: bool

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        people = [self.case.cadre_id]
        leader = await leader_of(ctx, self.case)
        if leader is not None and leader.id != self.case.cadre_id:
            people.append(leader.id)
        accounts: list[Account] = []
        for pid in people:
            if pid is not None:
                accounts += await reachable_accounts(ctx.session, pid)
        return accounts

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        key = "case.added_hardship_to_staff" if self.became_hardship else "case.added_to_staff"
        return Rendered(t(key, number=self.case.id, villager=await villager_name(ctx, self.case), text=self.added))


@dataclass(frozen=True)
class HandedToLeader:
    """A cadre handed the case to the team leader, who gets it with buttons."""

    case: Case
    leader: Person
    cadre: str

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await reachable_accounts(ctx.session, self.leader.id)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        text = t("case.handed_to_you", cadre=self.cadre) + "\n" + await card(ctx, t, self.case)
        return Rendered(t("cadre.raw", text=Safe(text)), actions(t, self.case, Role.LEADER))


@dataclass(frozen=True)
class CaseReplied:
    """To the villager: the cadre's (or leader's) reply to their case."""

    case: Case
    cadre: str
    reply: str

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await _villager_accounts(ctx, self.case)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(t("case.reply_to_villager", number=self.case.id, cadre=self.cadre, reply=self.reply))


@dataclass(frozen=True)
class CaseWithLeader:
    """To the villager: their case is now with the team leader."""

    case: Case
    leader: str

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await _villager_accounts(ctx, self.case)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(t("case.with_leader_to_villager", number=self.case.id, leader=self.leader))


@dataclass(frozen=True)
class CaseResolved:
    """To the villager: their case is resolved."""

    case: Case

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await _villager_accounts(ctx, self.case)

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(t("case.resolved_to_villager", number=self.case.id))
