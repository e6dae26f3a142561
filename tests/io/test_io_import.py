"""Roster import: the shipped sample, re-imports, hand-overs, bad rosters, --skip-bad, CSV variants."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from io_helpers import count_rows, roster_bytes
from sqlalchemy import select

from bot.io.format import HOUSEHOLDS, PAIRINGS
from bot.io.reader import read_roster
from bot.io.roster import bad_rows_workbook, import_file
from bot.io.template import TEMPLATES_DIR, sample_rows, template_workbook
from bot.store.enums import HouseholdStatus
from bot.store.models import Household, HouseholdMember, Pairing, Person, Team

H = {c.key: i for i, c in enumerate(HOUSEHOLDS.columns)}
P = {c.key: i for i, c in enumerate(PAIRINGS.columns)}
SAMPLE = TEMPLATES_DIR / "sample_roster.xlsx"


async def _import(sessions: Any, data: bytes, clock: Any, name: str = "roster.xlsx", **kw: Any) -> Any:
    async with sessions() as s:
        result = await import_file(s, data, name, clock=clock, **kw)
        if result.applied:
            await s.commit()
        return result


def test_shipped_sample_matches_generator() -> None:
    """The committed sample_roster.xlsx is what template.sample_rows() describes."""
    roster = read_roster(SAMPLE)
    rows = sample_rows()
    assert {s.sheet.key: len(s.rows) for s in roster.sheets} == {k: len(v) for k, v in rows.items()}
    hh = roster.of("households")[0]
    assert [str(c) for c in hh.rows[0][1][:7]] == [str(c) for c in rows["households"][0][:7]]


async def test_sample_roster_imports_then_reimports_unchanged(sessions: Any, io_clock: Any) -> None:
    rows = sample_rows()
    result = await _import(sessions, SAMPLE.read_bytes(), io_clock)
    assert result.applied, [p.key for p in result.problems]
    async with sessions() as s:
        n = await count_rows(s)
        assert n == {
            "villages": len(rows["villages"]),
            "teams": len(rows["teams"]),
            "people": len(rows["people"]),
            "households": len(rows["households"]),
            "household_members": len(rows["members"]),
            "pairings": len(rows["households"]) + len(rows["pairings"]),
        }
        first = rows["households"][0]
        hh = (await s.execute(select(Household).where(Household.code == first[H["code"]]))).scalar_one()
        assert hh.head_id_number == "*" * 14 + first[H["head_id_number"]][-4:]
        assert hh.head_name == first[H["head_name"]]
        assert hh.phone == first[H["phone"]]
        assert hh.poverty_causes and all(isinstance(c, str) and c.isascii() for c in hh.poverty_causes)
        assert hh.status in {s.value for s in HouseholdStatus}
        current = (
            await s.execute(
                select(Pairing, Person)
                .join(Person, Pairing.cadre_id == Person.id)
                .where(Pairing.household_id == hh.id, Pairing.end_date.is_(None))
            )
        ).one()
        assert current[1].phone == first[H["cadre_phone"]]
        assert current[0].start_date == date.fromisoformat(first[H["pairing_start"]])
        leader = (
            await s.execute(select(Person).join(Team, Team.leader_id == Person.id).limit(1))
        ).scalar_one()
        assert leader.role == "leader"
    again = await _import(sessions, SAMPLE.read_bytes(), io_clock)
    assert again.applied
    assert not [c for c in again.changes if c.kind != "unchanged"]
    assert sum(c["created"] + c["updated"] for c in again.counts.values()) == 0
    async with sessions() as s:
        assert await count_rows(s) == n


async def test_full_id_stores_the_whole_number(sqlite_sessions: Any, io_clock: Any) -> None:
    result = await _import(sqlite_sessions, SAMPLE.read_bytes(), io_clock, full_id=True)
    assert result.applied
    first = sample_rows()["households"][0]
    async with sqlite_sessions() as s:
        stored = await s.scalar(select(Household.head_id_number).where(Household.code == first[H["code"]]))
    assert stored == first[H["head_id_number"]]


def _drop_column(rows: dict[str, list[list[Any]]], key: str, column: str) -> dict[str, list[str]]:
    sheet = {"households": HOUSEHOLDS}[key]
    i = [c.key for c in sheet.columns].index(column)
    for r in rows[key]:
        del r[i]
    headers = [c.header for c in sheet.columns]
    del headers[i]
    return {key: headers}


def _case(name: str, rows: dict[str, list[list[Any]]]) -> tuple[bytes, str, list[str]]:
    """A broken roster: (file bytes, file name, fragments the Chinese error must contain)."""
    hh = rows["households"]
    if name == "missing column":
        return (
            roster_bytes(rows, _drop_column(rows, "households", "head_name")),
            "r.xlsx",
            ["『农户』", "缺少必填列『户主姓名』"],
        )
    if name == "bad phone":
        hh[10][H["phone"]] = "1234567"  # data row 11 is spreadsheet row 12
        return roster_bytes(rows), "r.xlsx", ["『农户』第12行『联系电话』不是有效的手机号"]
    if name == "bad id checksum":
        idn = hh[3][H["head_id_number"]]
        hh[3][H["head_id_number"]] = idn[:17] + ("0" if idn[17] != "0" else "1")
        return roster_bytes(rows), "r.xlsx", ["第5行『身份证号』", "校验位"]
    if name == "duplicate household":
        hh[6][H["code"]] = hh[1][H["code"]]
        return roster_bytes(rows), "r.xlsx", ["第8行『户编号』", "重复", "第3行"]
    if name == "unknown cadre":
        code, head = hh[2][H["code"]], hh[2][H["head_name"]]
        rows["pairings"].append([code, head, "查无此人", None, "2025-01-01", "2025-06-30", ""])
        return roster_bytes(rows), "r.xlsx", ["『结对』", "『帮扶责任人』", "找不到帮扶干部“查无此人”"]
    if name == "empty file":
        return b"", "r.xlsx", ["是空的"]
    if name == "headers only":
        return roster_bytes({k: [] for k in rows}), "r.xlsx", ["是空的"]
    if name == "not a spreadsheet":
        return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.xlsx", ["不是表格文件"]
    if name == "word document":
        buf = io.BytesIO()
        import zipfile

        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("word/document.xml", "<w:document/>")
        return buf.getvalue(), "letter.docx", ["不是表格文件"]
    raise AssertionError(name)


BAD_CASES = [
    "missing column",
    "bad phone",
    "bad id checksum",
    "duplicate household",
    "unknown cadre",
    "empty file",
    "headers only",
    "not a spreadsheet",
    "word document",
]


@pytest.mark.parametrize("case", BAD_CASES)
async def test_bad_roster_changes_nothing(case: str, sqlite_sessions: Any, io_clock: Any, zh: Any) -> None:
    assert (await _import(sqlite_sessions, SAMPLE.read_bytes(), io_clock)).applied
    async with sqlite_sessions() as s:
        before = await count_rows(s)
    rows = sample_rows()
    # A valid change alongside the broken one: it must not be applied either (all or nothing).
    code0 = rows["households"][0][H["code"]]
    rows["households"][0][H["head_name"]] = "改过的名字"
    rows["households"][0][H["cadre_name"]], rows["households"][0][H["cadre_phone"]] = other_cadre(rows)
    data, name, fragments = _case(case, rows)
    result = await _import(sqlite_sessions, data, io_clock, name)
    assert not result.applied
    text = "\n".join(p.render(zh) for p in result.problems)
    for fragment in fragments:
        assert fragment in text, text
    async with sqlite_sessions() as s:
        assert await count_rows(s) == before
        assert await s.scalar(select(Household.head_name).where(Household.code == code0)) != "改过的名字"
        assert (
            await s.scalar(
                select(Pairing.id).where(Pairing.end_date.is_not(None), Pairing.end_date >= date(2026, 11, 1))
            )
            is None
        )


def other_cadre(rows: dict[str, list[list[Any]]]) -> tuple[str, str]:
    """Another cadre of the first household's team than its current one."""
    hh = rows["households"][0]
    team = next(p[3] for p in rows["people"] if p[1] == hh[H["cadre_phone"]])
    other = next(
        p for p in rows["people"] if p[3] == team and p[1] != hh[H["cadre_phone"]] and p[1][0] == "1"
    )
    return other[0], other[1]


