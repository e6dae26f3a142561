"""The monthly report measures what the reminders measure: a county rules file with another seasonal
window, cadence and village-day target changes the report's figures, and they agree with the
scheduler's due computations on the same data."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from test_io_report import RULES, _month

from bot.io.report import monthly_figures
from bot.scheduler import due
from bot.scheduler.rules import load_rules
from bot.store.models import Household

TODAY = date(2026, 11, 28)
COUNTY = """
[visits]
cadence_days = 10

[village_days]
target = 3

[seasons.autumn]   # a late autumn sowing: 1 to 15 November
start = "11-01"
end = "11-15"
"""


async def test_county_rules_change_the_figures_and_match_the_scheduler(
    sessions: Any, io_clock: Any, tmp_path: Path
) -> None:
    seeded = await _month(sessions, io_clock)
    county_file = tmp_path / "county.toml"
    county_file.write_text(COUNTY, encoding="utf-8")
    county = load_rules(county_file, timezone="Asia/Shanghai")
    async with sessions() as s:
        shipped = await monthly_figures(s, "2026-11", seeded["team"], rules=RULES, today=TODAY)
        local = await monthly_figures(s, "2026-11", seeded["team"], rules=county, today=TODAY)
        overdue_rows = await due.overdue_households(s, TODAY, county.visits.cadence_days, team_id=seeded["team"])
        window_first, window_last = county.seasons.autumn.dates(2026)
        missing = await due.season_missing(s, window_first, window_last, TODAY, team_id=seeded["team"])
        codes_of = dict((await s.execute(select(Household.id, Household.code))).all())

    mine = next(c for c in local.cadres if c.person_id == seeded["cadre"])
    # Village days: 3 a week over the 28 days counted, instead of 2.
    assert mine.day_target == 12 and next(c for c in shipped.cadres if c.person_id == seeded["cadre"]).day_target == 8
    # Visits: each household once per 10 days instead of once per 30.
    assert mine.visit_target == -(-mine.households * 28 // 10)
    assert local.cadence_days == 10 and local.village_days_per_week == 3
    # The autumn window is 11-01..11-15 now: the 2 and 9 November visits count, the 10 October one not.
    assert (local.season_start, local.season_end) == (date(2026, 11, 1), date(2026, 11, 15))
    assert (shipped.season_done, local.season_done) == (1, 2)
    # Overdue: only the 20 November visit is within 10 days.
    assert len(local.overdue) == len(seeded["all"]) - 1 != len(shipped.overdue)

    # The same answers as the scheduler's reminders on the same data.
    assert {o.code for o in local.overdue} == {codes_of[r.household_id] for r in overdue_rows}
    assert local.season_total - local.season_done == len(missing)
    assert {o.code for o in local.overdue if o.last_visit is not None} == {
        codes_of[r.household_id] for r in overdue_rows if r.last_visit is not None
    }


async def test_seasonal_kind_required_by_the_rules(sessions: Any, io_clock: Any, tmp_path: Path) -> None:
    """With require_seasonal_kind the report, like the close alert, counts only visits of the window's kind."""
    seeded = await _month(sessions, io_clock)
    county_file = tmp_path / "county.toml"
    county_file.write_text(
        '[visits]\nrequire_seasonal_kind = true\n[seasons.autumn]\nstart = "10-01"\nend = "11-30"\n', encoding="utf-8"
    )
    county = load_rules(county_file)
    async with sessions() as s:
        f = await monthly_figures(s, "2026-11", seeded["team"], rules=county, today=TODAY)
        first, _ = county.seasons.autumn.dates(2026)
        missing = await due.season_missing(s, first, TODAY, TODAY, kind="autumn", team_id=seeded["team"])
    # 2 Nov and 9 Nov were autumn visits; 10 Oct and 20 Nov were routine ones and do not count.
    assert f.season_done == 2
    assert f.season_total - f.season_done == len(missing)
