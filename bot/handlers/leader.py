"""Team leaders' on-demand views: /overdue (逾期未走访), /week (本周驻村情况), /digest, /export, /report."""

from __future__ import annotations

from datetime import date, timedelta

from bot.core.context import Ctx
from bot.core.router import LEADERS, Router, callback_parts
from bot.core.types import Button, Document, InlineKeyboard, Photo
from bot.scheduler.rules import Rules

router = Router("leader")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rules(ctx: Ctx) -> Rules:
    return ctx.core.services.rules


def _person_id(ctx: Ctx) -> int:
    assert ctx.person is not None  # role check guarantees a bound person
    return ctx.person.id


@router.command("overdue", roles=LEADERS)
async def overdue(ctx: Ctx) -> None:
    from bot.handlers.nudge import show_with_nudges
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


@router.command("export", roles=LEADERS)
async def export(ctx: Ctx) -> None:
    rows = [[Button(ctx.t(f"leader.export.{k}"), f"ex:{k}")] for k in _EXPORT_KINDS]
    ctx.reply("leader.export.choose", InlineKeyboard(tuple(tuple(r) for r in rows)))


async def _leader_team(ctx: Ctx) -> int | None:
    from bot.scheduler.reports import leader_teams

    teams = await leader_teams(ctx.session, _person_id(ctx))
    return teams[0][0] if teams else None


@router.callback("ex", roles=LEADERS)
async def export_kind(ctx: Ctx) -> None:
    from bot.io.export import export_workbook

    parts = callback_parts(ctx)
    if len(parts) != 2 or parts[1] not in _EXPORT_KINDS:
        ctx.answer_callback("core.button_expired")
        return
    team_id = await _leader_team(ctx)
    if team_id is None:
        ctx.reply("leader.no_team")
        return
    kind = parts[1]
    to = ctx.today
    start = date(to.year, 1, 1)
    data = await export_workbook(ctx.session, kind, start, to, team_id, tz=ctx.core.settings.timezone)
    ctx.answer_callback()
    name = f"{kind}_{start.isoformat()}_{to.isoformat()}.xlsx"
    ctx.reply_document(
        Document(name, data, XLSX),
        caption=ctx.t("leader.export.caption", start=start.isoformat(), end=to.isoformat()),
    )


@router.command("report", roles=LEADERS)
async def report(ctx: Ctx) -> None:
    from bot.io.report import monthly_report

    team_id = await _leader_team(ctx)
    if team_id is None:
        ctx.reply("leader.no_team")
        return
    arg = ctx.inc.args.strip()
    month = (
        _parse_month(arg, ctx.today) if arg else (ctx.today.replace(day=1) - timedelta(days=1)).replace(day=1)
    )
    if month is None:
        ctx.reply("leader.report.bad_month")
        return
    png, xlsx = await monthly_report(
        ctx.session,
        month,
        team_id,
        tz=ctx.core.settings.timezone,
        today=ctx.today,
        t=ctx.t,
        latin=ctx.core.catalogs.get("en"),
    )
    label = f"{month.year}-{month.month:02d}"
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
