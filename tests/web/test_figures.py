"""The dashboard's precomputed figures (bot/scheduler/figures.py), on SQLite and PostgreSQL: they equal what
bot/scheduler/due.py computes (the chat's /overdue and /week), are refreshed after a change or when too old,
a township's figure is the sum of its teams', and the overview says how old they are."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from bot.clock import FixedClock, local_today
from bot.core.bootstrap import App
from bot.scheduler import due, figures
from bot.scheduler.reports import overdue_report
from bot.store.models import Account, Case, CheckIn, Difficulty, Pairing, Person, TeamFigure, Visit
from bot.web.app import WEB
from tests.conftest import Chat, World, bind
from tests.web.helpers import add_difficulty, add_villager_case, other_team, token_of

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _rules(app: App):  # type: ignore[no-untyped-def]
    return app.core.services.rules


async def _visit(app: App, household_id: int, cadre_id: int, day: date, n: int) -> None:
    async with app.core.sessions() as s, s.begin():
        s.add(Visit(idem_key=f"fig-{n}", household_id=household_id, cadre_id=cadre_id, visit_date=day,
                    kind="routine", kinds=["routine"], done="走访", created_at=app.core.clock.now()))


async def _checkin(app: App, cadre_id: int, village_id: int, day: date) -> None:
    async with app.core.sessions() as s, s.begin():
        s.add(CheckIn(cadre_id=cadre_id, village_id=village_id, day=day, at=app.core.clock.now(), distance_m=10.0))


async def _read(app: App, team_ids: list[int] | None, weeks: list[date]) -> figures.Figures:
    async with app.core.sessions() as s:
        return await figures.read(s, team_ids, weeks, local_today(app.core.clock), app.core.clock.now())


async def _refresh(app: App, team_ids: list[int] | None = None) -> int:
    async with app.core.sessions() as s, s.begin():
        return await figures.refresh_stale(s, _rules(app), local_today(app.core.clock), app.core.clock.now(),
                                           team_ids=team_ids)


async def test_figures_equal_due_computations(app: App, world: World, clock: FixedClock) -> None:
    other = await other_team(app)
    today = local_today(clock)
    monday = figures.monday_of(today)
    c1, c2 = world.cadre_ids
    await _visit(app, world.households["张大山"], c1, today - timedelta(days=3), 1)  # not overdue any more
    await _visit(app, world.households["陈秀英"], c2, today - timedelta(days=40), 2)  # still overdue
    await _checkin(app, c1, world.village_id, monday)
    await _checkin(app, c1, world.village_id, monday + timedelta(days=1))
    await _checkin(app, c2, world.village_id, monday + timedelta(days=2))
    await add_difficulty(app, c1, world.team_id, world.households["张大山"], "房屋漏雨")
    assert await _refresh(app) > 0
    assert await _refresh(app) == 0  # fresh: nothing recomputed
    weeks = figures.trend_mondays(today)
    rules = _rules(app)
    async with app.core.sessions() as s:
        for team_id in (world.team_id, other["team"]):
            f = await figures.read(s, [team_id], weeks, today, clock.now())
            assert not f.stale and all(f.has(w) for w in weeks)
            # this week
            overdue = await due.overdue_households(s, today, rules.visits.cadence_days, team_id=team_id)
            assert f.value(monday, "overdue") == len(overdue)
            # The list page's marking (overdue_of) says the same, with the same days.
            every = [*world.households.values(), other["household"]]
            marks = await due.overdue_of(s, today, rules.visits.cadence_days, every, team_ids=[team_id])
            assert marks == {d.household_id: (d.last_visit, d.days_overdue) for d in overdue}
            cw = await due.cadre_weeks(s, monday, upto=today, team_id=team_id, far_m=rules.village_days.far_meters)
            counted = [w for w in cw if not w.on_leave]
            assert f.value(monday, "week", "cadres") == len(counted)
            assert f.value(monday, "week", "days_capped") == sum(
                min(w.checkin_days, rules.village_days.target) for w in counted)
            assert f.value(monday, "week", "visits") == sum(w.visits for w in cw)
            kind, first, last = figures.current_season(rules, today)
            missing = await due.season_missing(s, first, min(last, today), today, team_id=team_id,
                                               kind=kind.value if rules.visits.require_seasonal_kind else None)
            assert f.value(monday, "season", "missing") == len(missing)
            ages = (await due.open_difficulty_ages(s, clock.now(), team_ids=[team_id])).get(team_id, [0] * 4)
            assert [f.value(monday, "difficulties", k) for k in due.AGE_BUCKETS] == ages
            # a past week, as of its Sunday's end
            past = weeks[0]
            sunday = past + timedelta(days=6)
            assert f.value(past, "overdue") == len(
                await due.overdue_households(s, sunday, rules.visits.cadence_days, team_id=team_id))
        # The leader's /overdue in the chat counts the same households as the web's figure.
        f = await figures.read(s, [world.team_id], [monday], today, clock.now())
        from bot.i18n import Catalogs

        t = Catalogs(app.core.settings.locales_dir, "zh_CN").get("zh_CN")
        report = await overdue_report(s, world.leader_id, today, t=t, rules=rules)
        assert report.overdue is not None and len(report.overdue) == f.value(monday, "overdue") == 3
        # A township of both teams: the sum of the two, in one statement.
        both = await figures.read(s, [world.team_id, other["team"]], [monday], today, clock.now())
        one = await figures.read(s, [other["team"]], [monday], today, clock.now())
        assert both.value(monday, "overdue") == f.value(monday, "overdue") + one.value(monday, "overdue") == 4
        county = await figures.read(s, None, [monday], today, clock.now())
        assert county.value(monday, "overdue") == 4 and county.has(monday)


async def test_refreshed_when_stale_or_dirty(app: App, world: World, clock: FixedClock) -> None:
    today = local_today(clock)
    monday = figures.monday_of(today)
    await _refresh(app)
    assert (await _read(app, [world.team_id], [monday])).value(monday, "overdue") == 4
    # A visit recorded: the stored figure stays until it is too old (at most FRESH_SECONDS)...
    await _visit(app, world.households["张小山"], world.cadre_ids[0], today, 3)
    f = await _read(app, [world.team_id], [monday])
    assert f.value(monday, "overdue") == 4 and not f.stale
    clock.advance(seconds=figures.FRESH_SECONDS + 1)
    f = await _read(app, [world.team_id], [monday])
    assert f.stale
    assert await _refresh(app) > 0
    f = await _read(app, [world.team_id], [monday])
    assert f.value(monday, "overdue") == 3 and not f.stale and f.computed_at[monday] == clock.now()
    # ...or until an action marks the team dirty: then only that team is recomputed, right away.
    await _visit(app, world.households["刘老四"], world.cadre_ids[0], today, 4)
    async with app.core.sessions() as s, s.begin():
        await figures.mark_dirty(s, world.team_id, today)
    assert (await _read(app, [world.team_id], [monday])).stale
    clock.advance(seconds=5)
    await _refresh(app, [world.team_id])
    f = await _read(app, [world.team_id], [monday])
    assert f.value(monday, "overdue") == 2 and not f.stale


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_marking_dirty_never_waits_for_a_refresh(app: App, world: World, clock: FixedClock) -> None:
    """A user's action marks its team dirty while a refresh holds some of the team's rows: on PostgreSQL the
    two used to lock the rows in different orders and deadlock (the action rolled back). The mark skips
    the rows being written and the action commits at once."""
    today = local_today(clock)
    await _refresh(app)
    async with app.core.sessions() as held, held.begin():
        # A refresh in progress: one figure's rows of the team written (locked), not yet committed.
        await held.execute(update(TeamFigure).where(TeamFigure.team_id == world.team_id,
                                                    TeamFigure.name == "overdue").values(value=99.0))
        async with app.core.sessions() as s, s.begin():
            await asyncio.wait_for(figures.mark_dirty(s, world.team_id, today), 3)
    async with app.core.sessions() as s:
        marked = dict((await s.execute(select(TeamFigure.name, TeamFigure.dirty)
                                       .where(TeamFigure.team_id == world.team_id))).all())
    assert marked["week"] is True  # the rows nobody held are marked


async def test_a_registered_figure_is_stored_and_summed(app: App, world: World, clock: FixedClock) -> None:
    """One registration adds a figure: computed for every team (zeros too), summed per scope."""
    other = await other_team(app)

    async def paired(s, at):  # type: ignore[no-untyped-def]
        rows = (await s.execute(select(Person.team_id, Pairing.id).join(Pairing, Pairing.cadre_id == Person.id)
                                .where(Pairing.end_date.is_(None)))).all()
        out: dict[int, dict[str, float]] = {}
        for tid, _ in rows:
            out.setdefault(tid, {"n": 0.0})["n"] += 1
        return out

    figures.register("test.paired", paired)
    try:
        await _refresh(app)
        monday = figures.monday_of(local_today(clock))
        assert (await _read(app, [world.team_id], [monday])).value(monday, "test.paired") == 4
        assert (await _read(app, [other["team"]], [monday])).value(monday, "test.paired") == 1
        assert (await _read(app, None, [monday])).value(monday, "test.paired") == 5
        with pytest.raises(ValueError):
            figures.register("test.paired", paired)
    finally:
        figures.REGISTRY.pop("test.paired", None)


async def _settle(web: TestClient) -> None:
    """Let the web's background refreshes (PostgreSQL) finish."""
    w = web.server.app[WEB]
    for _ in range(200):
        if not w.inflight and not w.refreshing.locked():
            return
        await asyncio.sleep(0.05)


