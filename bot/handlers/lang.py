"""/lang: switch between Chinese and English."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.router import Router, callback_parts
from bot.core.types import Button, InlineKeyboard
from bot.i18n import LANGUAGES

router = Router("lang")


@router.command("lang", "language")
async def choose(ctx: Ctx) -> None:
    ctx.reply(
        "lang.choose",
        InlineKeyboard(tuple((Button(ctx.t(f"lang.name.{code}"), f"lang:{code}"),) for code in LANGUAGES)),
    )


@router.callback("lang")
async def chosen(ctx: Ctx) -> None:
    parts = callback_parts(ctx)
    if len(parts) != 2 or parts[1] not in LANGUAGES:
        ctx.answer_callback("core.button_expired")
        return
    ctx.account.language = parts[1]
    ctx.t = ctx.core.catalogs.get(parts[1])
    ctx.answer_callback()
    ctx.reply("lang.changed")
