"""/checkin (驻村打卡): the command; the check-in itself is a dialog (bot/dialogs/checkin.py)."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.router import STAFF, Router
from bot.dialogs.checkin import start_checkin

router = Router("checkin")


@router.command("checkin", roles=STAFF)
async def checkin(ctx: Ctx) -> None:
    await start_checkin(ctx)
