"""/start onboarding (invite code or shared phone), /help."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard, KeyButton, RemoveKeyboard, ReplyKeyboard
from bot.dialogs.base import Dialog, Finish, Next, Replace, Retry, State
from bot.handlers.menu import help_text
from bot.handlers.router import EVERYONE, LEADERS, STAFF, Router, callback_parts, parse_id
from bot.i18n import Safe
from bot.services import limits, onboarding
from bot.services.households import reachable_accounts
from bot.services.people import leader_for_village, team_leader
from bot.store.enums import Role
from bot.store.models import Account, Household, Person, RebindRequest

router = Router("start")


def _contact_keyboard(ctx: Ctx) -> ReplyKeyboard:
    return ReplyKeyboard(
        rows=(
            (KeyButton(ctx.t("start.btn_share_phone"), request_contact=True),),
            (KeyButton(ctx.t("core.btn_cancel")),),
        ),
        one_time=True,
    )


async def _welcome_bound(ctx: Ctx, binding: onboarding.Binding) -> None:
    if binding.person is not None:
        ctx.reply(
            "start.bound_person",
            RemoveKeyboard(),
            name=binding.person.name,
            role=ctx.t(f"role.{binding.person.role}"),
        )
        ctx.reply_text(help_text(Role(binding.person.role), ctx.t))
    elif binding.household is not None:
        ctx.reply("start.bound_household", RemoveKeyboard(), head=binding.household.head_name)
    ctx.audit(
        "account.bound",
        "person" if binding.person else "household",
        binding.person.id if binding.person else binding.household.id if binding.household else None,
    )
    name = binding.person.name if binding.person else binding.household.head_name if binding.household else ""
    for old in binding.released:  # never taken over silently
        ctx.send_to(old, "security.invite_took_over", name=name)


async def _redeem(ctx: Ctx, code: str) -> onboarding.Binding | None:
    """Redeem an invite code, within the account's allowance of wrong guesses (issue 10 #3)."""
    key = limits.invite_key(ctx.inc.channel, ctx.inc.user.id)
    left = await limits.invite_lock_left(ctx.session, key, ctx.now)
    if left is not None:
        ctx.reply("security.invite_locked", minutes=left)
        return None
    binding = await onboarding.redeem_invite(ctx.session, ctx.account, code, ctx.now)
    if binding is None:
        locked = await limits.invite_failed(ctx.session, key, ctx.now)
        ctx.audit("invite.failed", "account", ctx.account.id, locked_minutes=locked)
        ctx.reply("start.code_invalid" if locked is None else "security.invite_locked", minutes=locked)
    return binding


@router.command("start", private_only=True)
async def start(ctx: Ctx) -> None:
    code = ctx.inc.args.strip()
    if code:
        binding = await _redeem(ctx, code)
        if binding is None:
            await ctx.core.start_dialog(ctx, "onboard", fresh=True)
            return
        ctx.person = binding.person or ctx.person
        await _welcome_bound(ctx, binding)
        return
    if ctx.person is not None:
        ctx.reply("start.hello_again", name=ctx.person.name)
        ctx.reply_text(help_text(ctx.role, ctx.t))
        return
    await ctx.core.start_dialog(ctx, "onboard", fresh=True)


@router.contact(private_only=True)
async def contact(ctx: Ctx) -> None:
    await _bind_contact(ctx)


async def _bind_contact(ctx: Ctx) -> bool:
    """Bind by a shared phone (issue 10 #1): only the sender's own contact card (Telegram vouches for the
    phone only when the card's user_id is the sender); staff bind by invite code only; a person or
    household already bound to another account waits for the team leader's confirmation."""
    c = ctx.inc.contact
    assert c is not None
    if c.user_id is None or c.user_id != ctx.inc.user.id:  # an address-book card proves nothing
        ctx.audit("account.contact_refused", "account", ctx.account.id)
        ctx.reply("start.not_own_contact")
        return False
    match = await onboarding.match_phone(ctx.session, c.phone)
    if match is None:
        ctx.reply("start.phone_unknown", RemoveKeyboard())
        return True
    if match.person is not None and Role(match.person.role) in STAFF:
        ctx.reply("security.staff_use_code", RemoveKeyboard())
        return True
    owners = await onboarding.current_owners(ctx.session, ctx.account, match.person, match.household)
    if owners:
        await _request_rebind(ctx, match, owners)
        return True
    await onboarding.bind(ctx.session, ctx.account, match.person, match.household, ctx.now)
    ctx.person = match.person or ctx.person
    await _welcome_bound(ctx, match)
    return True


