"""/households (我的帮扶户): the list with visit and difficulty status (hh:p:<page>) and the household
file (hh:o:<household_id>, 一户一档). Callback data is untrusted: every open is checked with
can_see_household."""

from __future__ import annotations

from datetime import date

from bot.buttons import (
    CADRE_HOUSEHOLDS_PAGE,
    HOUSEHOLD_FILE,
    HOUSEHOLD_UNBIND,
    HOUSEHOLDS_PAGE,
    MON_CHECK,
    PROBLEM_FOR_HOUSEHOLD,
    VISIT_REMINDER,
)
from bot.core.context import Ctx
from bot.core.router import STAFF, Router
from bot.core.types import Button, InlineKeyboard
from bot.services import monitoring as mon
from bot.services.households import HouseholdRow, file_head, household_accounts, household_file, rows_for
from bot.services.members import member_detail
from bot.services.people import can_see_household
from bot.services.texts import fmt_date, kinds_text
from bot.services.visits import current_season, visit_kinds
from bot.store.enums import Role
from bot.store.models import Account, Household


async def monitoring_lines(ctx: Ctx, household_id: int) -> list[str]:
    """The household's monitoring status (防止返贫监测) and measures, for the household file."""
    t = ctx.t
    cases = await mon.recent_cases_with_measures(ctx.session, household_id, 3)  # one statement
    if not cases:
        return [t("mon.file.none")]
    out: list[str] = []
    for c, measures in cases:
        out.append(t("mon.file.case", id=c.id, step=t(f"mon.step.{c.step}"), phase=t(f"mon.phase.{c.phase}"),
                     kind=t(f"mon.kind.{c.kind}") if c.kind else t("mon.kind.none")))
        for m in measures:
            out.append(t("mon.file.measure", topic=t(f"mon.topic.{m.topic}"), on=m.started_on.isoformat()))
    return out


MAX_UNBIND_BUTTONS = 4

router = Router("households")

PAGE_SIZE = 10
EXCERPT = 40  # characters of a visit's or difficulty's text shown in the file (marked with …)
PLAN_EXCERPT = 600


