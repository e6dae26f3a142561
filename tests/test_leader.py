"""Team leaders' on-demand views through the chat: /overdue, /week, /digest; refused to cadres."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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
    await leader.press("ex:visits")
    replies = await leader.press("ex:visits:year")
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


async def test_export_asks_ledger_then_period_and_names_both(app: App, world: World) -> None:
    import io

    import openpyxl

    c1, _ = world.cadre_ids
    await _visit(app, world, "张大山", date(2026, 10, 20), c1)
    await _visit(app, world, "张小山", date(2026, 11, 20), c1)
    leader = Chat(app, "306")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/export")
    assert "哪一本台账" in leader.last_text
    await leader.press(leader.button("走访记录"))
    assert "走访记录" in leader.last_text and "哪段时间" in leader.last_text
    replies = await leader.press(leader.button("上月"))
    [reply] = [r for r in replies if r.document]
    assert reply.text is not None and "走访记录" in reply.text
    assert "2026-10-01" in reply.text and "2026-10-31" in reply.text
    assert reply.document is not None and reply.document.filename == "visits_2026-10-01_2026-10-31.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(reply.document.data))
    cells = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert any("张大山" in c for c in cells) and not any("张小山" in c for c in cells)  # October only
    # The roster is as of today: no period question.
    await leader.send("/export")
    replies = await leader.press("ex:households")
    [reply] = [r for r in replies if r.document]
    assert reply.text is not None and "帮扶户花名册" in reply.text and "2026-11-28" in reply.text
    await leader.press("ex:visits:decade")  # forged period
    assert leader.toasts()[-1]


async def test_report_offers_this_and_last_month_with_figures_in_text(app: App, world: World) -> None:
    import io

    import openpyxl

    leader = Chat(app, "307")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/report")
    assert leader.button("本月 2026-11") == "rp:2026-11" and leader.button("上月 2026-10") == "rp:2026-10"
    replies = await leader.press("rp:2026-10")
    text = next(r.text for r in replies if r.text and not r.photo and not r.document)
    assert "2026-10" in text and "2026-10-01" in text and "2026-10-31" in text
    # The key figures are in the message itself: visits, village days (2 a week), season, overdue.
    assert "走访 0/" in text and "每周 2 天" in text and "秋播走访（09-20 至 10-31）" in text
    assert "超过 30 天未走访：4 户" in text
    assert any(r.photo and r.photo.data and r.photo.data[:4] == b"\x89PNG" for r in replies)
    [doc] = [r.document for r in replies if r.document]
    names = {r[0] for r in openpyxl.load_workbook(io.BytesIO(doc.data))["干部完成情况"].iter_rows(min_row=2, values_only=True)}
    assert names == {"王建国", "李红梅"}  # the leader (no households of their own) is no cadre with a target
    await leader.press("rp:../x")
    assert leader.toasts()[-1]


async def test_report_in_chat_uses_the_county_rules(settings: Any, clock: Any, tmp_path: Path) -> None:
    from bot.core.bootstrap import build_core
    from bot.scheduler.rules import load_rules
    from tests.conftest import seed_world

    county = tmp_path / "county.toml"
    county.write_text('[village_days]\ntarget = 3\n[visits]\ncadence_days = 45\n[seasons.autumn]\nstart = "10-08"\nend = "11-20"\n',
                      encoding="utf-8")
    app = build_core(settings.model_copy(update={"rules_file": county}), clock)
    try:
        world = await seed_world(app)
        leader = Chat(app, "308")
        await bind(app, leader, person_id=world.leader_id)
        await leader.send("/report 2026-11")
        assert any("每周至少3天" in (a.text or "") for a in leader.replies if isinstance(a, Reply))  # /start's help
        text = next(a.text for a in leader.replies if isinstance(a, Reply) and a.text and "统计期间" in a.text)
        assert "每周 3 天" in text and "秋播走访（10-08 至 11-20）" in text and "超过 45 天未走访" in text
        assert load_rules(county).visits.cadence_days == 45
    finally:
        await app.close()
