"""Onboarding after a bare /start: an invite code or the shared phone contact binds the account."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import select

from bot.buttons import REBIND_DECISION
from bot.core import limits
from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Next, Replace, Retry, State
from bot.core.router import EVERYONE, STAFF
from bot.core.types import Button, InlineKeyboard, KeyButton, RemoveKeyboard, ReplyKeyboard
from bot.services import onboarding
from bot.services.households import reachable_accounts
from bot.services.menu import help_text
from bot.services.people import leader_for_village, team_leader
from bot.store.enums import Role
from bot.store.models import Account, Person, RebindRequest


def contact_keyboard(ctx: Ctx) -> ReplyKeyboard:
    return ReplyKeyboard(
        rows=(
            (KeyButton(ctx.t("start.btn_share_phone"), request_contact=True),),
            (KeyButton(ctx.t("core.btn_cancel")),),
        ),
        one_time=True,
    )


async def welcome_bound(ctx: Ctx, binding: onboarding.Binding) -> None:
    if binding.person is not None:
        ctx.reply(
            "start.bound_person",
            RemoveKeyboard(),
            name=binding.person.name,
            role=ctx.t(f"role.{binding.person.role}"),
        )
        ctx.reply_text(help_text(Role(binding.person.role), ctx.t, ctx.core.services.rules.village_days.target))
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


async def redeem(ctx: Ctx, code: str) -> onboarding.Binding | None:
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


async def bind_contact(ctx: Ctx) -> bool:
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
    await welcome_bound(ctx, match)
    return True


async def leader_for(ctx: Ctx, match: onboarding.Binding) -> Person | None:
    if match.person is not None:
        leader = await team_leader(ctx.session, match.person)
        if leader is not None or match.person.village_id is None:
            return leader
        return await leader_for_village(ctx.session, match.person.village_id)
    assert match.household is not None
    return await leader_for_village(ctx.session, match.household.village_id)


def target_name(match: onboarding.Binding) -> str:
    return match.person.name if match.person else match.household.head_name if match.household else ""


async def _request_rebind(ctx: Ctx, match: onboarding.Binding, owners: list[Account]) -> None:
    """The owner is told, the team leader asked; nothing changes until the leader confirms."""
    leader = await leader_for(ctx, match)
    leader_accounts = await reachable_accounts(ctx.session, leader.id) if leader is not None else []
    if not leader_accounts:
        ctx.reply("security.rebind_no_leader", RemoveKeyboard())
        return
    waiting = await ctx.session.execute(
        select(RebindRequest.id).where(
            RebindRequest.account_id == ctx.account.id,
            RebindRequest.person_id == (match.person.id if match.person else None),
            RebindRequest.household_id == (match.household.id if match.household else None),
            RebindRequest.decided_at.is_(None),
        )
    )
    if waiting.first() is not None:  # asked already: nobody is told twice
        ctx.reply("security.rebind_pending", RemoveKeyboard())
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
    name = target_name(match)
    for owner in owners:
        ctx.send_to(owner, "security.rebind_to_owner", name=name)
    for account in leader_accounts:
        t = ctx.core.translator_for(account)
        buttons = InlineKeyboard(
            (
                (Button(t("security.btn_confirm"), REBIND_DECISION.pack("ok", request.id)),),
                (Button(t("security.btn_refuse"), REBIND_DECISION.pack("no", request.id)),),
            )
        )
        who = ctx.account.display_name or ctx.inc.user.id
        ctx.send_to(account, "security.rebind_to_leader", buttons, name=name, who=who)
    ctx.reply("security.rebind_pending", RemoveKeyboard())


class OnboardDialog(Dialog):
    """After a bare /start: wait for an invite code or the shared phone contact."""

    name = "onboard"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = "code"
    title_key = "start.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply("start.ask_code", contact_keyboard(ctx))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        if ctx.inc.contact is not None:
            return Finish() if await bind_contact(ctx) else Replace()
        text = (ctx.inc.text or "").strip()
        if onboarding.CODE_RE.match(text):
            binding = await redeem(ctx, text)
            if binding is None:
                await self.ask(ctx, st)
                return Replace()
            ctx.person = binding.person or ctx.person
            await welcome_bound(ctx, binding)
            return Finish()
        if text:
            # Not a code: most likely a question. Leave onboarding and let the policy parser answer.
            ctx.reply("start.skip_onboarding", RemoveKeyboard())
            return Finish(pass_on=True)
        return Retry("start.retry_code")
