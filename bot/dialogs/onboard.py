"""Onboarding after a bare /start: an invite code or the shared phone contact binds the account."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Next, Replace, Retry, State
from bot.core.router import EVERYONE
from bot.core.types import KeyButton, RemoveKeyboard, ReplyKeyboard
from bot.services import onboarding
from bot.services.menu import help_text
from bot.store.enums import Role


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


async def bind_contact(ctx: Ctx) -> bool:
    c = ctx.inc.contact
    assert c is not None
    if c.user_id is not None and c.user_id != ctx.inc.user.id:
        ctx.reply("start.not_own_contact")
        return False
    binding = await onboarding.bind_by_phone(ctx.session, ctx.account, c.phone, ctx.now)
    if binding is None:
        ctx.reply("start.phone_unknown", RemoveKeyboard())
        return True
    ctx.person = binding.person or ctx.person
    await welcome_bound(ctx, binding)
    return True


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
            binding = await onboarding.redeem_invite(ctx.session, ctx.account, text, ctx.now)
            if binding is None:
                return Retry("start.code_invalid")
            ctx.person = binding.person or ctx.person
            await welcome_bound(ctx, binding)
            return Finish()
        if text:
            # Not a code: most likely a question. Leave onboarding and let the policy parser answer.
            ctx.reply("start.skip_onboarding", RemoveKeyboard())
            return Finish(pass_on=True)
        return Retry("start.retry_code")