async def _leader_for(ctx: Ctx, match: onboarding.Binding) -> Person | None:
    if match.person is not None:
        leader = await team_leader(ctx.session, match.person)
        if leader is not None or match.person.village_id is None:
            return leader
        return await leader_for_village(ctx.session, match.person.village_id)
    assert match.household is not None
    return await leader_for_village(ctx.session, match.household.village_id)


def _target_name(match: onboarding.Binding) -> str:
    return match.person.name if match.person else match.household.head_name if match.household else ""


async def _request_rebind(ctx: Ctx, match: onboarding.Binding, owners: list[Account]) -> None:
    """The owner is told, the team leader asked; nothing changes until the leader confirms."""
    leader = await _leader_for(ctx, match)
    leader_accounts = await reachable_accounts(ctx.session, leader.id) if leader is not None else []
    if not leader_accounts:
        ctx.reply("security.rebind_no_leader", RemoveKeyboard())
        return
    request = RebindRequest(
        account_id=ctx.account.id,
        person_id=match.person.id if match.person else None,
        household_id=match.household.id if match.household else None,
        created_at=ctx.now,
    )
    ctx.session.add(request)
    await ctx.session.flush()
    ctx.audit("account.rebind_requested", "rebind_request", request.id)
    name = _target_name(match)
    for owner in owners:
        ctx.send_to(owner, "security.rebind_to_owner", name=name)
    for account in leader_accounts:
        t = ctx.core.translator_for(account)
        buttons = InlineKeyboard(
            (
                (Button(t("security.btn_confirm"), f"rb:ok:{request.id}"),),
                (Button(t("security.btn_refuse"), f"rb:no:{request.id}"),),
            )
        )
        who = ctx.account.display_name or ctx.inc.user.id
        ctx.send_to(account, "security.rebind_to_leader", buttons, name=name, who=who)
    ctx.reply("security.rebind_pending", RemoveKeyboard())


@router.callback("rb", roles=LEADERS)
async def rebind_decision(ctx: Ctx) -> None:
    """rb:ok|no:<request id>: the team leader confirms or refuses a rebinding, once."""
    parts = callback_parts(ctx)
    rid = parse_id(parts[2]) if len(parts) == 3 and parts[1] in ("ok", "no") else None
    request = await ctx.session.get(RebindRequest, rid, with_for_update=True) if rid else None
    match = (
        onboarding.Binding(
            await ctx.session.get(Person, request.person_id) if request.person_id else None,
            await ctx.session.get(Household, request.household_id) if request.household_id else None,
        )
        if request is not None
        else None
    )
    leader = await _leader_for(ctx, match) if match is not None else None
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
    request.decided_at, request.decision, request.decided_by_id = ctx.now, parts[1], ctx.person.id
    requester = await ctx.session.get(Account, request.account_id)
    ctx.audit("account.rebind_" + ("confirmed" if parts[1] == "ok" else "refused"), "rebind_request", request.id)
    if parts[1] == "no" or requester is None:
        ctx.reply("security.rebind_refused")
        if requester is not None:
            ctx.send_to(requester, "security.rebind_refused_to_requester")
        return
    released = await onboarding.bind(
        ctx.session, requester, match.person, match.household, ctx.now, release_household=True
    )
    name = _target_name(match)
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
    ctx.reply_text(help_text(ctx.role, ctx.t))


class OnboardDialog(Dialog):
    """After a bare /start: wait for an invite code or the shared phone contact."""

    name = "onboard"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = "code"
    title_key = "start.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply("start.ask_code", _contact_keyboard(ctx))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        if ctx.inc.contact is not None:
            return Finish() if await _bind_contact(ctx) else Replace()
        text = (ctx.inc.text or "").strip()
        if onboarding.CODE_RE.match(text):
            binding = await _redeem(ctx, text)
            if binding is None:
                await self.ask(ctx, st)
                return Replace()
            ctx.person = binding.person or ctx.person
            await _welcome_bound(ctx, binding)
            return Finish()
        if text:
            # Not a code: most likely a question. Leave onboarding and let the policy parser answer.
            ctx.reply("start.skip_onboarding", RemoveKeyboard())
            from bot.handlers.policy import answer_question

            await answer_question(ctx, text)
            return Finish()
        return Retry("start.retry_code")
