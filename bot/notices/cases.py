"""Notices about a villager's case: a new one to the paired cadre (a hardship marked urgent) with a copy
to the team leader, a hand-over to the leader, and every change of status to the villager who raised it.
`card` and `actions` are also the cadre's and leader's own view of one case (/cases)."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Safe, Translator
from bot.services.households import reachable_accounts
from bot.services.visits import rules_of
from bot.store.enums import CaseKind, CaseStatus, Role
from bot.store.models import Account, Case, Household, Person, Team


def topic_label(ctx: Ctx, t: Translator, topic: str) -> str:
    """A policy topic's title in t's language; "未分类" for none or an unknown id."""
    engine = ctx.core.services.get("policy")
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
        villager=await villager_name(ctx, case),
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
    row = [Button(t("case.btn_reply"), f"cs:rep:{case.id}"), Button(t("case.btn_resolve"), f"cs:res:{case.id}")]
    if role is Role.CADRE and case.status != CaseStatus.LEADER.value:
        row.append(Button(t("case.btn_lead"), f"cs:lead:{case.id}"))
    return InlineKeyboard((tuple(row),))


async def leader_of(ctx: Ctx, case: Case) -> Person | None:
    """The active leader of the case's team, if any."""
    team = await ctx.session.get(Team, case.team_id) if case.team_id else None
    if team is None or team.leader_id is None:
        return None
    leader = await ctx.session.get(Person, team.leader_id)
    return leader if leader is not None and leader.active else None


async def tell_villager(ctx: Ctx, case: Case, key: str, **args: object) -> None:
    """Every change of a case's status is told to the villager who raised it."""
    account = await ctx.session.get(Account, case.account_id) if case.account_id else None
    if account is not None and not account.unreachable:
        ctx.send_to(account, key, None, number=case.id, **args)


async def notify_new(ctx: Ctx, case: Case) -> int:
    """Send a new case to the paired cadre at once (a hardship marked urgent) and copy the team leader;
    returns how many accounts were told."""
    told = 0
    leader = await leader_of(ctx, case)
    if case.kind == CaseKind.CALLBACK.value:
        head = "case.new_callback"
    elif case.hardship:
        head = "case.new_hardship"
    else:
        head = "case.new_case"
    days = rules_of(ctx.core).cases.first_reply_working_days
    # The leader's message is marked a copy only when there is a cadre to handle the case.
    recipients = ((case.cadre_id, Role.CADRE, False), (leader.id if leader else None, Role.LEADER, True))
    for person_id, role, copy in recipients:
        if person_id is None or (copy and person_id == case.cadre_id):
            continue
        copy = copy and case.cadre_id is not None
        for account in await reachable_accounts(ctx.session, person_id):
            t = ctx.core.translator_for(account)
            lines = [t(head, days=days)]
            if copy:
                lines.insert(0, t("case.copy_to_leader"))
            lines.append(await card(ctx, t, case))
            ctx.send_to(account, "cadre.raw", actions(t, case, role), text=Safe("\n".join(lines)))
            told += 1
    return told


async def notify_handed(ctx: Ctx, case: Case, leader: Person) -> None:
    """A cadre handed the case to the leader: the leader gets it with buttons, the villager is told."""
    for account in await reachable_accounts(ctx.session, leader.id):
        t = ctx.core.translator_for(account)
        text = t("case.handed_to_you", cadre=ctx.person.name if ctx.person else "") + "\n" + await card(ctx, t, case)
        ctx.send_to(account, "cadre.raw", actions(t, case, Role.LEADER), text=Safe(text))
    await tell_villager(ctx, case, "case.with_leader_to_villager", leader=leader.name)