async def test_skip_bad_imports_good_rows_and_returns_bad_ones(
    sqlite_sessions: Any, io_clock: Any, zh: Any
) -> None:
    rows = sample_rows()
    bad_code = rows["households"][4][H["code"]]
    rows["households"][4][H["phone"]] = "138001380"  # too short
    rows["members"].append(["NO-SUCH-CODE", "无名", "户主", "男", 1970, "健康", "初中", "务农"])
    result = await _import(sqlite_sessions, roster_bytes(rows), io_clock, skip_bad=True)
    assert result.applied
    async with sqlite_sessions() as s:
        n = await count_rows(s)
        assert n["households"] == len(rows["households"]) - 1
        assert await s.scalar(select(Household.id).where(Household.code == bad_code)) is None
        # The bad household's members are refused with it, the others are in.
        expected_members = sum(1 for m in rows["members"] if m[0] not in (bad_code, "NO-SUCH-CODE"))
        assert n["household_members"] == expected_members
    wb = openpyxl.load_workbook(io.BytesIO(bad_rows_workbook(result, zh)))
    assert set(wb.sheetnames) == {"农户", "家庭成员"}
    ws = wb["农户"]
    header = [c.value for c in ws[1]]
    assert header[0] == "原行号" and header[-1] == "错误原因"
    assert ws.cell(2, 1).value == 6
    assert "不是有效的手机号" in ws.cell(2, len(header)).value
    members = wb["家庭成员"]
    reasons = [members.cell(r, members.max_column).value for r in range(2, members.max_row + 1)]
    assert any("NO-SUCH-CODE" in x for x in reasons)
    assert any("那一行有错" in x for x in reasons)


