"""Statements per update (issue 16): the handlers read what they show in as few statements as the data
allows, never one per item. Each test checks the reply (and what the next message does) and counts the
statements SQLAlchemy ran for the update: on both databases the core's own statements (record the
update, load the speaker, write the dialog row, the outbox) run outside SQLAlchemy's sight, so what is
counted here is the handler's own. A query per item (per team, per line, per case) makes these fail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.core.bootstrap import App
from bot.core.types import InlineKeyboard, Reply
from bot.store.models import (
    CheckIn,
    DialogState,
    Difficulty,
    Household,
    HouseholdMember,
    MonitorCase,
    MonitorMeasure,
    Pairing,
    Person,
    Team,
    Visit,
)
from tests.cadre.conftest import rows
from tests.conftest import Chat, World, bind


@contextmanager
def statements(app: App) -> Iterator[list[str]]:
    """The statements SQLAlchemy sends to the database meanwhile (BEGIN / COMMIT are not among them)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(app.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", record)


def selects(seen: list[str]) -> list[str]:
    return [s for s in seen if s.upper().startswith(("SELECT", "WITH"))]


def reading(seen: list[str], table: str) -> list[str]:
    """SELECTs that read `table` (in FROM or a JOIN, also in a subquery)."""
    pat = re.compile(rf"\b(FROM|JOIN) {table}\b")
    return [s for s in selects(seen) if pat.search(s)]


def _t(app: App, key: str, **args: object) -> str:
    return app.core.catalogs.get("zh_CN")(key, **args)


# --------------------------------------------------------------------------- the household file
async def _add_file_rows(app: App, world: World, head: str) -> None:
    """Members, two visits, a difficulty, and two monitoring cases (one with two measures) for a household."""
    hid = world.households[head]
    now = datetime(2026, 11, 20, 2, tzinfo=UTC)
    async with app.core.sessions() as s, s.begin():
        s.add_all([
            HouseholdMember(household_id=hid, name=f"{head}之子", relation="子", gender="男", birth_year=2001),
            HouseholdMember(household_id=hid, name=f"{head}之妻", relation="妻", gender="女", birth_year=1975),
        ])
        for d in (10, 20):
            s.add(Visit(idem_key=f"f-{hid}-{d}", household_id=hid, cadre_id=world.cadre_ids[0],
                        visit_date=date(2026, 11, d), kind="routine", done=f"第{d}日走访", created_at=now))
        s.add(Difficulty(idem_key=f"fd-{hid}", reporter_id=world.cadre_ids[0], team_id=world.team_id,
                         household_id=hid, village_id=world.village_id, category="housing",
                         description="屋顶漏雨", urgency="normal", status="open", created_at=now))
        cases = [MonitorCase(household_id=hid, village_id=world.village_id, source="cadre_check", open=o,
                             step="verify", phase="identify", step_started=date(2026, 11, 1), opened_at=now)
                 for o in (False, True)]
        s.add_all(cases)
        await s.flush()
        s.add_all([MonitorMeasure(case_id=cases[1].id, topic=t, started_on=date(2026, 11, 1), created_at=now)
                   for t in ("medical.assistance", "medical.serious_illness")])


async def test_household_file_in_five_statements_whatever_it_holds(app: App, world: World, cadre: Chat) -> None:
    await _add_file_rows(app, world, "张大山")
    hid = world.households["张大山"]
    with statements(app) as seen:
        await cadre.press(f"hh:o:{hid}")
    text = cadre.last_text
    # The card: head, village, cadre, members, visits newest first, the difficulty, both cases (the open one
    # first) and the open case's two measures.
    assert "张大山" in text and "石桥村" in text and "王建国" in text
    assert "张大山之子" in text and "张大山之妻" in text
    assert text.index("第20日走访") < text.index("第10日走访")
    assert "屋顶漏雨" in text
    assert text.count("2026-11-01") == 2  # the two measures' start dates
    # One statement for the household, members, village, cadre and the speaker's pairing; then visits,
    # difficulties, monitoring (cases with measures) and bound accounts: 5, not one per member / case.
    assert len(selects(seen)) == 5, seen
    assert len(reading(seen, "monitor_measures")) == 1
    assert all("JOIN households" in q or "FROM households" in q for q in reading(seen, "villages")), seen
    assert len(reading(seen, "household_members")) == 1  # joined to the household's row
    # The speaker is paired: the file offers "log a visit", and pressing it starts the visit at the date step.
    await cadre.press_text("走访")
    assert "张大山" in cadre.last_text
    state = (await rows(app, DialogState))[-1]
    assert state.dialog == "visit" and state.step == "date" and state.data["since"] == "2026-03-01"


async def test_household_file_refused_to_a_cadre_not_paired(app: App, world: World, cadre: Chat) -> None:
    """The pairing read with the file decides a cadre's access: another cadre's household is refused
    (audited), with nothing of it shown, and in one statement."""
    other = world.households["陈秀英"]  # 李红梅's
    with statements(app) as seen:
        await cadre.press(f"hh:o:{other}")
    assert "陈秀英" not in cadre.last_text
    assert cadre.toasts()[-1]  # the refusal as an alert
    assert len(selects(seen)) == 1, seen
    from bot.store.models import AuditLog

    assert [a.action for a in await rows(app, AuditLog, AuditLog.entity_id == other)] == ["household.refused"]
    # After the pairing ends the cadre's own former household is refused too.
    async with app.core.sessions() as s, s.begin():
        p = (await s.execute(select(Pairing).where(Pairing.household_id == world.households["张小山"]))).scalar_one()
        p.end_date = date(2026, 11, 27)
    await cadre.press(f"hh:o:{world.households['张小山']}")
    assert "张小山" not in cadre.last_text


async def test_household_file_for_the_leader_and_no_visit_button(app: App, world: World, leader: Chat) -> None:
    """A leader sees the team's household (not paired: no "log a visit" / "report" buttons)."""
    hid = world.households["陈秀英"]
    await leader.press(f"hh:o:{hid}")
    assert "陈秀英" in leader.last_text and "李红梅" in leader.last_text
    card = [a for a in leader.replies if isinstance(a, Reply) and isinstance(a.markup, InlineKeyboard)][-1]
    labels = [b.text for row in card.markup.rows for b in row]  # type: ignore[union-attr]
    assert labels  # the card's buttons: monitoring check, back to the list
    assert not any("走访" in x for x in labels)


# --------------------------------------------------------------------------- the household picker
async def test_visit_start_reads_the_pairings_once(app: App, world: World, cadre: Chat) -> None:
    with statements(app) as seen:
        await cadre.send("/visit")
    assert "第1/1页" in cadre.last_text
    assert len(reading(seen, "pairings")) == 1, seen
    for head in ("张大山", "张小山", "刘老四"):
        cadre.button(head)
    # Pressing a household: its pairing start comes with it (no pairing_start query), and the date step is next.
    with statements(app) as seen:
        await cadre.press_text("刘老四")
    assert len(reading(seen, "pairings")) == 1, seen
    assert "刘老四" in cadre.last_text
    # A date before the pairing began (1 March) is refused with that date: `since` was stored right.
    replies = await cadre.send("2026-02-01")
    refusal = replies[0].text or ""
    assert "早于" in refusal and ("3月1日" in refusal or "03-01" in refusal), refusal


async def test_typed_name_not_found_reads_once_and_moves_no_dialog_row(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/visit")
    with statements(app) as seen:
        await cadre.send("王")
    assert "王" in cadre.replies[-2].text  # type: ignore[union-attr]  # "no household named 王…"
    assert "第1/1页" in cadre.last_text  # and the list again
    assert len(reading(seen, "pairings")) == 1, seen  # matched and listed from one read
    assert not [s for s in seen if s.startswith("UPDATE dialog_states")], seen  # no autoflush of the row
    # The dialog moved on all the same (its row written by the engine): a typed name now picks the household.
    await cadre.send("刘")
    state = (await rows(app, DialogState))[-1]
    assert state.step == "date" and state.data["hh_name"] == "刘老四" and state.data["since"] == "2026-03-01"


async def test_ambiguous_name_then_show_all_page_turn(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/visit")
    await cadre.send("张")  # 张大山, 张小山
    texts = [b.text for b in cadre.replies[-1].markup.rows[0]]  # type: ignore[union-attr]
    assert sorted(t[:3] for t in texts) == ["张大山", "张小山"]
    with statements(app) as seen:
        await cadre.press_text("全部")
    assert len(reading(seen, "pairings")) == 1, seen  # the page turn reads the list once (was twice)
    for head in ("张大山", "张小山", "刘老四"):
        cadre.button(head)


async def test_visit_with_no_households_leaves_no_dialog(app: App, world: World, leader: Chat) -> None:
    """The leader has no pairings: /visit says so and leaves nothing behind, so the next message is not
    taken as a household name (before: the dialog's row, flushed by the read, stayed active)."""
    await leader.send("/visit")
    assert leader.last_text
    assert await rows(app, DialogState, DialogState.active.is_(True)) == []
    await leader.send("张")
    assert "第1/1页" not in leader.last_text


# --------------------------------------------------------------------------- leaders' reports
async def _second_team(app: App, world: World) -> tuple[int, int]:
    """A second team led by the same leader, with one cadre and one household (overdue: never visited)."""
    async with app.core.sessions() as s, s.begin():
        team = Team(name="二队", village_id=world.village_id, leader_id=world.leader_id)
        s.add(team)
        await s.flush()
        c = Person(name="孙二队", phone="13900000009", role="cadre", team_id=team.id, village_id=world.village_id)
        h = Household(code="H900", village_id=world.village_id, head_name="钱二户", members_count=2)
        s.add_all([c, h])
        await s.flush()
        s.add(Pairing(cadre_id=c.id, household_id=h.id, start_date=date(2026, 3, 1)))
        return team.id, c.id


async def test_overdue_over_two_teams_is_one_statement(app: App, world: World, leader: Chat) -> None:
    await _second_team(app, world)
    with statements(app) as seen:
        await leader.send("/overdue")
    text = leader.last_text
    # Both teams, the first team's cadres before the second's (team order, as one list per team was).
    assert text.index("王建国") < text.index("孙二队") and text.index("李红梅") < text.index("孙二队")
    assert "钱二户" in text and "张大山" in text
    assert len(selects(seen)) == 1, seen  # teams, report: one statement (no SET LOCAL jit, none per team)
    assert not [s for s in seen if "jit" in s]
    # The next message: the nudge button of the second team's cadre works (in scope through the second team).
    await leader.press_text("孙二队")
    assert leader.last_text == _t(app, "leader.nudge.unreachable", name="孙二队")  # in scope; not bound to a chat
    # A forged nudge for a cadre of a team the leader does not lead is refused.
    async with app.core.sessions() as s, s.begin():
        other = Team(name="别队", village_id=world.village_id)
        s.add(other)
        await s.flush()
        stranger = Person(name="外人", role="cadre", team_id=other.id, village_id=world.village_id)
        s.add(stranger)
        await s.flush()
        s.add(Pairing(cadre_id=stranger.id, household_id=world.households["刘老四"], start_date=date(2026, 1, 1)))
        sid = stranger.id
    await leader.press(f"od:n:{sid}")
    assert leader.last_text == _t(app, "core.not_allowed")


async def test_nudge_for_a_cadre_with_nothing_overdue(app: App, world: World, leader: Chat) -> None:
    """In scope with no overdue household: told so (not refused)."""
    async with app.core.sessions() as s, s.begin():
        for head in ("陈秀英",):
            s.add(Visit(idem_key=f"n-{head}", household_id=world.households[head], cadre_id=world.cadre_ids[1],
                        visit_date=date(2026, 11, 27), kind="routine", created_at=datetime(2026, 11, 27, tzinfo=UTC)))
    await leader.press(f"od:n:{world.cadre_ids[1]}")
    assert leader.last_text == _t(app, "leader.nudge.none_left", name="李红梅")


async def test_week_over_two_teams_is_one_statement(app: App, world: World, leader: Chat) -> None:
    await _second_team(app, world)
    async with app.core.sessions() as s, s.begin():
        s.add(CheckIn(cadre_id=world.cadre_ids[0], day=date(2026, 11, 23), at=datetime(2026, 11, 23, 2, tzinfo=UTC)))
    with statements(app) as seen:
        await leader.send("/week")
    text = leader.last_text
    assert text.index("王建国") < text.index("李红梅") < text.index("孙二队")
    assert len(selects(seen)) == 1, seen


async def test_reports_without_a_team(app: App, world: World) -> None:
    """A leader of no team is told so by both reports (the teams are read only when the report is empty)."""
    async with app.core.sessions() as s, s.begin():
        lonely = Person(name="孤队长", role="leader", village_id=world.village_id)
        s.add(lonely)
        await s.flush()
        pid = lonely.id
    chat = Chat(app, "400")
    await bind(app, chat, person_id=pid)
    await chat.send("/overdue")
    no_team = chat.last_text
    await chat.send("/week")
    assert chat.last_text == no_team and no_team


async def test_difficulties_list_reads_head_names_once(app: App, world: World, leader: Chat) -> None:
    now = datetime(2026, 11, 20, 2, tzinfo=UTC)
    async with app.core.sessions() as s, s.begin():
        for i, head in enumerate(["张大山", "张小山", "刘老四", "陈秀英", None]):
            s.add(Difficulty(idem_key=f"dl-{i}", reporter_id=world.cadre_ids[0], team_id=world.team_id,
                             household_id=world.households[head] if head else None, village_id=world.village_id,
                             category="housing", description=f"困难{i}", urgency="normal", status="open",
                             created_at=now))
    with statements(app) as seen:
        await leader.send("/difficulties")
    text = leader.last_text
    for head in ("张大山", "张小山", "刘老四", "陈秀英"):
        assert head in text
    assert len(reading(seen, "households")) == 1, seen  # one for the page, not one per line
    # The next message: a line's button opens that difficulty.
    await leader.press_text("张小山")
    assert "困难1" in leader.last_text


# --------------------------------------------------------------------------- /checkin
async def test_checkin_already_done_is_one_statement(app: App, world: World, cadre: Chat) -> None:
    async with app.core.sessions() as s, s.begin():
        for d in (23, 28):
            s.add(CheckIn(cadre_id=world.cadre_ids[0], day=date(2026, 11, d), at=datetime(2026, 11, d, 1, 5, tzinfo=UTC)))
    with statements(app) as seen:
        await cadre.send("/checkin")
    assert "09:05" in cadre.replies[-2].text  # type: ignore[union-attr]  # today's, in local time
    assert "2" in cadre.last_text  # the week's two days
    assert len(selects(seen)) == 1, seen
    assert await rows(app, DialogState, DialogState.active.is_(True)) == []  # no check-in dialog started


async def test_bot_connections_start_with_jit_off(app: App) -> None:
    """PostgreSQL: the engine's connections start with the JIT off (so the reports need no SET LOCAL)."""
    if app.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's setting")
    from sqlalchemy import text

    async with app.engine.connect() as conn:
        assert (await conn.execute(text("SHOW jit"))).scalar_one() == "off"


# --------------------------------------------------------------------------- round trips (PostgreSQL)
def _postgres_only(app: App) -> None:
    if app.engine.dialect.name != "postgresql" or app.core._pg is None:
        pytest.skip("round trips of the PostgreSQL hot path")


async def test_dialog_start_and_cancel_round_trips(
    app: App, world: World, cadre: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dialog's row goes in the update's finish statement whichever way it changes: a dialog started
    (inserted), cancelled (deleted). /visit: the open function, the draft's read, the pairings, the finish
    statement (no flush of the new row, no BEGIN / COMMIT around reads); /cancel: two. Then the next message
    is not taken as the dialog's input."""
    from tests.pg import Trips

    _postgres_only(app)
    await cadre.send("/visit")  # each statement prepared once on the connection first
    await cadre.send("/cancel")
    trips = Trips(monkeypatch)
    await cadre.send("/visit")
    assert "第1/1页" in cadre.last_text
    assert trips.n == 4
    state = (await rows(app, DialogState))[-1]
    assert state.dialog == "visit" and state.active and state.step == "household"
    before = trips.n
    await cadre.send("/cancel")
    assert trips.n - before == 2
    assert cadre.last_text == _t(app, "core.cancelled", title=_t(app, "visit.title"))
    assert await rows(app, DialogState) == []
    await cadre.send("刘")  # outside any dialog now: not a household name
    assert "第1/1页" not in cadre.last_text and "刘老四" not in cadre.last_text
    # And a new /visit starts afresh at the household step, a typed name picking the household.
    await cadre.send("/visit")
    await cadre.send("刘")
    state = (await rows(app, DialogState))[-1]
    assert state.step == "date" and state.data["hh_name"] == "刘老四"


async def test_a_read_only_handler_costs_three_round_trips(
    app: App, world: World, cadre: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/households only reads: the open function, its one SELECT outside any transaction (no BEGIN, no
    COMMIT), the finish statement. Its buttons work after."""
    from tests.pg import Trips

    _postgres_only(app)
    await cadre.send("/households")
    trips = Trips(monkeypatch)
    with statements(app) as seen:
        await cadre.send("/households")
    assert len(selects(seen)) == 1, seen
    assert trips.n == 3
    for head in ("张大山", "张小山", "刘老四"):
        cadre.button(head)
    await cadre.press_text("张大山")
    assert "张大山" in cadre.last_text and "石桥村" in cadre.last_text


async def test_language_switch_is_written_by_the_finish_statement(
    app: App, world: World, cadre: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choosing a language changes the speaker's account (language, then the menu's scope): both columns go
    in the update's finish statement, two round trips, no flush of the row; choosing it again changes
    nothing (two again, no BEGIN / COMMIT). The next message is in that language and the menu is not sent
    again."""
    from bot.core.types import SetCommands
    from bot.store.models import Account
    from tests.pg import Trips

    _postgres_only(app)
    await cadre.send("/lang")
    await cadre.press("lang:en")  # each statement prepared on the connection once
    await cadre.press("lang:zh_CN")
    menus = len([a for a in cadre.replies if isinstance(a, SetCommands)])
    trips = Trips(monkeypatch)
    with statements(app) as seen:
        await cadre.press("lang:en")
    assert cadre.last_text == "Switched to English."
    assert seen == [] and trips.n == 2
    assert len([a for a in cadre.replies if isinstance(a, SetCommands)]) == menus + 1  # the English menu
    (account,) = await rows(app, Account, Account.external_id == "201")
    assert account.language == "en" and account.commands_scope == "cadre:en"
    before = trips.n
    await cadre.press("lang:en")  # the same again
    assert trips.n - before == 2
    await cadre.send("/help")
    assert "ommands" in cadre.last_text
    assert len([a for a in cadre.replies if isinstance(a, SetCommands)]) == menus + 1  # not sent again
