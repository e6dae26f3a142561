"""/problem, /difficulties and the leader's buttons on a difficulty:
df:open|ack|asg|res:<id>, df:to:<id>:<person_id>; the resolution note is a small dialog."""

from __future__ import annotations

from sqlalchemy import select

from bot.buttons import (
    DIFFICULTY_ACK,
    DIFFICULTY_ASSIGN,
    DIFFICULTY_ASSIGN_CANCEL,
    DIFFICULTY_ASSIGN_TO,
    DIFFICULTY_LIST,
    DIFFICULTY_OPEN,
    DIFFICULTY_RESOLVE,
    PROBLEM_FOR_HOUSEHOLD,
)
from bot.core.context import Ctx
from bot.core.router import LEADERS, STAFF, Router
from bot.core.types import Button, InlineKeyboard, Photo
from bot.notices.difficulties import AssignedToYou, StatusChanged, actions, card
from bot.services import difficulties as dsvc
from bot.services.texts import fmt_date
from bot.services.visits import pairing_start
from bot.store.enums import DifficultyStatus
from bot.store.models import Difficulty, Household

router = Router("difficulties")

PAGE_SIZE = 10  # difficulties per page of /difficulties
OPEN_LIMIT = 500  # open ones sorted by urgency in Python: a team never has more


@router.command("problem", roles=STAFF)
async def problem(ctx: Ctx) -> None:
    await ctx.core.start_dialog(ctx, "problem")


@router.command("difficulties", roles=LEADERS)
async def list_open(ctx: Ctx) -> None:
    await _show_list(ctx, resolved=False, page=0)


@router.callback(DIFFICULTY_LIST.prefix, roles=LEADERS)
async def list_pressed(ctx: Ctx) -> None:
    """dl:o:<page> (open), dl:r:<page> (resolved history), dl:x (the assignee picker's cancel)."""
    data = ctx.inc.callback_data
    if DIFFICULTY_ASSIGN_CANCEL.matches(data):
        ctx.answer_callback()
        ctx.reply("difficulty.assign_cancelled")
        return
    pressed = DIFFICULTY_LIST.parse(data)
    if pressed is None:
        ctx.answer_callback("core.button_expired")
        return
    mode, page = pressed
    await _show_list(ctx, resolved=mode == "r", page=page)