async def test_overview_shows_as_of_and_actions(app: App, world: World, web: TestClient, clock: FixedClock) -> None:
    leader = Chat(app, "500", "赵队长")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/web")
    r = await web.get(f"/login/{token_of(leader.last_text)}", allow_redirects=False)
    assert r.status == 303
    did = await add_difficulty(app, world.cadre_ids[0], world.team_id, world.households["张大山"], "房屋漏雨")
    await _settle(web)
    page = await (await web.get("/")).text()
    await _settle(web)
    page = await (await web.get("/")).text()
    local = clock.now().astimezone(_rules(app).tz)
    assert f"统计截至 {local:%H:%M}" in page
    assert 'id="fig-overdue">4<' in page and 'id="fig-open">1<' in page
    # The chat's /overdue says the same number.
    await leader.send("/overdue")
    assert "4" in leader.last_text and "张大山" in leader.last_text
    # Resolved on the web: the open count drops on the next load (live), the team's figures are marked
    # to be recomputed and are recomputed on that load or right after it.
    csrf = CSRF.search(page)
    assert csrf
    clock.advance(seconds=30)
    r = await web.post(f"/difficulties/{did}/resolve", data={"csrf": csrf.group(1), "note": "已修好"},
                       allow_redirects=False)
    assert r.status == 303
    async with app.core.sessions() as s:
        assert (await s.get(Difficulty, did)).status == "resolved"  # type: ignore[union-attr]
        assert any((await s.execute(select(TeamFigure.dirty).where(TeamFigure.team_id == world.team_id)))
                   .scalars())
    page = await (await web.get("/")).text()
    assert 'id="fig-open">0<' in page
    await _settle(web)
    async with app.core.sessions() as s:
        assert not any((await s.execute(select(TeamFigure.dirty).where(TeamFigure.team_id == world.team_id)))
                       .scalars())
        newest = max((await s.execute(select(TeamFigure.computed_at)
                                      .where(TeamFigure.team_id == world.team_id))).scalars())
    assert newest == clock.now()
    # Too old: on PostgreSQL shown with its old time and "updating" while a background refresh runs (on
    # SQLite, a small install, recomputed in the request).
    before = clock.now().astimezone(_rules(app).tz)
    clock.advance(seconds=figures.FRESH_SECONDS + 60)
    page = await (await web.get("/")).text()
    if app.core.settings.database_url.startswith("postgresql"):
        assert f"统计截至 {before:%H:%M}" in page and "正在更新" in page
    else:
        assert f"统计截至 {clock.now().astimezone(_rules(app).tz):%H:%M}" in page and "正在更新" not in page
    await _settle(web)
    page = await (await web.get("/")).text()
    assert f"统计截至 {clock.now().astimezone(_rules(app).tz):%H:%M}" in page and "正在更新" not in page


