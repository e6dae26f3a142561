"""/overdue's nudge buttons (od:n:<cadre_id>): the leader presses a cadre's name and the cadre gets a
polite reminder naming their overdue households, at most once a day (a second press is told so).
The leader router (handlers/leader.py) routes the buttons here."""

from __future__ import annotations

from collections.abc import Sequence

from bot.buttons import OVERDUE_NUDGE
from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard
from bot.notices.overdue import OverdueNudge
from bot.scheduler.due import HouseholdDue
from bot.services import nudges
from bot.store.models import Person

MAX_CADRES = 20  # buttons under /overdue


def nudge_keyboard(ctx: Ctx, rows: Sequence[HouseholdDue]) -> InlineKeyboard | None:
    """One button per cadre with overdue households (as /overdue lists them)."""
    by_cadre: dict[int, list[HouseholdDue]] = {}
    for r in rows:
        by_cadre.setdefault(r.cadre_id, []).append(r)
    buttons = [
        (
            Button(
                ctx.t.raw("leader.nudge.btn").format(name=mine[0].cadre_name, n=len(mine)),
                OVERDUE_NUDGE.pack(cid),
            ),
        )
        for cid, mine in list(by_cadre.items())[:MAX_CADRES]
    ]
    return InlineKeyboard(tuple(buttons)) if buttons else None


def show_with_nudges(ctx: Ctx, pages: Sequence[str], rows: Sequence[HouseholdDue]) -> None:
    """/overdue's pages; under the last, the buttons to remind each cadre listed."""
    markup = nudge_keyboard(ctx, rows)
    for i, page in enumerate(pages):
        if i < len(pages) - 1 or markup is None:
            ctx.reply_text(page)
        else:
            ctx.reply_text(page + "\n\n" + ctx.t("leader.nudge.head"), markup)


async def nudge_pressed(ctx: Ctx) -> None:
    assert ctx.person is not None
    pressed = OVERDUE_NUDGE.parse(ctx.inc.callback_data)
    cadre_id = pressed[0] if pressed else None
    cadre = await ctx.session.get(Person, cadre_id) if cadre_id else None
    cadence = ctx.core.services.rules.visits.cadence_days
    rows = (
        await nudges.overdue_of(ctx.session, ctx.person.id, cadre.id, ctx.today, cadence)
        if cadre is not None
        else None
    )
    if cadre is None or rows is None:
        ctx.answer_callback("core.not_allowed", alert=True)
        ctx.reply("core.not_allowed")
        if cadre is not None:
            ctx.audit("overdue.nudge_refused", "person", cadre.id)
        return
    if await nudges.nudged_on(ctx.session, cadre.id, ctx.today, ctx.core.clock.tz):
        ctx.answer_callback("leader.nudge.already", name=cadre.name)
        ctx.reply("leader.nudge.already", name=cadre.name)
        return
    if not rows:
        ctx.answer_callback()
        ctx.reply("leader.nudge.none_left", name=cadre.name)
        return
    if not await ctx.notify(OverdueNudge(cadre, ctx.person, rows, cadence)):
        ctx.answer_callback()
        ctx.reply("leader.nudge.unreachable", name=cadre.name)
        return
    ctx.audit(nudges.ACTION, "person", cadre.id, households=[r.household_id for r in rows])
    ctx.answer_callback("leader.nudge.sent", name=cadre.name, n=len(rows))
    ctx.reply("leader.nudge.sent", name=cadre.name, n=len(rows))