async def _show_list(ctx: Ctx, resolved: bool, page: int) -> None:
    """One page of the open difficulties (most urgent and oldest first) or of the resolved history
    (most recently resolved first), with paging and a button to switch between the two."""
    assert ctx.person is not None
    if resolved:
        rows, total = await dsvc.resolved_for(ctx.session, ctx.person, page * PAGE_SIZE, PAGE_SIZE)
    else:
        everything = await dsvc.open_for(ctx.session, ctx.person, limit=OPEN_LIMIT)
        total = len(everything)
        rows = everything[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    pages = max(1, -(-total // PAGE_SIZE))
    if not rows and page > 0:  # the list got shorter since the button was sent
        await _show_list(ctx, resolved, min(page, pages) - 1)
        return
    mode = "r" if resolved else "o"
    switch = Button(
        ctx.t("difficulty.btn_show_open" if resolved else "difficulty.btn_show_resolved"),
        DIFFICULTY_LIST.pack("o" if resolved else "r", 0),
    )
    if not rows:
        ctx.reply(
            "difficulty.none_resolved" if resolved else "difficulty.none_open", InlineKeyboard(((switch,),))
        )
        return
    head_key = "difficulty.resolved_head" if resolved else "difficulty.list_head"
    lines = [ctx.t(head_key, n=total)]
    if pages > 1:
        lines[0] += ctx.t("difficulty.list_page", page=page + 1, pages=pages)
    buttons: list[tuple[Button, ...]] = []
    # The page's households' head names in one query (not one per line).
    hids = {d.household_id for d in rows if d.household_id}
    heads: dict[int, str] = {}
    if hids:
        q = select(Household.id, Household.head_name).where(Household.id.in_(hids))
        heads = {hid: name for hid, name in (await ctx.session.execute(q)).all()}
    for d in rows:
        head = heads.get(d.household_id) if d.household_id else None
        scope = head if head is not None else ctx.t("problem.whole_village")
        when = d.resolved_at if resolved and d.resolved_at is not None else d.created_at
        lines.append(
            ctx.t(
                "difficulty.list_line",
                id=d.id,
                scope=scope,
                category=ctx.t(f"difficulty.category.{d.category}"),
                urgency=ctx.t(f"difficulty.urgency.{d.urgency}"),
                status=ctx.t(f"difficulty.status.{d.status}"),
                date=fmt_date(ctx, when.astimezone(ctx.core.clock.tz).date()),
            )
        )
        buttons.append(
            (Button(ctx.t.raw("difficulty.btn_open").format(id=d.id, scope=scope), DIFFICULTY_OPEN.pack(d.id)),)
        )
    nav: list[Button] = []
    if page > 0:
        nav.append(Button(ctx.t("cadre.btn_prev"), DIFFICULTY_LIST.pack(mode, page - 1)))
    if page < pages - 1:
        nav.append(Button(ctx.t("cadre.btn_next"), DIFFICULTY_LIST.pack(mode, page + 1)))
    if nav:
        buttons.append(tuple(nav))
    buttons.append((switch,))
    ctx.reply_text("\n".join(lines), InlineKeyboard(tuple(buttons)))


async def _load(ctx: Ctx, did: int, manage: bool) -> tuple[Difficulty, bool] | None:
    """The difficulty and whether the speaker may manage it (dsvc.can_manage, asked once), or None (and the
    refusal) when the speaker may not act on it — or, for `manage=False`, not even see it."""
    # A state change locks the row (PostgreSQL), so two presses at once are seen one after the other.
    d = await ctx.session.get(Difficulty, did, with_for_update=manage or None)
    if d is not None:
        if await dsvc.can_manage(ctx.session, ctx.person, d):
            return d, True
        if not manage and ctx.person is not None and ctx.person.id in (d.reporter_id, d.assigned_to_id):
            return d, False
    ctx.answer_callback("core.not_allowed", alert=True)
    ctx.reply("core.not_allowed")
    return None


_ACTIONS = {"open": DIFFICULTY_OPEN, "ack": DIFFICULTY_ACK, "asg": DIFFICULTY_ASSIGN, "res": DIFFICULTY_RESOLVE}


@router.callback(DIFFICULTY_OPEN.prefix, roles=STAFF)
async def on_button(ctx: Ctx) -> None:
    data = ctx.inc.callback_data
    action, did, pid = "", 0, 0
    for name, button in _ACTIONS.items():
        if (pressed := button.parse(data)) is not None:
            action, did = name, pressed[0]
    if (to := DIFFICULTY_ASSIGN_TO.parse(data)) is not None:
        action, did, pid = "to", to[0], to[1]
    if not action:
        ctx.answer_callback("core.button_expired")
        return
    loaded = await _load(ctx, did, manage=action != "open")
    if loaded is None:
        return
    d, can = loaded
    if action == "open":
        photo = await dsvc.first_photo(ctx.session, d.id)
        if photo is not None:  # what the reporter photographed, above the card and its buttons
            ctx.reply_photo(Photo(file_id=photo.file_id), caption=ctx.t("difficulty.photo_caption", id=d.id))
        ctx.reply_text(await card(ctx, ctx.t, d), actions(ctx.t, d) if can else None)
        return
    if d.status == DifficultyStatus.RESOLVED.value:
        ctx.answer_callback("difficulty.already_resolved")
        ctx.reply("difficulty.already_resolved", id=d.id)
        return
    if action == "ack":
        if dsvc.acknowledge(d, ctx.now):
            ctx.audit("difficulty.acknowledged", "difficulty", d.id)
            ctx.reply("difficulty.acknowledged", id=d.id)
            await ctx.notify(StatusChanged(d))
        else:
            ctx.reply("difficulty.ack_already", id=d.id, status=ctx.t(f"difficulty.status.{d.status}"))
    elif action == "asg":
        members = await dsvc.team_members(ctx.session, d.team_id)
        rows = tuple((Button(p.name, DIFFICULTY_ASSIGN_TO.pack(d.id, p.id)),) for p in members)
        nav = (
            Button(ctx.t("core.btn_back"), DIFFICULTY_OPEN.pack(d.id)),
            Button(ctx.t("core.btn_cancel"), DIFFICULTY_ASSIGN_CANCEL.pack()),
        )
        ctx.reply("difficulty.ask_assignee", InlineKeyboard((*rows, nav)), id=d.id)
    elif action == "to":
        by_id = {p.id: p for p in await dsvc.team_members(ctx.session, d.team_id)}
        person = by_id.get(pid)
        if person is None:
            ctx.answer_callback("core.not_allowed", alert=True)
            ctx.reply("core.not_allowed")
            return
        if d.status == DifficultyStatus.ASSIGNED.value and d.assigned_to_id == person.id:
            # Pressed again (or twice in a hurry): nothing changes and nobody is told twice.
            ctx.answer_callback("difficulty.assign_already", id=d.id, name=person.name)
            ctx.reply("difficulty.assign_already", id=d.id, name=person.name)
            return
        dsvc.assign(d, person, ctx.now)
        ctx.audit("difficulty.assigned", "difficulty", d.id, to=person.id)
        ctx.reply("difficulty.assigned", id=d.id, name=person.name)
        if person.id != d.reporter_id:  # a reporter given their own difficulty hears it once, below
            await ctx.notify(StatusChanged(d))
        await ctx.notify(AssignedToYou(d, person))
    else:
        await ctx.core.start_dialog(ctx, "resolve_note", {"difficulty_id": d.id}, fresh=True)


@router.callback(PROBLEM_FOR_HOUSEHOLD.prefix, roles=STAFF)
async def problem_for_household(ctx: Ctx) -> None:
    """ "反映困难" under a household file: start /problem with that household (if it is one's own)."""
    pressed = PROBLEM_FOR_HOUSEHOLD.parse(ctx.inc.callback_data)
    hid = pressed[0] if pressed else None
    if hid is None or ctx.person is None or await pairing_start(ctx.session, ctx.person.id, hid) is None:
        ctx.answer_callback("cadre.hh_not_yours", alert=True)
        ctx.reply("cadre.hh_not_yours")
        return
    # Not fresh: a live draft is offered for resuming (never thrown away), anything else starts over with
    # this household, in the engine's one read of the dialog's row.
    await ctx.core.start_dialog(ctx, "problem", {"household_id": hid})
