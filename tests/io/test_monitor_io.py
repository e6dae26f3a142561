"""Monitoring files: the roster import stores the keyed hash of ID numbers, department lists match by it
(never storing the number), re-import opens nothing twice; the public notice shows only names, group,
type and measures; the ledgers have Chinese headers."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.i18n import Catalogs
from bot.io.monitor import (
    ListError,
    import_department,
    ledgers_workbook,
    notice_image,
    notice_lines,
    notice_rows,
    read_rows,
)
from bot.io.roster import import_file
from bot.io.template import sample_rows
from bot.scheduler.monitor_tick import tell_villages
from bot.scheduler.rules import load_rules
from bot.settings import Settings
from bot.store.idhash import id_hash
from bot.store.models import (
    Account,
    Household,
    HouseholdMember,
    MonitorCase,
    MonitorEvent,
    MonitorMeasure,
    Outbox,
    Person,
)
from tests.io.io_helpers import roster_bytes

KEY = "county-secret"
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def _roster(sessions: async_sessionmaker[AsyncSession], clock: FixedClock) -> dict[str, list[list]]:
    rows = sample_rows(households=10)
    async with sessions() as s, s.begin():
        res = await import_file(s, roster_bytes(rows), "roster.xlsx", clock=clock, id_key=KEY)
        assert res.applied
    return rows


def _csv(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("gb18030")


async def test_department_list_matches_by_keyed_hash(sessions: async_sessionmaker[AsyncSession],
                                                     io_clock: FixedClock) -> None:
    rows = await _roster(sessions, io_clock)
    hh = rows["households"]
    id1, id2 = hh[0][7], hh[1][7]
    async with sessions() as s:
        stored = (await s.execute(select(Household.head_id_number, Household.head_id_hash))).all()
        assert all(n.startswith("*") for n, _ in stored)  # masked, as before
        assert {h for _, h in stored} >= {id_hash(id1, KEY), id_hash(id2, KEY)}
    lst = _csv(["姓名,身份证号码,救助类别", f"{hh[0][6]},{id1},临时救助", f"{hh[1][6]},{id2.lower()},医疗救助",
                "外人,110105194912310029,低保", "坏行,12345,"])
    table = read_rows(lst, "民政.csv")
    rules = load_rules()
    async with sessions() as s, s.begin():
        res = await import_department(s, table, "民政", id_key=KEY, rules=rules, now=NOW, today=date(2026, 11, 28))
    assert (res.rows, res.matched, res.opened, res.already_open) == (4, 2, 2, 0)
    # The villages' team leaders are told through the outbox, once per import day.
    async with sessions() as s, s.begin():
        leader = (await s.execute(select(Person).where(Person.role == "leader").order_by(Person.id))).scalars().first()
        assert leader is not None
        s.add(Account(channel="telegram", external_id="900", chat_id="900", person_id=leader.id, created_at=NOW))
    catalogs = Catalogs(Settings().locales_dir)
    for _ in range(2):
        async with sessions() as s, s.begin():
            await tell_villages(s, rules, catalogs, NOW, date(2026, 11, 28), res.new_cases, "民政")
    async with sessions() as s:
        told = list((await s.execute(select(Outbox).where(Outbox.rule == "mon.dept"))).scalars())
    assert told and all(r.chat_id == "900" for r in told) and "部门筛查预警（民政）" in str(told[0].payload)
    assert len({r.dedup_key for r in told}) == len(told)
    assert res.unmatched == [(4, "外人", "*" * 14 + "0029")] and res.bad == [5]
    # Re-import: nothing opened twice.
    async with sessions() as s, s.begin():
        again = await import_department(s, table, "民政", id_key=KEY, rules=rules, now=NOW, today=date(2026, 11, 28))
    assert (again.opened, again.already_open) == (0, 2)
    async with sessions() as s:
        cases = list((await s.execute(select(MonitorCase))).scalars())
        assert len(cases) == 2 and all(c.step == "verify" and c.source == "department" for c in cases)
        assert all(c.department == "民政" and c.step_due is not None for c in cases)
        dump = " ".join(str(vars(c)) for c in cases)
        assert id1 not in dump and id2 not in dump
        assert len((await s.execute(select(MonitorEvent))).all()) == 2


def test_zip_bomb_and_junk_refused() -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * 50_000_000)
    try:
        read_rows(buf.getvalue(), "bomb.xlsx")
        raise AssertionError("a zip bomb was read")
    except ListError as e:
        assert e.key == "mon.import.too_big"
    try:
        read_rows(b"\x00\x01binary", "x.csv")
        raise AssertionError("junk was read")
    except ListError as e:
        assert e.key == "mon.import.not_table"


async def test_public_notice_shows_no_private_detail(sessions: async_sessionmaker[AsyncSession],
                                                     io_clock: FixedClock) -> None:
    await _roster(sessions, io_clock)
    async with sessions() as s, s.begin():
        h = (await s.execute(select(Household).order_by(Household.id))).scalars().first()
        assert h is not None
        case = MonitorCase(household_id=h.id, village_id=h.village_id, source="self_report", kind="sudden",
                           risks=["illness"], phase="identify", step="publicize", open=True, step_started=date(2026, 11, 28),
                           head_name=h.head_name, phone="13812345678", id_masked="**************1234",
                           description="尿毒症透析，银行卡 6222020200112233445", screening={"health": "尿毒症"},
                           opened_at=NOW)
        s.add(case)
        await s.flush()
        s.add(MonitorMeasure(case_id=case.id, topic="medical.assistance", started_on=date(2026, 11, 28),
                             created_at=NOW))
        vid, name = h.village_id, h.head_name
    async with sessions() as s:
        rows = await notice_rows(s, vid)
    lines = notice_lines("石桥村", rows, date(2026, 11, 28), date(2026, 12, 3), "identify")
    text = " ".join(" ".join(r) for r in lines)
    assert name in text and "突发严重困难户" in text and "医疗救助" in text
    for secret in ("13812345678", "1234", "尿毒症", "6222", "透析"):
        assert secret not in text
    png = notice_image(lines, "PNG")
    pdf = notice_image(lines, "PDF")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and pdf[:5] == b"%PDF-"
    async with sessions() as s:
        data = await ledgers_workbook(s)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["监测对象名单", "帮扶措施台账", "风险消除名单"]
    ws = wb["监测对象名单"]
    assert ws.cell(1, 6).value == "户主姓名" and ws.cell(2, 6).value == name
    assert ws.cell(2, 7).value == "**************1234"
    assert wb["帮扶措施台账"].cell(2, 4).value == "医疗救助"


def test_cli_import_export_notice(new_sqlite_url: Any, tmp_path: Path, monkeypatch: Any,
                                  capsys: Any) -> None:
    import asyncio

    from bot.cli import main
    from bot.store.db import create_engine, session_factory

    url = new_sqlite_url()
    monkeypatch.setenv("BANGFU_DATABASE_URL", url)
    monkeypatch.setenv("BANGFU_ID_HASH_KEY", KEY)
    rows = sample_rows(households=6)

    async def load() -> None:
        engine = create_engine(url)
        async with session_factory(engine)() as s, s.begin():
            await import_file(s, roster_bytes(rows), "r.xlsx", clock=FixedClock(datetime(2026, 11, 28, 10)),
                              id_key=KEY)
        await engine.dispose()

    asyncio.run(load())
    lst = tmp_path / "残联.csv"
    lst.write_bytes(_csv(["姓名,身份证号,残疾类别", f"{rows['households'][2][6]},{rows['households'][2][7]},肢体"]))
    for argv in (["monitor", "import", str(lst), "--source", "残联"],
                 ["monitor", "export", "-o", str(tmp_path / "m.xlsx")],
                 ["monitor", "notice", "--village", "石桥村", "-o", str(tmp_path / "gs.pdf")]):
        try:
            main(argv)
        except SystemExit as e:
            assert e.code in (0, None), argv
    out = capsys.readouterr().out
    assert "新立案 opened 1" in out and rows["households"][2][7] not in out
    assert (tmp_path / "m.xlsx").stat().st_size > 0 and (tmp_path / "gs.pdf").read_bytes()[:5] == b"%PDF-"


async def test_department_list_finds_the_household_of_a_member(sessions: async_sessionmaker[AsyncSession],
                                                               io_clock: FixedClock) -> None:
    """医保 lists the patient, 教育 the pupil: a member's ID finds the household, two of its people one case."""
    rows = await _roster(sessions, io_clock)
    code = next(m[0] for m in rows["members"] if m[2] != "户主")
    family = [m for m in rows["members"] if m[0] == code and m[2] != "户主"]
    async with sessions() as s:
        stored = list((await s.execute(select(HouseholdMember.id_number, HouseholdMember.id_hash))).all())
        assert stored and all(n.startswith("*" * 14) for n, _ in stored)  # members' numbers: masked only
        assert id_hash(family[0][8], KEY) in {h for _, h in stored}
        hid, head = (await s.execute(select(Household.id, Household.head_name).where(Household.code == code))).one()
    head_id = next(h[7] for h in rows["households"] if h[0] == code)
    lines = ["姓名,身份证号码,救助类别", f"{family[0][1]},{family[0][8]},住院医疗救助", f"{head},{head_id},临时救助"]
    table = read_rows(_csv(lines), "医保.csv")
    async with sessions() as s, s.begin():
        res = await import_department(s, table, "医保", id_key=KEY, rules=load_rules(), now=NOW,
                                      today=date(2026, 11, 28))
    assert (res.matched, res.opened, res.already_open, res.unmatched) == (2, 1, 1, [])
    async with sessions() as s:
        [case] = list((await s.execute(select(MonitorCase))).scalars())
    assert case.household_id == hid and case.head_name == head and family[0][1] in case.description
    assert family[0][8] not in str(vars(case))
