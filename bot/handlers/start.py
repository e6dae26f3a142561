"""/start onboarding (invite code or shared phone), /help, and the leader's rebinding decision."""

from __future__ import annotations

from bot.buttons import REBIND_DECISION
from bot.core.context import Ctx
from bot.core.router import LEADERS, Router
from bot.dialogs.onboard import bind_contact, leader_for, redeem, target_name, welcome_bound
from bot.i18n import Safe
from bot.services import onboarding
from bot.services.menu import help_text
from bot.store.enums import Role
from bot.store.models import Account, Household, Person, RebindRequest

router = Router("start")


@router.command("start", private_only=True)
async def start(ctx: Ctx) -> None:
    code = ctx.inc.args.strip()
    if code:
        binding = await redeem(ctx, code)
        if binding is None:
            await ctx.core.start_dialog(ctx, "onboard", fresh=True)
            return
        ctx.person = binding.person or ctx.person
        await welcome_bound(ctx, binding)
        return
    if ctx.person is not None:
        ctx.reply("start.hello_again", name=ctx.person.name)
        ctx.reply_text(help_text(ctx.role, ctx.t, ctx.core.services.rules.village_days.target))
        return
    await ctx.core.start_dialog(ctx, "onboard", fresh=True)


@router.contact(private_only=True)
async def contact(ctx: Ctx) -> None:
    await bind_contact(ctx)


@router.callback(REBIND_DECISION.prefix, roles=LEADERS)
async def rebind_decision(ctx: Ctx) -> None:
    """REBIND_DECISION (rb:ok|no:<request id>): the team leader confirms or refuses a rebinding, once."""
    pressed = REBIND_DECISION.parse(ctx.inc.callback_data)
    decision, rid = pressed if pressed is not None else ("", None)
    request = await ctx.session.get(RebindRequest, rid, with_for_update=True) if rid else None
    match = (
        onboarding.Binding(
            await ctx.session.get(Person, request.person_id) if request.person_id else None,
            await ctx.session.get(Household, request.household_id) if request.household_id else None,
        )
        if request is not None
        else None
    )
    leader = await leader_for(ctx, match) if match is not None else None
    if request is None or match is None or ctx.person is None or (
        ctx.role is not Role.ADMIN and (leader is None or leader.id != ctx.person.id)
    ):
        ctx.answer_callback("core.not_allowed", alert=True)
        ctx.reply("core.not_allowed")
        return
    if request.decided_at is not None:
        ctx.answer_callback("security.rebind_already")
        ctx.reply("security.rebind_already")
        return
    request.decided_at, request.decision, request.decided_by_id = ctx.now, decision, ctx.person.id
    requester = await ctx.session.get(Account, request.account_id)
    ctx.audit("account.rebind_" + ("confirmed" if decision == "ok" else "refused"), "rebind_request", request.id)
    if decision == "no" or requester is None:
        ctx.reply("security.rebind_refused")
        if requester is not None:
            ctx.send_to(requester, "security.rebind_refused_to_requester")
        return
    released = await onboarding.bind(
        ctx.session, requester, match.person, match.household, ctx.now, release_household=True
    )
    name = target_name(match)
    ctx.reply("security.rebind_confirmed", name=name)
    for old in released:
        ctx.send_to(old, "security.rebind_done_to_old", name=name)
    if match.person is not None:
        t = ctx.core.translator_for(requester, match.person)
        text = t("start.bound_person", name=match.person.name, role=t(f"role.{match.person.role}"))
    else:
        assert match.household is not None
        t = ctx.core.translator_for(requester)
        text = t("start.bound_household", head=match.household.head_name)
    ctx.send_to(requester, "cadre.raw", text=Safe(text))


@router.command("help")
async def help_(ctx: Ctx) -> None:
    ctx.reply_text(help_text(ctx.role, ctx.t, ctx.core.services.rules.village_days.target))
