"""/start onboarding (invite code or shared phone), /help."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.router import Router
from bot.dialogs.onboard import bind_contact, welcome_bound
from bot.services import onboarding
from bot.services.menu import help_text

router = Router("start")


@router.command("start")
async def start(ctx: Ctx) -> None:
    code = ctx.inc.args.strip()
    if code:
        binding = await onboarding.redeem_invite(ctx.session, ctx.account, code, ctx.now)
        if binding is None:
            ctx.reply("start.code_invalid")
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


@router.contact()
async def contact(ctx: Ctx) -> None:
    await bind_contact(ctx)


@router.command("help")
async def help_(ctx: Ctx) -> None:
    ctx.reply_text(help_text(ctx.role, ctx.t, ctx.core.services.rules.village_days.target))