async def test_reimport_with_new_cadre_records_handover(sessions: Any, io_clock: Any) -> None:
    rows = sample_rows()
    assert (await _import(sessions, roster_bytes(rows), io_clock)).applied
    hh = rows["households"][0]
    old_phone = hh[H["cadre_phone"]]
    new_name, new_phone = other_cadre(rows)
    hh[H["cadre_name"]], hh[H["cadre_phone"]], hh[H["pairing_start"]] = new_name, new_phone, "2026-11-20"
    old_size = hh[H["members_count"]]
    hh[H["members_count"]] = 9
    result = await _import(sessions, roster_bytes(rows), io_clock)
    assert result.applied
    assert result.counts["pairings"]["handover"] == 1
    handover = next(c for c in result.changes if c.kind == "handover")
    assert handover.key == hh[H["code"]]
    assert handover.fields[0][2] == new_name
    update = next(c for c in result.changes if c.kind == "updated" and c.entity == "households")
    assert update.fields == [("家庭人口", str(old_size), "9")]
    async with sessions() as s:
        hid = await s.scalar(select(Household.id).where(Household.code == hh[H["code"]]))
        history = (
            await s.execute(
                select(Pairing, Person.phone)
                .join(Person, Pairing.cadre_id == Person.id)
                .where(Pairing.household_id == hid)
                .order_by(Pairing.start_date)
            )
        ).all()
        by_phone = {phone: p for p, phone in history}
        assert by_phone[old_phone].end_date == date(2026, 11, 19)
        assert by_phone[new_phone].start_date == date(2026, 11, 20)
        assert by_phone[new_phone].end_date is None
        assert sum(1 for p, _ in history if p.end_date is None) == 1
        assert await s.scalar(select(Household.members_count).where(Household.id == hid)) == 9
    # Importing the same file again changes nothing: the hand-over is not repeated.
    again = await _import(sessions, roster_bytes(rows), io_clock)
    assert again.counts["pairings"]["handover"] == 0