def excerpt(text: str, n: int = EXCERPT) -> str:
    """Shorten for a list line, visibly (…); the full text stays in the ledger."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


@router.command("households", roles=STAFF)
async def households(ctx: Ctx) -> None:
    rows = await _rows(ctx)
    if rows is None:
        return
    assert ctx.person is not None
    if ctx.role is not Role.CADRE and any(r.cadre_id != ctx.person.id for r in rows):
        _team_summary(ctx, rows)
    else:
        _show_page(ctx, rows, 0)


@router.callback(HOUSEHOLDS_PAGE.prefix, roles=STAFF)
async def on_button(ctx: Ctx) -> None:
    """HOUSEHOLDS_PAGE (whole list), CADRE_HOUSEHOLDS_PAGE (one cadre's), HOUSEHOLD_FILE (一户一档)."""
    data = ctx.inc.callback_data
    if (page := HOUSEHOLDS_PAGE.parse(data)) is not None:
        rows = await _rows(ctx)
        if rows is not None:
            _show_page(ctx, rows, page[0])
    elif (cadre_page := CADRE_HOUSEHOLDS_PAGE.parse(data)) is not None:
        cadre_id, page_no = cadre_page
        rows = await _rows(ctx)
        if rows is None:
            return
        # Only cadres already in the speaker's own scope: a forged cadre id shows nothing.
        mine = [r for r in rows if r.cadre_id == cadre_id]
        if not mine:
            ctx.answer_callback("core.not_allowed", alert=True)
            ctx.reply("core.not_allowed")
            return
        _show_page(ctx, mine, page_no, cadre_id=cadre_id)
    elif (opened := HOUSEHOLD_FILE.parse(data)) is not None:
        await _show_file(ctx, opened[0])
    elif (unbind := HOUSEHOLD_UNBIND.parse(data)) is not None:
        await _unbind(ctx, unbind[0])
    else:
        ctx.answer_callback("core.button_expired")


async def _rows(ctx: Ctx) -> list[HouseholdRow] | None:
    """What the speaker may see, or None (and a reply) when that is nothing."""
    assert ctx.person is not None
    rows = await rows_for(ctx.session, ctx.person, ctx.today, ctx.core.services.rules)
    if not rows:
        ctx.reply("cadre.no_households")
        return None
    return rows


def _season_line(ctx: Ctx) -> str | None:
    season = current_season(ctx.core.services.rules, ctx.today)
    if season is None:
        return None
    return ctx.t(
        "households.season_now",
        season=ctx.t(f"visit.kind.{season.name}"),
        start=fmt_date(ctx, season.start),
        end=fmt_date(ctx, season.end),
    )


def _team_summary(ctx: Ctx, rows: list[HouseholdRow]) -> None:
    """The leader's first view: one line per cadre (households, overdue, seasonal, difficulties)."""
    cadence = ctx.core.services.rules.visits.cadence_days
    today = ctx.today
    by_cadre: dict[int, list[HouseholdRow]] = {}
    for r in rows:
        by_cadre.setdefault(r.cadre_id, []).append(r)
    lines = [ctx.t("households.team_head", n=len(rows), cadres=len(by_cadre))]
    if (season := _season_line(ctx)) is not None:
        lines.append(season)
    buttons: list[tuple[Button, ...]] = []
    for cadre_id, mine in by_cadre.items():
        overdue = sum(1 for r in mine if r.days_overdue(today, cadence) > 0)
        parts = [ctx.t("households.team_cadre", name=mine[0].cadre_name, n=len(mine))]
        if overdue:
            parts.append(ctx.t("households.team_overdue", n=overdue, days=cadence))
        missing = sum(1 for r in mine if r.season_done is False)
        if missing:
            parts.append(ctx.t("households.team_season_missing", n=missing))
        diffs = sum(r.open_difficulties for r in mine)
        if diffs:
            parts.append(ctx.t("households.open_difficulties", n=diffs))
        lines.append(" · ".join(parts))
        buttons.append((Button(mine[0].cadre_name, CADRE_HOUSEHOLDS_PAGE.pack(cadre_id, 0)),))
    buttons.append((Button(ctx.t("households.btn_all"), HOUSEHOLDS_PAGE.pack(0)),))
    lines.append(ctx.t("households.team_hint"))
    ctx.reply_text("\n".join(lines), InlineKeyboard(tuple(buttons)))


def _show_page(ctx: Ctx, rows: list[HouseholdRow], page: int, cadre_id: int | None = None) -> None:
    """One page of the list; the team's is grouped by cadre (rows come sorted by cadre)."""
    assert ctx.person is not None
    today = ctx.today
    team_view = cadre_id is None and any(r.cadre_id != ctx.person.id for r in rows)
    pages = -(-len(rows) // PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    shown = rows[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    if cadre_id is not None and cadre_id != ctx.person.id:
        head = ctx.t(
            "households.head_cadre", name=rows[0].cadre_name, n=len(rows), page=page + 1, pages=pages
        )
    else:
        head_key = "households.head_team" if team_view else "households.head"
        head = ctx.t(head_key, n=len(rows), page=page + 1, pages=pages)
    lines = [head]
    if (season := _season_line(ctx)) is not None:
        lines.append(season)
    per_cadre: dict[int, int] = {}
    for r in rows:
        per_cadre[r.cadre_id] = per_cadre.get(r.cadre_id, 0) + 1
    current_cadre: int | None = None
    cadence = ctx.core.services.rules.visits.cadence_days
    for i, r in enumerate(shown, page * PAGE_SIZE + 1):
        if team_view and r.cadre_id != current_cadre:
            current_cadre = r.cadre_id
            lines.append("")  # a blank line before each cadre's group
            lines.append(ctx.t("households.cadre_head", name=r.cadre_name, n=per_cadre[r.cadre_id]))
        lines.append(_line(ctx, i, r, today, cadence))
    buttons: list[tuple[Button, ...]] = []
    for j in range(0, len(shown), 2):
        buttons.append(tuple(Button(r.head_name, HOUSEHOLD_FILE.pack(r.household_id)) for r in shown[j : j + 2]))
    def turn(to: int) -> str:
        return HOUSEHOLDS_PAGE.pack(to) if cadre_id is None else CADRE_HOUSEHOLDS_PAGE.pack(cadre_id, to)

    nav: list[Button] = []
    if page > 0:
        nav.append(Button(ctx.t("cadre.btn_prev"), turn(page - 1)))
    if page < pages - 1:
        nav.append(Button(ctx.t("cadre.btn_next"), turn(page + 1)))
    if nav:
        buttons.append(tuple(nav))
    lines.append(ctx.t("households.open_hint"))
    ctx.reply_text("\n".join(lines), InlineKeyboard(tuple(buttons)))


def _line(ctx: Ctx, i: int, r: HouseholdRow, today: date, cadence: int) -> str:
    parts = [ctx.t("households.line_name", i=i, name=r.head_name)]
    overdue = r.days_overdue(today, cadence)
    if overdue > 0:
        parts.append(ctx.t("households.overdue_mark", days=overdue))  # the households /overdue lists
    if r.last_visit is None:
        parts.append(ctx.t("households.never_visited"))
    elif r.last_visit >= today:
        parts.append(ctx.t("households.last_visit_today"))
    else:
        parts.append(
            ctx.t("households.last_visit", date=fmt_date(ctx, r.last_visit), days=r.days_since(today))
        )
    if r.season_done is True:
        parts.append(ctx.t("households.season_done"))
    elif r.season_done is False:
        parts.append(ctx.t("households.season_missing"))
    if r.open_difficulties:
        parts.append(ctx.t("households.open_difficulties", n=r.open_difficulties))
    return " · ".join(parts)


async def _show_file(ctx: Ctx, household_id: int | None) -> None:
    # The household, its members, village, cadre and the speaker's own pairing in one statement; the
    # ledgers only once the speaker may see it.
    reader = ctx.person.id if ctx.person is not None else None
    head = await file_head(ctx.session, household_id, reader) if household_id else None
    household = head.household if head is not None else None
    if (
        head is None
        or household is None
        or not await can_see_household(ctx.session, ctx.person, household, paired=head.since is not None)
    ):
        ctx.answer_callback("households.not_yours", alert=True)
        ctx.reply("households.not_yours")
        if household is not None:
            ctx.audit("household.refused", "household", household.id)
        return
    f = await household_file(ctx.session, head)
    t = ctx.t
    h = f.household
    causes = "、".join(t(f"cause.{c}") for c in (h.poverty_causes or [])) or t("households.none")
    if h.income_per_head is None:
        income = t("households.unknown")
    elif h.income_year:
        income = t("households.income", amount=f"{h.income_per_head:,.0f}", year=h.income_year)
    else:
        income = t("households.income_no_year", amount=f"{h.income_per_head:,.0f}")
    lines = [
        t(
            "households.file_head",
            name=h.head_name,
            code=h.code,
            village=f.village_name,
            group=h.group_no or "-",
        ),
        t("households.file_basic", status=t(f"hhstatus.{h.status}"), members=h.members_count, income=income),
        t("households.file_causes", causes=causes),
        t("households.file_cadre", cadre=f.cadre_name or t("households.none")),
        t("households.file_plan", plan=excerpt(h.plan, PLAN_EXCERPT) if h.plan else t("households.none")),
    ]
    # Plain digits: Telegram makes a phone number in the text a tap-to-call link (a tel: anchor is not
    # clickable in its HTML).
    phone = "".join(ch for ch in (h.phone or "") if ch.isdigit() or ch == "+")
    lines.append(t("households.file_phone", phone=phone) if phone else t("households.file_no_phone"))
    if h.address:
        lines.append(t("households.file_address", address=h.address))
    if f.members:
        lines.append(t("households.file_members_head", n=len(f.members)))
        for m in f.members[:12]:
            lines.append(t("households.file_member", name=m.name, detail=member_detail(t, m)))
    lines.append(t("households.file_visits_head"))
    if not f.visits:
        lines.append(t("households.file_no_visits"))
    for v, cadre_name in f.visits:
        lines.append(
            t(
                "households.file_visit",
                date=fmt_date(ctx, v.visit_date),
                kind=kinds_text(t, visit_kinds(v)),
                done=excerpt(v.done),
                cadre=cadre_name,
            )
        )
    lines.append(t("households.file_difficulties_head"))
    if not f.difficulties:
        lines.append(t("households.file_no_difficulties"))
    for d in f.difficulties:
        lines.append(
            t(
                "households.file_difficulty",
                id=d.id,
                category=t(f"difficulty.category.{d.category}"),
                status=t(f"difficulty.status.{d.status}"),
                description=excerpt(d.description),
            )
        )
    lines += await monitoring_lines(ctx, h.id)
    buttons: list[tuple[Button, ...]] = []
    if ctx.person is not None and f.since is not None:  # the speaker's own current pairing
        buttons.append(
            (
                Button(t("households.btn_visit"), VISIT_REMINDER.pack(h.id)),
                Button(t("households.btn_problem"), PROBLEM_FOR_HOUSEHOLD.pack(h.id)),
            )
        )
    buttons.append((Button(t("mon.btn.check"), MON_CHECK.pack(h.id)),))
    # The chat accounts bound to the household (a door-card scan or an invite code): a stranger is unbound here.
    bound = await household_accounts(ctx.session, h.id)
    if bound:
        lines.append(t("households.file_accounts", n=len(bound)))
        for acc in bound[:MAX_UNBIND_BUTTONS]:
            label = t("households.btn_unbind", name=acc.display_name or t(f"channel.{acc.channel}"))
            buttons.append((Button(label, HOUSEHOLD_UNBIND.pack(acc.id)),))
    buttons.append((Button(t("households.btn_back_list"), HOUSEHOLDS_PAGE.pack(0)),))
    ctx.reply_text("\n".join(lines), InlineKeyboard(tuple(buttons)))


async def _unbind(ctx: Ctx, account_id: int) -> None:
    """HOUSEHOLD_UNBIND: a staff member who may see the household releases a villager account bound to it (a
    stranger who scanned the door card, a phone that changed hands). Idempotent; the account is told."""
    account = await ctx.session.get(Account, account_id, with_for_update=True)
    household = await ctx.session.get(Household, account.household_id) if account and account.household_id else None
    if account is None or household is None:
        ctx.answer_callback("households.unbind_already")
        ctx.reply("households.unbind_already")
        return
    if not await can_see_household(ctx.session, ctx.person, household):
        ctx.answer_callback("households.not_yours", alert=True)
        ctx.reply("households.not_yours")
        ctx.audit("account.unbind_refused", "account", account.id)
        return
    account.household_id = None
    account.commands_scope = None  # the menu changes with the role
    ctx.audit("account.unbound", "account", account.id, household_id=household.id)
    ctx.answer_callback()
    ctx.reply("households.unbound", name=household.head_name)
    ctx.send_to(account, "households.unbound_to_villager", name=household.head_name)
