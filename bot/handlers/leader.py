"""Team leaders' on-demand views: /overdue (逾期未走访), /week (本周驻村情况), /digest, /export, /report."""

from __future__ import annotations

from datetime import date, timedelta

from bot.buttons import EXPORT_LEDGER, EXPORT_PERIOD, OVERDUE_NUDGE, REPORT_MONTH
from bot.core.context import Ctx
from bot.core.router import LEADERS, Router
from bot.core.types import Button, Document, InlineKeyboard, Photo
from bot.handlers.nudge import nudge_pressed, show_with_nudges
from bot.scheduler.rules import Rules

router = Router("leader")
router.callback(OVERDUE_NUDGE.prefix, roles=LEADERS)(nudge_pressed)  # /overdue's buttons

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rules(ctx: Ctx) -> Rules:
    return ctx.core.services.rules


def _person_id(ctx: Ctx) -> int:
    assert ctx.person is not None  # role check guarantees a bound person
    return ctx.person.id


@router.command("overdue", roles=LEADERS)
async def overdue(ctx: Ctx) -> None:
    from bot.scheduler.reports import overdue_report

    report = await overdue_report(ctx.session, _person_id(ctx), ctx.today, t=ctx.t, rules=_rules(ctx))
    show_with_nudges(ctx, report.pages, report.overdue)


@router.command("week", roles=LEADERS)
async def week(ctx: Ctx) -> None:
    from bot.scheduler.reports import week_report

    report = await week_report(ctx.session, _person_id(ctx), ctx.today, t=ctx.t, rules=_rules(ctx))
    for page in report.pages:
        ctx.reply_text(page)


@router.command("digest", roles=LEADERS)
async def digest(ctx: Ctx) -> None:
    from bot.scheduler.reports import weekly_digest

    d = await weekly_digest(
        ctx.session,
        _person_id(ctx),
        ctx.today,
        t=ctx.t,
        fallback=ctx.core.catalogs.get("en"),
        rules=_rules(ctx),
    )
    ctx.reply_text(d.text)
    if d.chart_png:
        ctx.reply_photo(Photo(data=d.chart_png, filename="digest.png"), caption=d.caption)


_EXPORT_KINDS = ("visits", "difficulties", "households", "villagedays")
_DATED_KINDS = ("visits", "difficulties", "villagedays")  # the households roster is as of today
_PERIODS = ("this", "last", "year")  # this month, last month, 1 January to today


def _period(name: str, today: date) -> tuple[date, date]:
    """The export period a button names, counted from today (local)."""
    if name == "this":
        return today.replace(day=1), today
    if name == "last":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    return date(today.year, 1, 1), today


@router.command("export", roles=LEADERS)
async def export(ctx: Ctx) -> None:
    rows = [[Button(ctx.t(f"leader.export.{k}"), EXPORT_LEDGER.pack(k))] for k in _EXPORT_KINDS]
    ctx.reply("leader.export.choose", InlineKeyboard(tuple(tuple(r) for r in rows)))


async def _leader_team(ctx: Ctx) -> int | None:
    from bot.scheduler.reports import leader_teams

    teams = await leader_teams(ctx.session, _person_id(ctx))
    return teams[0][0] if teams else None


