"""Monthly analysis (月分析) per work team: visits against target per cadre, village days, seasonal
coverage, difficulties and overdue households, as a one-page PNG (matplotlib, Agg) and an xlsx.

The report measures what the reminders measure: the county's loaded rules (`bot/scheduler/rules.py`)
give the seasonal windows, the visit cadence and the weekly village-day target, and overdue households
and seasonal coverage are counted the way `bot/scheduler/due.py` counts them (a new pairing counts
from its start; a visit of any kind counts for a window unless the rules require the seasonal kind).
The caller passes the rules it loaded once; nothing here reads a rules file.
"""

from __future__ import annotations

import asyncio
import calendar
import io
import logging
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.fonts import cjk_font
from bot.i18n import Catalogs, Safe, Translator
from bot.io.cells import append_row
from bot.io.labels import CATEGORY_ZH, DIFFICULTY_STATUS_ZH, label
from bot.io.template import style_header
from bot.scheduler.rules import Rules, Window, season_for
from bot.store.enums import Role, VisitKind
from bot.store.models import CheckIn, Difficulty, Household, Pairing, Person, Team, Village, Visit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportTargets:
    """What a month is measured against, taken from the rules the reminders use.

    visits_per_cadre None: one visit per paired household per cadence_days, prorated to the days
    counted. village_days_per_week: the rules' weekly village-day target, prorated likewise.
    """

    cadence_days: int
    village_days_per_week: float
    windows: dict[VisitKind, Window]
    require_seasonal_kind: bool = False
    visits_per_cadre: int | None = None

    @classmethod
    def from_rules(cls, rules: Rules, *, visits_per_cadre: int | None = None) -> ReportTargets:
        return cls(
            cadence_days=rules.visits.cadence_days,
            village_days_per_week=rules.village_days.target,
            windows={VisitKind(name): w for name, w in rules.seasons.windows().items()},
            require_seasonal_kind=rules.visits.require_seasonal_kind,
            visits_per_cadre=visits_per_cadre,
        )

    def visit_target(self, households: int, days: int) -> int:
        if self.visits_per_cadre is not None:
            return self.visits_per_cadre
        return -(-households * days // self.cadence_days)  # ceiling

    def day_target(self, days: int) -> int:
        return round(self.village_days_per_week * days / 7)


@dataclass
class CadreLine:
    person_id: int
    name: str
    phone: str
    households: int = 0
    visits: int = 0
    visit_target: int = 0
    days: int = 0
    day_target: int = 0
    overdue: int = 0


@dataclass
class OverdueLine:
    code: str
    head: str
    village: str
    cadre: str
    last_visit: date | None
    days_since: int | None


@dataclass
class DifficultyLine:
    created: date
    category: str
    description: str
    status: str
    resolved: date | None


@dataclass
class MonthlyFigures:
    """Everything the one-page summary shows, computed with set-based queries."""

    team: str
    month: date  # first day
    last_day: date
    as_of: date  # the last day counted: the month's last day, or today in the current month
    cadres: list[CadreLine]
    season: VisitKind
    season_start: date
    season_end: date
    season_done: int
    season_total: int
    difficulties_new: int
    difficulties_resolved: int
    difficulties_open: int
    overdue: list[OverdueLine]
    difficulties: list[DifficultyLine]
    cadence_days: int
    village_days_per_week: float

    @property
    def visits(self) -> tuple[int, int]:
        return sum(c.visits for c in self.cadres), sum(c.visit_target for c in self.cadres)

    @property
    def days(self) -> tuple[int, int]:
        return sum(c.days for c in self.cadres), sum(c.day_target for c in self.cadres)


def parse_month(value: str | date) -> date:
    """The first day of a month given as 2026-11 (or any date in it)."""
    if isinstance(value, date):
        return value.replace(day=1)
    y, m = value.strip().split("-")[:2]
    return date(int(y), int(m), 1)


def _utc(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time.min, tz).astimezone(UTC)


def _local_date(ts: datetime | None, tz: ZoneInfo) -> date | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(tz).date()


async def monthly_figures(
    session: AsyncSession,
    month: str | date,
    team_id: int | None,
    *,
    rules: Rules,
    visits_per_cadre: int | None = None,
    today: date | None = None,
) -> MonthlyFigures:
    """The month's numbers for one team (all teams when team_id is None), measured by `rules`."""
    targets = ReportTargets.from_rules(rules, visits_per_cadre=visits_per_cadre)
    zone = rules.tz
    first = parse_month(month)
    ndays = calendar.monthrange(first.year, first.month)[1]
    last = first.replace(day=ndays)
    as_of = min(last, today) if today else last
    counted_days = max((as_of - first).days + 1, 0)
    team_name = ""
    if team_id is not None:
        team = await session.get(Team, team_id)
        if team is None:
            raise ValueError(f"no team {team_id}")
        team_name = team.name

    staff_q = select(Person).where(Person.role.in_([Role.CADRE.value, Role.LEADER.value]), Person.active)
    staff_q = (
        staff_q.where(Person.team_id == team_id)
        if team_id is not None
        else staff_q.where(Person.team_id.is_not(None))
    )
    staff = list((await session.scalars(staff_q.order_by(Person.name, Person.id))).all())
    ids = [p.id for p in staff]

    # Pairings active on the as-of day: whom each cadre looks after now.
    active = select(Pairing.cadre_id, Pairing.household_id, Pairing.start_date).where(
        Pairing.cadre_id.in_(ids),
        Pairing.start_date <= as_of,
        or_(Pairing.end_date.is_(None), Pairing.end_date >= as_of),
    )
    rows = (await session.execute(active)).all()
    pairs = [(cid, hid) for cid, hid, _ in rows]
    started = {hid: start for _, hid, start in rows}
    households_of: dict[int, set[int]] = defaultdict(set)
    for cid, hid in pairs:
        households_of[cid].add(hid)
    all_households = {hid for _, hid in pairs}
    # Cadres have targets; a leader appears only when households are paired to them.
    lines = {
        p.id: CadreLine(p.id, p.name, p.phone or "")
        for p in staff
        if p.role == Role.CADRE.value or households_of.get(p.id)
    }

    for cid, n in (
        await session.execute(
            select(Visit.cadre_id, func.count())
            .where(Visit.cadre_id.in_(ids), Visit.visit_date >= first, Visit.visit_date <= as_of)
            .group_by(Visit.cadre_id)
        )
    ).all():
        if cid in lines:
            lines[cid].visits = n
    for cid, n in (
        await session.execute(
            select(CheckIn.cadre_id, func.count())
            .where(CheckIn.cadre_id.in_(ids), CheckIn.day >= first, CheckIn.day <= as_of)
            .group_by(CheckIn.cadre_id)
        )
    ).all():
        if cid in lines:
            lines[cid].days = n
    for line in lines.values():
        line.households = len(households_of.get(line.person_id, ()))
        line.visit_target = targets.visit_target(line.households, counted_days)
        line.day_target = targets.day_target(counted_days)

    # Seasonal coverage, as the window's close alert counts it: households paired by the window's
    # last day (so far) with a visit inside the window (of the window's kind if the rules say so).
    season, s0, s1 = season_for(as_of, targets.windows)
    upto = min(s1, as_of)
    season_households = {h for h in all_households if started[h] <= upto}
    covered: set[int] = set()
    hh_list = sorted(all_households)
    last_visit: dict[int, date] = {}
    for i in range(0, len(hh_list), 500):
        chunk = hh_list[i : i + 500]
        seasonal = select(Visit.household_id).where(
            Visit.household_id.in_(chunk), Visit.visit_date >= s0, Visit.visit_date <= upto
        )
        if targets.require_seasonal_kind:
            seasonal = seasonal.where(Visit.kind == season.value)
        covered |= set((await session.scalars(seasonal)).all())
        for hid, d in (
            await session.execute(
                select(Visit.household_id, func.max(Visit.visit_date))
                .where(Visit.household_id.in_(chunk), Visit.visit_date <= as_of)
                .group_by(Visit.household_id)
            )
        ).all():
            last_visit[hid] = d

    # Overdue on the as-of day, as the reminders count it: no visit in the last cadence_days days,
    # and paired for longer than that (a new pairing counts from its start).
    cutoff = as_of - timedelta(days=targets.cadence_days)
    overdue_ids = [
        h
        for h in hh_list
        if started[h] < cutoff and (last_visit.get(h) is None or last_visit[h] < cutoff)
    ]
    names = {p.id: p.name for p in staff}
    cadre_of = {hid: cid for cid, hid in sorted(pairs)}
    overdue: list[OverdueLine] = []
    for i in range(0, len(overdue_ids), 500):
        rows2 = (
            await session.execute(
                select(Household.id, Household.code, Household.head_name, Village.name)
                .join(Village, Household.village_id == Village.id)
                .where(Household.id.in_(overdue_ids[i : i + 500]))
            )
        ).all()
        for hid, code, head, village in rows2:
            lv = last_visit.get(hid)
            if cadre_of[hid] in lines:
                lines[cadre_of[hid]].overdue += 1
            overdue.append(
                OverdueLine(
                    code, head, village, names.get(cadre_of[hid], ""), lv, (as_of - lv).days if lv else None
                )
            )
    overdue.sort(key=lambda o: (o.last_visit or date.min, o.code))

    # Difficulties of the team: new and resolved in the month, open at its end.
    start, end = _utc(first, zone), _utc(last + timedelta(days=1), zone)
    dq = select(Difficulty).where(
        Difficulty.created_at < end, or_(Difficulty.resolved_at.is_(None), Difficulty.resolved_at >= start)
    )
    if team_id is not None:
        dq = dq.where(Difficulty.team_id == team_id)
    diffs = list((await session.scalars(dq.order_by(Difficulty.created_at))).all())

    def utc(ts: datetime) -> datetime:
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts  # SQLite returns naive UTC

    new = [d for d in diffs if utc(d.created_at) >= start]
    resolved = [d for d in diffs if d.resolved_at is not None and utc(d.resolved_at) < end]
    still_open = [d for d in diffs if d.resolved_at is None or utc(d.resolved_at) >= end]
    detail = [
        DifficultyLine(
            _local_date(d.created_at, zone) or first,
            label(CATEGORY_ZH, d.category),
            d.description,
            label(DIFFICULTY_STATUS_ZH, d.status),
            _local_date(d.resolved_at, zone),
        )
        for d in diffs
    ]
    return MonthlyFigures(
        team=team_name,
        month=first,
        last_day=last,
        as_of=as_of,
        cadres=list(lines.values()),
        season=season,
        season_start=s0,
        season_end=s1,
        season_done=len(covered & season_households),
        season_total=len(season_households),
        difficulties_new=len(new),
        difficulties_resolved=len(resolved),
        difficulties_open=len(still_open),
        overdue=overdue,
        difficulties=detail,
        cadence_days=targets.cadence_days,
        village_days_per_week=targets.village_days_per_week,
    )


# ---------------------------------------------------------------------------------------------------
# Chart


def _pinyin(name: str) -> str:
    from pypinyin import lazy_pinyin

    if not any(ord(c) > 127 for c in name):
        return name
    # Full-width punctuation has no glyph in a Latin font either: fold it to ASCII first.
    name = unicodedata.normalize("NFKC", name)
    return " ".join(p.capitalize() for p in lazy_pinyin(name) if p.strip())


def _pct(done: int, target: int) -> str:
    return f"{done / target:.0%}" if target else "—"


def _days_per_week(value: float) -> str:
    return f"{value:g}"


def kpi_lines(f: MonthlyFigures, t: Translator) -> list[str]:
    """The month's key figures, one line each (the chart's summary box and the chat's text)."""
    v_done, v_target = f.visits
    d_done, d_target = f.days
    return [
        t("io.report.kpi_visits", done=v_done, target=v_target, pct=_pct(v_done, v_target)),
        t(
            "report.kpi_days",
            done=d_done,
            target=d_target,
            pct=_pct(d_done, d_target),
            per_week=_days_per_week(f.village_days_per_week),
        ),
        t(
            "report.kpi_season",
            season=Safe(t(f"io.report.season.{f.season.value}")),
            start=f"{f.season_start:%m-%d}",
            end=f"{f.season_end:%m-%d}",
            done=f.season_done,
            total=f.season_total,
            pct=_pct(f.season_done, f.season_total),
        ),
        t(
            "io.report.kpi_difficulties",
            new=f.difficulties_new,
            resolved=f.difficulties_resolved,
            open=f.difficulties_open,
        ),
        t("io.report.kpi_overdue", days=f.cadence_days, count=len(f.overdue)),
    ]


def render_png(fig_data: MonthlyFigures, t: Translator, latin: Translator | None = None) -> bytes:
    """Draw the one-page summary; uses the Agg canvas directly so no global pyplot state is touched.

    latin is the translator used when no CJK font is installed (English; t itself when not given).
    """
    buf = io.BytesIO()
    report_figure(fig_data, t, latin).savefig(buf, format="png")
    return buf.getvalue()


def report_figure(fig_data: MonthlyFigures, t: Translator, latin: Translator | None = None) -> Figure:
    """The one-page summary's figure (laid out, not yet saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = cjk_font()
    if font is None:
        # No Chinese glyphs: English labels and pinyin names beat a page of empty boxes.
        t = latin or t
        names = [_pinyin(c.name) for c in fig_data.cadres]
        team = _pinyin(fig_data.team) if fig_data.team else t("io.report.all_teams")
        family: list[str] = ["DejaVu Sans"]
    else:
        names = [c.name for c in fig_data.cadres]
        team = fig_data.team or t("io.report.all_teams")
        family = font.families()

    # Fonts are passed to each text rather than through rcParams: rcParams are process-global and
    # reports may be drawn in worker threads at the same time.
    width, height = 8.27, 11.69  # A4 portrait: one printable page
    fig = Figure(figsize=(width, height), dpi=110)
    renderer = FigureCanvasAgg(fig).get_renderer()
    m = fig_data.month
    title = t("io.report.title", team=Safe(team), year=m.year, month=m.month, ym=f"{m.year}-{m.month:02d}")
    # The title shrinks until it fits the page width (a long team name must never be clipped).
    size = 15.0
    # (No bold: the Debian CJK fonts have one weight, and asking for another logs a warning.)
    head = fig.text(0.5, 0.975, title, ha="center", va="top", fontsize=size, fontfamily=family)
    while size > 8 and head.get_window_extent(renderer).width > 0.94 * width * fig.dpi:
        size -= 0.5
        head.set_fontsize(size)
    fig.text(
        0.5,
        0.945,
        t("io.report.period", start=fig_data.month.isoformat(), end=fig_data.as_of.isoformat()),
        ha="center",
        va="top",
        fontsize=9,
        fontfamily=family,
        color="#555555",
    )
    box = fig.text(
        0.06,
        0.92,
        "\n".join(f"• {k}" for k in kpi_lines(fig_data, t)),
        va="top",
        fontsize=10.5,
        fontfamily=family,
        linespacing=1.6,
        bbox={"boxstyle": "round,pad=0.6", "facecolor": "#F3F7FB", "edgecolor": "#BFD3E6"},
    )
    # The charts start right under the summary box, whatever its height.
    box.draw(renderer)  # lays out the box around the text
    patch = box.get_bbox_patch()
    assert patch is not None
    box_bottom = patch.get_window_extent(renderer).y0 / (height * fig.dpi)
    if not fig_data.cadres:
        fig.text(0.5, box_bottom - 0.1, t("io.report.no_cadres"), ha="center", fontsize=12, fontfamily=family)
    else:
        n = len(names)
        top, bottom, gap = box_bottom - 0.055, 0.04, 0.075
        each = (top - bottom - gap) / 2
        left = 0.06 + min(max(len(x) for x in names), 12) * 0.012 + 0.03
        ax1 = fig.add_axes((left, top - each, 0.94 - left, each))
        ax2 = fig.add_axes((left, bottom, 0.94 - left, each))
        ys = list(range(n))
        h = 0.38
        tick_size = 8 if n > 12 else 9

        def target_and_actual(ax: Any, target: list[int], actual: list[int], colors: tuple[str, str],
                              label: str, title: str) -> None:
            """Two bars per cadre: the target (pale) and what was done, with the numbers at the end."""
            ax.barh([y - h / 2 for y in ys], target, h, color=colors[0], label=t("io.report.target"))
            bars = ax.barh([y + h / 2 for y in ys], actual, h, color=colors[1], label=label)
            ax.bar_label(bars, padding=2, fontsize=tick_size - 1, fontfamily=family)
            ax.set_title(title, fontsize=11, fontfamily=family, loc="left", pad=8)
            # The legend sits in the title row, right-aligned above the plot: it never covers a bar.
            ax.legend(prop={"family": family, "size": 8}, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                      ncol=2, frameon=False, borderaxespad=0.2)
            ax.set_xlim(0, max([*target, *actual, 1]) * 1.12)

        cadres = fig_data.cadres
        target_and_actual(ax1, [c.visit_target for c in cadres], [c.visits for c in cadres],
                          ("#C9D6E3", "#2E75B6"), t("io.report.visits"), t("io.report.visits_chart"))
        target_and_actual(ax2, [c.day_target for c in cadres], [c.days for c in cadres],
                          ("#E2D4BF", "#C55A11"), t("io.report.days"), t("io.report.days_chart"))
        for ax in (ax1, ax2):
            ax.set_yticks(ys, names, fontsize=tick_size, fontfamily=family)
            ax.invert_yaxis()
            ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
            ax.grid(axis="x", alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
            for tick in ax.get_xticklabels():
                tick.set_fontfamily(family)
    if font is None:
        fig.text(
            0.99,
            0.005,
            t("io.report.font_missing"),
            ha="right",
            fontsize=6,
            color="#888888",
            fontfamily=family,
        )
    return fig


# ---------------------------------------------------------------------------------------------------
# Workbook


def render_xlsx(f: MonthlyFigures, t: Translator, png: bytes | None = None) -> bytes:
    """The same month as a workbook: summary, per-cadre table, overdue households, difficulties."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t("io.report.sheet_summary")
    append_row(ws, [t("io.report.col_item"), t("io.report.col_value")])
    v_done, v_target = f.visits
    d_done, d_target = f.days
    title = t(
        "io.report.title",
        team=Safe(f.team or t("io.report.all_teams")),
        year=f.month.year,
        month=f.month.month,
        ym=f"{f.month.year}-{f.month.month:02d}",
    )
    for item, value in (
        (title, t("io.report.period", start=f.month.isoformat(), end=f.as_of.isoformat())),
        (t("io.report.col_visits"), v_done),
        (t("io.report.col_visit_target"), v_target),
        (t("io.report.col_visit_rate"), v_done / v_target if v_target else None),
        (t("io.report.col_days"), d_done),
        (t("io.report.col_day_target"), d_target),
        (
            t(
                "report.season_item",
                season=Safe(t(f"io.report.season.{f.season.value}")),
                start=f"{f.season_start:%m-%d}",
                end=f"{f.season_end:%m-%d}",
            ),
            f.season_done / f.season_total if f.season_total else None,
        ),
        (
            t(
                "io.report.kpi_difficulties",
                new=f.difficulties_new,
                resolved=f.difficulties_resolved,
                open=f.difficulties_open,
            ),
            f.difficulties_open,
        ),
        (t("io.report.kpi_overdue", days=f.cadence_days, count=len(f.overdue)), len(f.overdue)),
    ):
        append_row(ws, [item, value])
        if isinstance(value, float):
            ws.cell(ws.max_row, 2).number_format = "0%"
    style_header(ws, (48, 30))
    if png:
        try:
            from openpyxl.drawing.image import Image

            img = Image(io.BytesIO(png))
            img.width, img.height = img.width // 2, img.height // 2
            ws.add_image(img, "D2")
        except ImportError:  # Pillow missing: the numbers are all there anyway
            pass

    ws = wb.create_sheet(t("io.report.sheet_cadres"))
    append_row(ws,
        [
            t(k)
            for k in (
                "io.report.col_cadre",
                "io.report.col_phone",
                "io.report.col_households",
                "io.report.col_visits",
                "io.report.col_visit_target",
                "io.report.col_visit_rate",
                "io.report.col_days",
                "io.report.col_day_target",
                "io.report.col_overdue",
            )
        ]
    )
    for c in f.cadres:
        append_row(ws,
            [
                c.name,
                c.phone,
                c.households,
                c.visits,
                c.visit_target,
                c.visits / c.visit_target if c.visit_target else None,
                c.days,
                c.day_target,
                c.overdue,
            ]
        )
        ws.cell(ws.max_row, 6).number_format = "0%"
    style_header(ws, (12, 14, 10, 10, 10, 12, 10, 10, 10))

    ws = wb.create_sheet(t("io.report.sheet_overdue"))
    append_row(ws,
        [
            t(k)
            for k in (
                "io.report.col_code",
                "io.report.col_head",
                "io.report.col_village",
                "io.report.col_cadre",
                "io.report.col_last_visit",
                "io.report.col_days_since",
            )
        ]
    )
    for o in f.overdue:
        append_row(ws, [o.code, o.head, o.village, o.cadre, o.last_visit or t("io.report.never"), o.days_since])
        if o.last_visit:
            ws.cell(ws.max_row, 5).number_format = "yyyy-mm-dd"
    style_header(ws, (18, 10, 10, 10, 12, 10))

    ws = wb.create_sheet(t("io.report.sheet_difficulties"))
    append_row(ws,
        [
            t(k)
            for k in (
                "io.report.col_created",
                "io.report.col_category",
                "io.report.col_description",
                "io.report.col_status",
                "io.report.col_resolved",
            )
        ]
    )
    for d in f.difficulties:
        append_row(ws, [d.created, d.category, d.description, d.status, d.resolved])
        ws.cell(ws.max_row, 1).number_format = "yyyy-mm-dd"
        if d.resolved:
            ws.cell(ws.max_row, 5).number_format = "yyyy-mm-dd"
    style_header(ws, (12, 10, 50, 10, 12))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def default_catalogs() -> Catalogs:
    """The shipped catalogs (compiled on first use)."""
    from bot.settings import data_dir

    return Catalogs(data_dir("locales"))


async def monthly_report(
    session: AsyncSession,
    month: str | date,
    team_id: int | None,
    *,
    rules: Rules,
    visits_per_cadre: int | None = None,
    today: date | None = None,
    t: Translator | None = None,
    latin: Translator | None = None,
) -> tuple[bytes, bytes]:
    """The team's one-page monthly summary as (PNG bytes, xlsx bytes); team_id None covers all teams.

    t renders the texts (Chinese by default); latin is used for the chart when no CJK font exists.
    """
    png, xlsx, _ = await monthly_report_with_figures(
        session, month, team_id, rules=rules, visits_per_cadre=visits_per_cadre, today=today, t=t, latin=latin
    )
    return png, xlsx


async def monthly_report_with_figures(
    session: AsyncSession,
    month: str | date,
    team_id: int | None,
    *,
    rules: Rules,
    visits_per_cadre: int | None = None,
    today: date | None = None,
    t: Translator | None = None,
    latin: Translator | None = None,
) -> tuple[bytes, bytes, MonthlyFigures]:
    """monthly_report, and the figures it drew (for a text summary next to the files)."""
    if t is None or latin is None:
        catalogs = default_catalogs()
        t = t or catalogs.get("zh_CN")
        latin = latin or catalogs.get("en")
    figures = await monthly_figures(
        session, month, team_id, rules=rules, visits_per_cadre=visits_per_cadre, today=today
    )
    # Drawing takes a second or two: keep it off the event loop that serves the chat.
    png = await asyncio.to_thread(render_png, figures, t, latin)
    return png, render_xlsx(figures, t, png), figures
