"""/checkin (驻村打卡): one tap plus the location, at most once per local day; the week's count."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Next, Retry, State, reply_keyboard
from bot.core.router import STAFF
from bot.core.types import KeyButton, RemoveKeyboard
from bot.services import checkins
from bot.services.texts import distance_text
from bot.services.visits import valid_coordinates
from bot.store.enums import Role


def week_target(ctx: Ctx) -> int:
    """Village days required per ISO week: the scheduler's rule (county-configurable)."""
    return ctx.core.services.rules.village_days.target


def far_meters(ctx: Ctx) -> int:
    """Distance from the village point past which a check-in is marked for the leader (the rules)."""
    return ctx.core.services.rules.village_days.far_meters


async def week_message(ctx: Ctx, n: int | None = None) -> None:
    """ "本周已驻村 1 天，还差 1 天" (or target reached). `n`: the week's count when read already."""
    assert ctx.person is not None
    if n is None:
        n = await checkins.week_count(ctx.session, ctx.person.id, ctx.today)
    target = week_target(ctx)
    if n >= target:
        ctx.reply("checkin.week_done", RemoveKeyboard(), n=n, target=target)
    else:
        ctx.reply("checkin.week_left", RemoveKeyboard(), n=n, left=target - n, target=target)


async def start_checkin(ctx: Ctx) -> None:
    """Refuse a second check-in today at once; otherwise ask for the location."""
    if ctx.person is None or ctx.role not in STAFF:
        ctx.reply("core.not_allowed")
        return
    found = await checkins.checkin_and_week(ctx.session, ctx.person.id, ctx.today)  # one statement for both
    if found is not None:
        done, week_n = found
        at = done.at.astimezone(ctx.core.clock.tz).strftime("%H:%M")
        ctx.answer_callback("checkin.already")
        ctx.reply("checkin.already", at=at)
        await week_message(ctx, week_n)
        return
    await ctx.core.start_dialog(ctx, "checkin", fresh=True)


class CheckinDialog(Dialog):
    """One step: the location, or "no signal" to check in without it."""

    name = "checkin"
    roles: ClassVar[frozenset[Role]] = STAFF
    first_step = "location"
    title_key = "checkin.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply(
            "checkin.ask",
            reply_keyboard(
                ctx,
                KeyButton(ctx.t("cadre.btn_send_location"), request_location=True),
                KeyButton(ctx.t("cadre.btn_no_signal")),
                back=False,
            ),
        )

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        assert ctx.person is not None
        loc = ctx.inc.location
        text = (ctx.inc.text or "").strip()
        if loc is not None and not valid_coordinates(loc.lat, loc.lon):
            return Retry("cadre.location_invalid")
        if loc is None and text != ctx.t("cadre.btn_no_signal"):
            return Retry("cadre.location_hint")
        row = await checkins.check_in(
            ctx.session, ctx.person, ctx.today, ctx.now, loc.lat if loc else None, loc.lon if loc else None
        )
        if row is None:
            ctx.reply("checkin.already_short")
        else:
            far = row.distance_m is not None and row.distance_m > far_meters(ctx)
            ctx.audit("checkin", "checkin", row.id, location=loc is not None, far=far)
            if far:
                # It counts (GPS can be wrong), but the cadre hears it is marked, and why.
                ctx.reply("checkin.done_far", distance=distance_text(ctx.t, row.distance_m or 0.0))
            else:
                ctx.reply("checkin.done" if loc else "checkin.done_no_location")
        await week_message(ctx)
        return Finish()
