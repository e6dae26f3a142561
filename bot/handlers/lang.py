"""/lang: switch between Chinese and English."""

from __future__ import annotations

from bot.buttons import LANGUAGE
from bot.core.context import Ctx
from bot.core.router import Router
from bot.core.types import Button, InlineKeyboard
from bot.i18n import LANGUAGES

router = Router("lang")


@router.command("lang", "language")
async def choose(ctx: Ctx) -> None:
    ctx.reply(
        "lang.choose",
        InlineKeyboard(tuple((Button(ctx.t(f"lang.name.{code}"), LANGUAGE.pack(code)),) for code in LANGUAGES)),
    )


@router.callback(LANGUAGE.prefix)
async def chosen(ctx: Ctx) -> None:
    pressed = LANGUAGE.parse(ctx.inc.callback_data)
    if pressed is None or pressed[0] not in LANGUAGES:
        ctx.answer_callback("core.button_expired")
        return
    ctx.account.language = pressed[0]
    ctx.t = ctx.core.catalogs.get(pressed[0])
    ctx.answer_callback()
    ctx.reply("lang.changed")