@router.callback(EXPORT_LEDGER.prefix, roles=LEADERS)
async def export_kind(ctx: Ctx) -> None:
    """ex:KIND asks for the period (dated ledgers); ex:KIND:PERIOD sends the workbook."""
    from bot.io.export import export_workbook

    payload = ctx.inc.callback_data
    pressed: tuple[str, str | None] | None = None
    if (with_period := EXPORT_PERIOD.parse(payload)) is not None:
        pressed = (with_period[0], with_period[1])
    elif (ledger_only := EXPORT_LEDGER.parse(payload)) is not None:
        pressed = (ledger_only[0], None)
    if pressed is None or pressed[0] not in _EXPORT_KINDS or (pressed[1] is not None and pressed[1] not in _PERIODS):
        ctx.answer_callback("core.button_expired")
        return
    kind, period = pressed
    ledger = ctx.t(f"leader.export.{kind}")
    if period is None and kind in _DATED_KINDS:
        ctx.answer_callback()
        buttons = []
        for p in _PERIODS:
            first, last = _period(p, ctx.today)
            buttons.append([Button(ctx.t(f"report.period.{p}", start=first.isoformat(), end=last.isoformat()),
                                   EXPORT_PERIOD.pack(kind, p))])
        ctx.reply("report.export.which_period", InlineKeyboard(tuple(tuple(r) for r in buttons)), ledger=ledger)
        return
    team_id = await _leader_team(ctx)
    if team_id is None:
        ctx.reply("leader.no_team")
        return
    start, to = _period(period or "year", ctx.today)
    data = await export_workbook(ctx.session, kind, start, to, team_id, tz=ctx.core.settings.timezone)
    ctx.answer_callback()
    if kind in _DATED_KINDS:
        name = f"{kind}_{start.isoformat()}_{to.isoformat()}.xlsx"
        caption = ctx.t("leader.export.caption", ledger=ledger, start=start.isoformat(), end=to.isoformat())
    else:
        name = f"{kind}_{to.isoformat()}.xlsx"
        caption = ctx.t("report.export.caption_as_of", ledger=ledger, date=to.isoformat())
    ctx.reply_document(Document(name, data, XLSX), caption=caption)


def _month_label(month: date) -> str:
    return f"{month.year}-{month.month:02d}"


@router.command("report", roles=LEADERS)
async def report(ctx: Ctx) -> None:
    """/report offers this month and last month; /report 2026-11 (or 11月) goes straight to that month."""
    team_id = await _leader_team(ctx)
    if team_id is None:
        ctx.reply("leader.no_team")
        return
    arg = ctx.inc.args.strip()
    if not arg:
        this = ctx.today.replace(day=1)
        last = (this - timedelta(days=1)).replace(day=1)
        rows = (
            (Button(ctx.t("report.month.this", month=_month_label(this)), REPORT_MONTH.pack(_month_label(this))),),
            (Button(ctx.t("report.month.last", month=_month_label(last)), REPORT_MONTH.pack(_month_label(last))),),
        )
        ctx.reply("report.choose_month", InlineKeyboard(rows))
        return
    month = _parse_month(arg, ctx.today)
    if month is None:
        ctx.reply("leader.report.bad_month")
        return
    await _send_report(ctx, team_id, month)


@router.callback(REPORT_MONTH.prefix, roles=LEADERS)
async def report_month(ctx: Ctx) -> None:
    pressed = REPORT_MONTH.parse(ctx.inc.callback_data)
    month = _parse_month(pressed[0], ctx.today) if pressed else None
    if month is None:
        ctx.answer_callback("core.button_expired")
        return
    team_id = await _leader_team(ctx)
    if team_id is None:
        ctx.reply("leader.no_team")
        return
    ctx.answer_callback()
    await _send_report(ctx, team_id, month)


async def _send_report(ctx: Ctx, team_id: int, month: date) -> None:
    """The month's key figures as text, then the one-page chart and the workbook."""
    from bot.io.report import kpi_lines, monthly_report_with_figures

    png, xlsx, figures = await monthly_report_with_figures(
        ctx.session,
        month,
        team_id,
        rules=_rules(ctx),
        today=ctx.today,
        t=ctx.t,
        latin=ctx.core.catalogs.get("en"),
    )
    label = _month_label(month)
    head = ctx.t(
        "report.text_head",
        team=figures.team,
        month=label,
        start=figures.month.isoformat(),
        end=figures.as_of.isoformat(),
    )
    ctx.reply_text("\n".join([head, *(f"• {line}" for line in kpi_lines(figures, ctx.t))]))
    ctx.reply_photo(
        Photo(data=png, filename=f"report_{label}.png"), caption=ctx.t("leader.report.caption", month=label)
    )
    ctx.reply_document(Document(f"report_{label}.xlsx", xlsx, XLSX))


def _parse_month(raw: str, today: date) -> date | None:
    """ "2026-11", "2026年11月", "11月" (this year) → first day of that month."""
    import re

    m = re.fullmatch(r"(?:(\d{4})\s*[-年./]\s*)?(\d{1,2})\s*月?", raw.strip())
    if not m:
        return None
    month = int(m.group(2))
    if not 1 <= month <= 12:
        return None
    year = int(m.group(1)) if m.group(1) else today.year
    return date(year, month, 1)
