"""/visit and what follows a saved visit: the save button, the leader's far-location notice, the
villager's confirmation (vc:<visit_id>:y|n), and the scheduler's reminder buttons (rm:...)."""

from __future__ import annotations

from bot.buttons import CHECKIN_REMINDER, CONFIRM_VISIT, SAVE_VISIT, VISIT_REMINDER
from bot.core.context import Ctx
from bot.core.dialog import State, dialog_state
from bot.core.router import EVERYONE, STAFF, Router
from bot.dialogs.checkin import start_checkin
from bot.dialogs.visit import Step, VisitDialog, idem_key
from bot.notices.visits import VisitDenied
from bot.services import visits as vs
from bot.store.models import Household, Person, Visit

router = Router("visits")


@router.command("visit", roles=STAFF)
async def visit(ctx: Ctx) -> None:
    """/visit, or "/visit 张大山" to pick the household by name at once."""
    query = ctx.inc.args.strip()
    await ctx.core.start_dialog(ctx, "visit", {"query": query} if query else None)


async def start_visit_for(ctx: Ctx, household_id: int | None) -> None:
    """Start /visit with a household pre-selected, after checking it is the speaker's own pairing.

    A visit draft in progress is never thrown away for a reminder: the engine offers to resume it.
    """
    assert ctx.person is not None
    if household_id is None or await vs.pairing_start(ctx.session, ctx.person.id, household_id) is None:
        ctx.answer_callback("cadre.hh_not_yours", alert=True)
        ctx.reply("cadre.hh_not_yours")
        return
    # Not fresh: a live draft is offered for resuming (and its household kept), anything else starts over
    # with this household, in the engine's one read of the visit's row.
    await ctx.core.start_dialog(ctx, "visit", {"household_id": household_id})


@router.callback(SAVE_VISIT.prefix, roles=STAFF)
async def save_pressed(ctx: Ctx) -> None:
    """The summary's save button: save once; a second press is told it was saved already."""
    pressed = SAVE_VISIT.parse(ctx.inc.callback_data)
    nonce = pressed[0] if pressed else ""
    # The visit's row: the active dialog's, loaded with the update, when that is the visit (the usual case),
    # else read (a parked draft's summary).
    active = await ctx.core.active_state(ctx)
    row = active if active is not None and active.dialog == "visit" else await dialog_state(ctx, "visit")
    if row is not None and nonce and row.nonce == nonce and row.step == Step.SUMMARY.value:
        dialog = ctx.core.dialogs["visit"]
        assert isinstance(dialog, VisitDialog)
        await dialog.save(ctx, State(row))
        await ctx.session.delete(row)
        return
    if nonce and await vs.visit_by_key(ctx.session, idem_key(ctx.account.id, nonce)) is not None:
        ctx.answer_callback("visit.already_saved")
        ctx.reply("visit.already_saved")
        return
    ctx.answer_callback("core.button_expired")
    ctx.reply("core.button_expired")


@router.callback(CONFIRM_VISIT.prefix, roles=EVERYONE, private_only=True)
async def villager_confirms(ctx: Ctx) -> None:
    """The villager's 是 / 否: only an account bound to the visited household may answer, once."""
    pressed = CONFIRM_VISIT.parse(ctx.inc.callback_data)
    visit = await ctx.session.get(Visit, pressed[0]) if pressed else None
    if visit is None or ctx.account.household_id is None or ctx.account.household_id != visit.household_id:
        ctx.answer_callback("core.not_allowed")
        ctx.reply("core.not_allowed")
        return
    assert pressed is not None
    yes = pressed[1] == "y"
    if not vs.record_confirmation(visit, yes):
        ctx.answer_callback("visit.confirm_already")
        ctx.reply("visit.confirm_already")
        return
    ctx.audit("visit.villager_answer", "visit", visit.id, confirmed=yes)
    ctx.answer_callback()
    ctx.reply("visit.confirm_thanks_yes" if yes else "visit.confirm_thanks_no")
    if not yes:
        cadre = await ctx.session.get(Person, visit.cadre_id)
        household = await ctx.session.get(Household, visit.household_id)
        if cadre is not None and household is not None:
            await ctx.notify(VisitDenied(cadre, household, visit))


@router.callback(VISIT_REMINDER.prefix, roles=STAFF)
async def reminder_pressed(ctx: Ctx) -> None:
    """Buttons under the scheduler's reminders (and a household file's "log a visit"): VISIT_REMINDER
    and CHECKIN_REMINDER."""
    data = ctx.inc.callback_data
    if (visit := VISIT_REMINDER.parse(data)) is not None:
        await start_visit_for(ctx, visit[0])
    elif CHECKIN_REMINDER.matches(data):
        await start_checkin(ctx)
    else:
        ctx.answer_callback("core.button_expired")