async def test_lists_are_live_and_paged(app: App, world: World, web: TestClient, clock: FixedClock) -> None:
    leader = Chat(app, "500", "赵队长")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/web")
    await web.get(f"/login/{token_of(leader.last_text)}", allow_redirects=False)
    text = await (await web.get("/households?overdue=1")).text()
    assert all(n in text for n in ("张大山", "张小山", "刘老四", "陈秀英"))
    await _visit(app, world.households["张大山"], world.cadre_ids[0], local_today(clock), 9)
    text = await (await web.get("/households?overdue=1")).text()  # no cache: the visit shows at once
    assert "张大山" not in text and "陈秀英" in text
    text = await (await web.get("/households?overdue=1&q=陈")).text()
    assert "陈秀英" in text and "刘老四" not in text
    text = await (await web.get("/households")).text()
    assert "张大山" in text and text.count('class="late"') == 3
    for i in range(205):
        await add_difficulty(app, world.cadre_ids[0], world.team_id, world.households["刘老四"], f"d{i}")
    pages = [set(re.findall(r'href="/difficulties/(\d+)"',
                            await (await web.get(f"/difficulties?status=all&sort=age&page={n}")).text()))
             for n in range(5)]
    assert [len(p) for p in pages] == [50, 50, 50, 50, 5]
    assert len(set().union(*pages)) == 205  # no row twice, none left out
    assert "page=1" in await (await web.get("/difficulties?status=all")).text()