async def test_csv_with_township_headers_title_row_and_gbk(sqlite_sessions: Any, io_clock: Any) -> None:
    """A flat CSV as a township saves it from Excel: GBK, a title line, variant headers."""
    assert (await _import(sqlite_sessions, SAMPLE.read_bytes(), io_clock)).applied
    people = sample_rows()["people"]
    cadre = people[2]
    lines = [
        "平安镇2026年脱贫户花名册,,,,,,,,,,",
        "户号,所在村,组,户主,家庭人口数,联系方式,人均纯收入（元）,致贫原因,脱贫属性,帮扶人,帮扶人电话",
        f'N001,石桥村,第2组,马春生,3,139 0000 0001,"6,500",因病致贫、缺劳动力,脱贫户,{cadre[0]},{cadre[1]}',
        f"N002,新丰村,1,马冬梅,2,0871-5551234,4800元,缺技术,监测对象,{cadre[0]},",
    ]
    data = ("\r\n".join(lines) + "\r\n").encode("gb18030")
    result = await _import(sqlite_sessions, data, io_clock, "花名册.csv")
    assert result.applied, [(p.key, p.args) for p in result.problems]
    async with sqlite_sessions() as s:
        a = (await s.execute(select(Household).where(Household.code == "N001"))).scalar_one()
        b = (await s.execute(select(Household).where(Household.code == "N002"))).scalar_one()
        assert (a.group_no, a.head_name, a.members_count, a.phone) == (2, "马春生", 3, "13900000001")
        assert str(a.income_per_head) == "6500.00"
        assert a.poverty_causes == ["illness", "labour"]
        assert (a.status, b.status) == ("lifted", "monitored")
        assert b.phone == "0871-5551234"
        assert a.village_id != b.village_id  # 新丰村 was not known: created from the row
        cadre_id = await s.scalar(select(Person.id).where(Person.phone == cadre[1]))
        assert await s.scalar(select(Pairing.cadre_id).where(Pairing.household_id == b.id)) == cadre_id


async def test_template_reads_as_an_empty_roster(sqlite_sessions: Any, io_clock: Any, zh: Any) -> None:
    result = await _import(sqlite_sessions, template_workbook(), io_clock, "template.xlsx")
    assert not result.applied
    assert "是空的" in result.problems[0].render(zh)


async def test_old_xls_gets_a_save_as_hint(
    sqlite_sessions: Any, io_clock: Any, zh: Any, tmp_path: Path
) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512
    result = await _import(sqlite_sessions, data, io_clock, "old.xls")
    assert "另存为" in result.problems[0].render(zh)


async def test_error_in_english(sqlite_sessions: Any, io_clock: Any, en: Any) -> None:
    rows = sample_rows()
    rows["households"][0][H["phone"]] = "12345"
    result = await _import(sqlite_sessions, roster_bytes(rows), io_clock)
    assert result.problems[0].render(en) == (
        "Sheet “农户”, row 2, column “联系电话”: is not a valid mobile or landline number: 12345"
    )


async def test_members_replace_together(sqlite_sessions: Any, io_clock: Any) -> None:
    rows = sample_rows()
    assert (await _import(sqlite_sessions, roster_bytes(rows), io_clock)).applied
    code = rows["households"][0][H["code"]]
    rows["members"] = [m for m in rows["members"] if m[0] != code] + [
        [code, "新成员", "之女", "女", 2010, "健康", "初中", "在校生"]
    ]
    result = await _import(sqlite_sessions, roster_bytes(rows), io_clock)
    assert result.applied
    async with sqlite_sessions() as s:
        hid = await s.scalar(select(Household.id).where(Household.code == code))
        names = (
            await s.scalars(select(HouseholdMember.name).where(HouseholdMember.household_id == hid))
        ).all()
    assert names == ["新成员"]
