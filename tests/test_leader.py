"""Team leaders' on-demand views through the chat: /overdue, /week, /digest; refused to cadres."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.store.models import CheckIn, Visit
from tests.conftest import Chat, World, bind


async def _visit(app: App, world: World, head: str, day: date, cadre: int) -> None:
    async with app.core.sessions() as s, s.begin():
        s.add(
            Visit(
                idem_key=f"t-{head}-{day}",
                household_id=world.households[head],
                cadre_id=cadre,
                visit_date=day,
                kind="routine",
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )


async def test_overdue_lists_only_households_past_cadence(app: App, world: World) -> None:
    c1 = world.cadre_ids[0]
    await _visit(app, world, "张大山", date(2026, 11, 20), c1)  # 8 days ago: fine
    await _visit(app, world, "张小山", date(2026, 10, 1), c1)  # 58 days ago: overdue
    leader = Chat(app, "300")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/overdue")
    text = leader.last_text
    assert "张小山" in text and "刘老四" in text and "陈秀英" in text
    assert "张大山" not in text
    assert "王建国" in text and "李红梅" in text  # grouped by cadre


async def test_week_counts_village_days(app: App, world: World) -> None:
    c1, _ = world.cadre_ids
    async with app.core.sessions() as s, s.begin():
        for d in (23, 24):  # Mon, Tue of the current ISO week (28 Nov 2026 is a Saturday)
            s.add(CheckIn(cadre_id=c1, day=date(2026, 11, d), at=datetime(2026, 11, d, 2, tzinfo=UTC)))
    leader = Chat(app, "301")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/week")
    text = leader.last_text
    assert "王建国" in text and "李红梅" in text


async def test_digest_sends_chart(app: App, world: World) -> None:
    leader = Chat(app, "302")
    await bind(app, leader, person_id=world.leader_id)
    replies = await leader.send("/digest")
    assert any(isinstance(r, Reply) and r.photo and r.photo.data and r.photo.data[:4] == b"\x89PNG" for r in replies)


async def test_cadre_cannot_use_leader_commands(app: App, world: World) -> None:
    cadre = Chat(app, "303")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    for cmd in ("/overdue", "/week", "/export", "/report"):
        await cadre.send(cmd)
        assert "没有权限" in cadre.last_text


async def test_export_sends_workbook_of_own_team(app: App, world: World) -> None:
    import io

    import openpyxl

    c1, _ = world.cadre_ids
    await _visit(app, world, "张大山", date(2026, 11, 20), c1)
    leader = Chat(app, "304")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/export")
    replies = await leader.press("ex:visits")
    [doc] = [r.document for r in replies if r.document]
    wb = openpyxl.load_workbook(io.BytesIO(doc.data))
    cells = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert any("张大山" in c for c in cells) and any("王建国" in c for c in cells)
    await leader.press("ex:../../etc")  # forged kind
    assert leader.toasts()[-1]


async def test_report_sends_chart_and_workbook(app: App, world: World) -> None:
    leader = Chat(app, "305")
    await bind(app, leader, person_id=world.leader_id)
    replies = await leader.send("/report 2026-11")
    assert any(r.photo and r.photo.data and r.photo.data[:4] == b"\x89PNG" for r in replies)
    assert any(r.document and r.document.filename.endswith(".xlsx") for r in replies)
    await leader.send("/report 13月")
    assert "月份" in leader.last_text