async def test_scheduler_minute_refreshes_every_team(app: App, world: World, clock: FixedClock) -> None:
    """`bangfu scheduler` calls figures.tick_refresh every minute: the county's figures appear, and stay
    untouched while fresh."""
    other = await other_team(app)
    monday = figures.monday_of(local_today(clock))
    assert not (await _read(app, None, [monday])).has(monday)
    assert await figures.tick_refresh(app.core.sessions, _rules(app), clock.now()) > 0
    f = await _read(app, None, [monday])
    assert f.has(monday) and f.value(monday, "overdue") == 5 and not f.stale
    assert (await _read(app, [other["team"]], [monday])).value(monday, "overdue") == 1
    clock.advance(seconds=60)
    assert await figures.tick_refresh(app.core.sessions, _rules(app), clock.now()) == 0


async def test_scope_in_one_statement(app: App, world: World) -> None:
    """The web's scope (bot/web/scope.py, one statement): a leader their team; a township officer the teams
    of their township and those they are the contact of, never another township's."""
    from bot.store.models import Team, Village
    from bot.web.scope import scope_for

    other = await other_team(app)  # 平安镇, like the world's village
    async with app.core.sessions() as s, s.begin():
        far = Village(code="V777", name="远山村", township="远山乡", county="示例县")
        far2 = Village(code="V778", name="近水村", township="远山乡", county="示例县")
        s.add_all([far, far2])
        await s.flush()
        officer = Person(name="镇干部", role="township", village_id=world.village_id)
        s.add(officer)
        await s.flush()
        contact = Team(name="远山村工作队", village_id=far.id, township_contact_id=officer.id)
        elsewhere = Team(name="近水村工作队", village_id=far2.id)
        s.add_all([contact, elsewhere])
        await s.flush()
        leader = await s.get(Person, world.leader_id)
        assert leader is not None
        mine = await scope_for(s, leader)
        assert mine.team_ids == (world.team_id,) and mine.village_ids == (world.village_id,)
        town = await scope_for(s, officer)
        assert town.team_ids == tuple(sorted((world.team_id, other["team"], contact.id)))
        assert elsewhere.id not in (town.team_ids or ()) and far2.id not in (town.village_ids or ())
        assert set(town.village_ids or ()) == {world.village_id, far.id} | {
            v for v in (await s.execute(select(Team.village_id).where(Team.id == other["team"]))).scalars()}


async def test_cases_and_questions_trend_by_week(app: App, world: World, clock: FixedClock) -> None:
    """The cases card's trend: open at each week's end (a case resolved this week still counts for last
    week); the topics card's trend: questions asked in each week."""
    villager = Chat(app, "520", "村民")
    await bind(app, villager, household_id=world.villager_household)
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "520"))).scalar_one()
    cid = await add_villager_case(app, acc, "去年的补贴没到账", days_ago=10)
    async with app.core.sessions() as s, s.begin():
        c = await s.get(Case, cid)
        assert c is not None
        c.status, c.resolved_at = "resolved", clock.now()
    await villager.send("住院了能报销多少")
    clock.advance(seconds=1)
    today = local_today(clock)
    this = figures.monday_of(today)
    prev = this - timedelta(days=7)
    async with app.core.sessions() as s, s.begin():
        await figures.refresh(s, _rules(app), today, clock.now(), weeks=[prev, this])
    f = await _read(app, [world.team_id], [prev, this])
    assert f.value(prev, "cases_open", "open") == 1 and f.value(this, "cases_open", "open") == 0
    assert f.value(this, "questions", "n") == 1 and f.value(prev, "questions", "n") == 0
