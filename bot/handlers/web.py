"""/web: a one-time sign-in link to the web dashboard (leaders, township and county officers, admins)."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.router import LEADERS, Router
from bot.services.weblinks import LINK_MINUTES, create_link
from bot.store.enums import Role

router = Router("web")


@router.command("web", roles=LEADERS | {Role.COUNTY}, private_only=True)
async def web_link(ctx: Ctx) -> None:
    assert ctx.person is not None  # the role check guarantees a bound person
    token = await create_link(ctx.session, ctx.person, ctx.now)
    url = ctx.core.settings.web_url.rstrip("/") + "/login/" + token
    ctx.audit("web.link", "person", ctx.person.id)
    ctx.reply("web.link", url=url, minutes=LINK_MINUTES)
