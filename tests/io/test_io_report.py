"""Monthly report: the numbers for a month built through the ORM, and the PNG/xlsx rendering."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import openpyxl
import pytest
from io_helpers import roster_bytes
from sqlalchemy import delete, select

from bot.io import report
from bot.io.report import ReportTargets, monthly_figures, monthly_report, season_for
from bot.io.roster import import_file
from bot.io.template import sample_rows
from bot.scheduler.rules import load_rules
from bot.store.enums import VisitKind
from bot.store.models import CheckIn, Difficulty, Household, Pairing, Person, Team

TEAM = "石桥村驻村工作队"
RULES = load_rules()  # the shipped defaults: autumn 09-20..10-31, 30-day cadence, 2 village days a week
WINDOWS = ReportTargets.from_rules(RULES).windows


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _month(sessions: Any, clock: Any) -> dict[str, Any]:
    """The sample roster plus one November of work for the first cadre of TEAM."""
    async with sessions() as s:
        assert (await import_file(s, roster_bytes(sample_rows()), "r.xlsx", clock=clock)).applied
        team = (await s.execute(select(Team).where(Team.name == TEAM))).scalar_one()
        pairs = (
            await s.execute(
                select(Pairing.cadre_id, Pairing.household_id)
                .join(Person, Pairing.cadre_id == Person.id)
                .where(Person.team_id == team.id, Pairing.end_date.is_(None))
                .order_by(Pairing.household_id)
            )
        ).all()
        cadre = pairs[0][0]
        mine = [h for c, h in pairs if c == cadre]
        from bot.store.models import Visit

        def visit(key: str, hh: int, day: date, kind: str) -> Visit:
            return Visit(
                idem_key=key,
                household_id=hh,
                cadre_id=cadre,
                visit_date=day,
                kind=kind,
                created_at=_utc(day.year, day.month, day.day),
            )

        s.add_all(
            [
                visit("a", mine[0], date(2026, 11, 2), "autumn"),
                visit("b", mine[1], date(2026, 11, 9), "autumn"),
                visit("c", mine[0], date(2026, 11, 20), "routine"),
                visit("d", mine[2], date(2026, 10, 10), "routine"),  # last month: too long ago by 28 Nov
                *[
                    CheckIn(cadre_id=cadre, day=date(2026, 11, d), at=_utc(2026, 11, d, 1))
                    for d in (2, 3, 9, 16)
                ],
                CheckIn(cadre_id=cadre, day=date(2026, 10, 30), at=_utc(2026, 10, 30, 1)),
            ]
        )
        other_team = (await s.execute(select(Team.id).where(Team.name != TEAM))).scalar_one()

        def difficulty(
            key: str, created: datetime, resolved: datetime | None, team_id: int = team.id
        ) -> Difficulty:
            return Difficulty(
                idem_key=key,
                reporter_id=cadre,
                team_id=team_id,
                category="housing",
                description=f"问题{key}",
                status="resolved" if resolved else "open",
                created_at=created,
                resolved_at=resolved,
            )

        s.add_all(
            [
                difficulty("1", _utc(2026, 10, 20), _utc(2026, 11, 5)),  # resolved this month
                difficulty("2", _utc(2026, 11, 3), None),  # new, still open
                difficulty("3", _utc(2026, 9, 1), _utc(2026, 10, 1)),  # closed before: not in November
                difficulty("4", _utc(2026, 11, 10), _utc(2026, 11, 12)),  # new and resolved
                difficulty("5", _utc(2026, 11, 10), None, other_team),  # another team's
                difficulty("6", _utc(2026, 11, 30, 17), None),  # 1 Dec in Beijing: next month
            ]
        )
        await s.commit()
        return {"team": team.id, "cadre": cadre, "mine": mine, "all": [h for _, h in pairs]}


async def test_monthly_figures(sessions: Any, io_clock: Any) -> None:
    seeded = await _month(sessions, io_clock)
    async with sessions() as s:
        f = await monthly_figures(s, "2026-11", seeded["team"], rules=RULES, today=date(2026, 11, 28))
    assert f.as_of == date(2026, 11, 28)
    line = next(c for c in f.cadres if c.person_id == seeded["cadre"])
    # Targets prorated to the 28 days counted so far: ceil(households * 28 / 30) visits, 2 * 28 / 7 days.
    assert (line.visits, line.households, line.visit_target) == (3, len(seeded["mine"]), -(-len(seeded["mine"]) * 28 // 30))
    assert (line.days, line.day_target) == (4, 8)
    assert line.overdue == len(seeded["mine"]) - 2
    assert (f.season, f.season_start, f.season_end) == (VisitKind.AUTUMN, date(2026, 9, 20), date(2026, 10, 31))
    # Only the 10 Oct visit falls in the autumn window (the November ones came after it closed).
    assert (f.season_done, f.season_total) == (1, len(seeded["all"]))
    assert len(f.overdue) == len(seeded["all"]) - 2
    assert all(o.last_visit is None or o.last_visit < date(2026, 10, 29) for o in f.overdue)
    assert (f.difficulties_new, f.difficulties_resolved, f.difficulties_open) == (2, 2, 1)
    others = [c for c in f.cadres if c.person_id != seeded["cadre"]]
    assert all(c.visits == 0 and c.days == 0 for c in others)
    async with sessions() as s:  # a leader is listed only with households paired to them (the sample's is)
        leaders = set((await s.scalars(select(Person.id).where(Person.team_id == seeded["team"],
                                                                Person.role == "leader"))).all())
        await s.execute(delete(Pairing).where(Pairing.cadre_id.in_(leaders)))
        h = await monthly_figures(s, "2026-11", seeded["team"], rules=RULES, today=date(2026, 11, 28))
    assert leaders & {c.person_id for c in f.cadres}
    assert not leaders & {c.person_id for c in h.cadres}
    async with sessions() as s:
        g = await monthly_figures(s, "2026-11", seeded["team"], rules=RULES, visits_per_cadre=5, today=date(2026, 11, 28))
    line = next(c for c in g.cadres if c.person_id == seeded["cadre"])
    assert (line.visit_target, line.day_target) == (5, 8)
    # A past month is counted to its last day.
    async with sessions() as s:
        oct_ = await monthly_figures(s, "2026-10", seeded["team"], rules=RULES, today=date(2026, 11, 28))
    assert oct_.as_of == date(2026, 10, 31) and oct_.days == (1, 9 * len(oct_.cadres))  # 2 * 31 / 7 ≈ 9 each


def test_season_from_the_rules_windows() -> None:
    assert season_for(date(2026, 12, 1), WINDOWS) == (VisitKind.AUTUMN, date(2026, 9, 20), date(2026, 10, 31))
    # In February the last window that opened is the previous year's autumn.
    assert season_for(date(2027, 2, 1), WINDOWS) == (VisitKind.AUTUMN, date(2026, 9, 20), date(2026, 10, 31))
    # 1 March is before spring opens (03-10): still last autumn; from 10 March it is spring.
    assert season_for(date(2026, 3, 9), WINDOWS)[0] == VisitKind.AUTUMN
    assert season_for(date(2026, 3, 10), WINDOWS) == (VisitKind.SPRING, date(2026, 3, 10), date(2026, 4, 30))
    assert season_for(date(2026, 5, 24), WINDOWS)[0] == VisitKind.SPRING
    assert season_for(date(2026, 5, 25), WINDOWS)[0] == VisitKind.SUMMER


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
@pytest.mark.parametrize("font", ["forced-latin", "none"])
async def test_monthly_report_renders_png_and_xlsx(
    font: str, sqlite_sessions: Any, io_clock: Any, zh: Any, en: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if font == "forced-latin":
        # A font without Chinese glyphs posing as CJK: rendering must still not crash.
        from bot.fonts import ChartFont

        monkeypatch.setattr(report, "cjk_font", lambda: ChartFont("DejaVu Sans", "DejaVuSans.ttf"))
    elif font == "none":
        monkeypatch.setattr(report, "cjk_font", lambda: None)
    seeded = await _month(sqlite_sessions, io_clock)
    async with sqlite_sessions() as s:
        png, xlsx = await monthly_report(
            s, date(2026, 11, 1), seeded["team"], rules=RULES, today=date(2026, 11, 28), t=zh, latin=en
        )
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert wb.sheetnames == ["汇总", "干部完成情况", "逾期未走访", "问题台账"]
    cadres = wb["干部完成情况"]
    assert cadres["A1"].value == "干部" and cadres.freeze_panes == "A2"
    async with sqlite_sessions() as s:
        name = await s.scalar(select(Person.name).where(Person.id == seeded["cadre"]))
        overdue_codes = {r[0].value for r in wb["逾期未走访"].iter_rows(min_row=2)}
        visited = set(
            (await s.scalars(select(Household.code).where(Household.id.in_(seeded["mine"][:2])))).all()
        )
    row = next(r for r in cadres.iter_rows(min_row=2, values_only=True) if r[0] == name)
    assert row[3] == 3
    assert not overdue_codes & visited
    assert wb["问题台账"].max_row == 1 + 3  # the team's difficulties touching November: 1, 2, 4


async def test_report_for_a_team_without_cadres(
    sqlite_sessions: Any, io_clock: Any, zh: Any, en: Any
) -> None:
    async with sqlite_sessions() as s:
        s.add(Team(name="空工作队"))
        await s.commit()
        tid = await s.scalar(select(Team.id))
        png, xlsx = await monthly_report(s, "2026-11", tid, rules=RULES, t=zh, latin=en)
    assert png.startswith(b"\x89PNG")
    assert openpyxl.load_workbook(io.BytesIO(xlsx))["干部完成情况"].max_row == 1
