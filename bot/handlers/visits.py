"""/visit and what follows a saved visit: the save button, the leader's far-location notice, the
villager's confirmation (vc:<visit_id>:y|n), and the scheduler's reminder buttons (rm:...)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard, RemoveKeyboard
from bot.dialogs.base import State
from bot.dialogs.visit import Step, VisitDialog, distance_text, fmt_date, idem_key
from bot.dialogs.visit import date_text as vdate_text
from bot.handlers.router import EVERYONE, STAFF, Router, callback_parts, parse_id
from bot.services import visits as vs
from bot.services.households import household_accounts, reachable_accounts
from bot.services.people import team_leader
from bot.store.enums import LocationStatus
from bot.store.models import DialogState, Household, Person, Visit

router = Router("visits")

CONFIRM_WITHIN_DAYS = 7  # villagers are asked to confirm visits of the last week only


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
    if await has_live_draft(ctx, "visit"):
        await ctx.core.start_dialog(ctx, "visit")
        return
    await ctx.core.start_dialog(ctx, "visit", {"household_id": household_id}, fresh=True)


async def _state(ctx: Ctx, name: str) -> DialogState | None:
    q = select(DialogState).where(DialogState.account_id == ctx.account.id, DialogState.dialog == name)
    return (await ctx.session.execute(q)).scalar_one_or_none()


async def _visit_state(ctx: Ctx) -> DialogState | None:
    return await _state(ctx, "visit")


async def has_live_draft(ctx: Ctx, name: str) -> bool:
    """Whether the account has a draft of dialog `name` the engine would offer to resume."""
    row = await _state(ctx, name)
    if row is None or not row.history:
        return False
    return ctx.now - row.updated_at < timedelta(days=ctx.core.settings.draft_keep_days)


@router.callback("vs", roles=STAFF)
async def save_pressed(ctx: Ctx) -> None:
    """The summary's save button: save once; a second press is told it was saved already."""
    parts = callback_parts(ctx)
    nonce = parts[1] if len(parts) == 2 else ""
    row = await _visit_state(ctx)
    if row is not None and nonce and row.nonce == nonce and row.step == Step.SUMMARY.value:
        dialog = ctx.core.dialogs["visit"]
        assert isinstance(dialog, VisitDialog)
        await dialog.save(ctx, State(row))
        await ctx.session.delete(row)
        return
    if nonce and await vs.visit_by_key(ctx.session, idem_key(ctx.account.id, nonce[:16])) is not None:
        ctx.answer_callback("visit.already_saved")
        ctx.reply("visit.already_saved")
        return
    ctx.answer_callback("core.button_expired")
    ctx.reply("core.button_expired")


async def after_save(ctx: Ctx, visit: Visit, household: Household) -> None:
    """Confirm to the cadre; flag a far location to the leader; ask the household to confirm."""
    assert ctx.person is not None
    date_text = fmt_date(ctx, visit.visit_date)
    ctx.answer_callback("visit.saved_toast")
    key = {
        LocationStatus.FAR.value: "visit.saved_far",
        LocationStatus.NONE.value: "visit.saved_no_location",
    }.get(visit.location_status, "visit.saved")
    ctx.reply(
        key,
        RemoveKeyboard(),
        name=household.head_name,
        date=date_text,
        distance=distance_text(ctx.t, visit.distance_m or 0),
    )
    ctx.audit("visit.saved", "visit", visit.id, household=household.id, location=visit.location_status)
    if visit.location_status == LocationStatus.FAR.value:
        await notify_leader(
            ctx,
            ctx.person,
            "visit.far_to_leader",
            cadre=ctx.person.name,
            name=household.head_name,
            date=lambda t: vdate_text(t, visit.visit_date, ctx.today.year),
            distance=lambda t: distance_text(t, visit.distance_m or 0),
        )
    await ask_villager(ctx, visit, ctx.person)


async def notify_leader(
    ctx: Ctx, about: Person, key: str, markup: InlineKeyboard | None = None, **args: object
) -> int:
    """Tell the team leader of cadre `about` (every reachable account); returns how many were told."""
    leader = await team_leader(ctx.session, about)
    if leader is None or leader.id == about.id:
        return 0
    accounts = await reachable_accounts(ctx.session, leader.id)
    for account in accounts:
        # An argument may be a function of the reader's translator (dates, distances in their language).
        t = ctx.core.translator_for(account)
        ctx.send_to(account, key, markup, **{k: v(t) if callable(v) else v for k, v in args.items()})
    return len(accounts)


async def ask_villager(ctx: Ctx, visit: Visit, cadre: Person) -> None:
    """A short, polite question to the household's bound account(s). No answer is no mark against anyone.

    Only for recent visits: nobody can confirm a visit back-filled from months ago, and a cadre
    catching up on the ledger must not flood a family with questions.
    """
    if (ctx.today - visit.visit_date).days > CONFIRM_WITHIN_DAYS:
        return
    accounts = await household_accounts(ctx.session, visit.household_id)
    for account in accounts:
        t = ctx.core.translator_for(account)
        when = (
            t("visit.confirm_today")
            if visit.visit_date == ctx.today
            else t("cadre.date_md", m=visit.visit_date.month, d=visit.visit_date.day)
        )
        ctx.send_to(
            account,
            "visit.confirm_ask",
            InlineKeyboard(
                (
                    (
                        Button(t("visit.confirm_yes"), f"vc:{visit.id}:y"),
                        Button(t("visit.confirm_no"), f"vc:{visit.id}:n"),
                    ),
                )
            ),
            when=when,
            surname=vs.surname(cadre.name),
        )


@router.callback("vc", roles=EVERYONE, private_only=True)
async def villager_confirms(ctx: Ctx) -> None:
    """The villager's 是 / 否: only an account bound to the visited household may answer, once."""
    parts = callback_parts(ctx)
    vid = parse_id(parts[1]) if len(parts) == 3 and parts[2] in ("y", "n") else None
    visit = await ctx.session.get(Visit, vid) if vid else None
    if visit is None or ctx.account.household_id is None or ctx.account.household_id != visit.household_id:
        ctx.answer_callback("core.not_allowed")
        ctx.reply("core.not_allowed")
        return
    yes = parts[2] == "y"
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
            await notify_leader(
                ctx,
                cadre,
                "visit.denied_to_leader",
                cadre=cadre.name,
                name=household.head_name,
                date=lambda t: vdate_text(t, visit.visit_date, ctx.today.year),
            )


@router.callback("rm", roles=STAFF)
async def reminder_pressed(ctx: Ctx) -> None:
    """Buttons under the scheduler's reminders: rm:visit:<household_id> and rm:checkin."""
    parts = callback_parts(ctx)
    if len(parts) == 3 and parts[1] == "visit":
        await start_visit_for(ctx, parse_id(parts[2]))
    elif len(parts) == 2 and parts[1] == "checkin":
        from bot.handlers.checkin import start_checkin

        await start_checkin(ctx)
    else:
        ctx.answer_callback("core.button_expired")
