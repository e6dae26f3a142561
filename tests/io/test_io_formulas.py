"""Formula injection: text people typed is never a formula in any workbook we write (ledgers, the
monthly report, the refused-rows file), the text survives, our own numbers stay numbers; an imported
roster stores formula-like text inert (leading apostrophe) and says so."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import openpyxl
from sqlalchemy import select

from bot.i18n import Translator
from bot.io.cells import append_row, formula_like, inert
from bot.io.export import export_workbook
from bot.io.format import HOUSEHOLDS, MEMBERS
from bot.io.report import monthly_report
from bot.io.roster import bad_rows_workbook, import_file
from bot.io.template import sample_rows
from bot.scheduler.rules import load_rules
from bot.store.models import CheckIn, Difficulty, Household, HouseholdMember, Pairing, Person, Visit

H = {c.key: i for i, c in enumerate(HOUSEHOLDS.columns)}
M = {c.key: i for i, c in enumerate(MEMBERS.columns)}
LINK = '=HYPERLINK("http://evil.example/x","点我领补贴")'
DDE = "=cmd|' /C calc'!A0"


def _text_roster(rows: dict[str, list[list[Any]]]) -> bytes:
    """A roster whose formula-like cells are text cells (as typed with a leading ' or pasted from CSV):
    openpyxl would otherwise write them as formulas without a value."""
    from bot.io.format import SHEET_BY_KEY

    wb = openpyxl.Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    for key, data in rows.items():
        ws = wb.create_sheet(SHEET_BY_KEY[key].title)
        ws.append([c.header for c in SHEET_BY_KEY[key].columns])
        for r in data:
            append_row(ws, r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cells(data: bytes) -> list[Any]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def _no_formulas(data: bytes) -> list[Any]:
    cells = _cells(data)
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    return cells


def test_rules() -> None:
    for s in (LINK, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert formula_like(s) and inert(s) == "'" + s
    for s in ("-", "—", "--", "+", "张三", "'=1", "", "1-2"):
        assert not formula_like(s) and inert(s) == s


async def test_import_stores_formula_text_inert_and_exports_carry_no_formula(
    sessions: Any, io_clock: Any
) -> None:
    rows = sample_rows()
    rows["households"][0][H["head_name"]] = LINK
    rows["households"][0][H["address"]] = "-"  # a placeholder, not a formula
    rows["households"][1][H["plan"]] = "+发展养殖"
    rows["members"][0][M["name"]] = "@张三"
    code0 = rows["households"][0][H["code"]]
    async with sessions() as s:
        result = await import_file(s, _text_roster(rows), "r.xlsx", clock=io_clock)
        assert result.applied, [p.key for p in result.problems]
        assert sum(result.neutralised.values()) == 3
        await s.commit()
    async with sessions() as s:
        hh = (await s.execute(select(Household).where(Household.code == code0))).scalar_one()
        assert hh.head_name == "'" + LINK and hh.address == "-"
        assert await s.scalar(select(HouseholdMember.name).where(HouseholdMember.name == "'@张三")) is not None

        # Free text typed in the chat, as it is stored: a visit note, a difficulty, a check-in far west.
        cadre = (await s.execute(select(Person).join(Pairing, Pairing.cadre_id == Person.id).limit(1))).scalar()
        assert cadre is not None
        at = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
        s.add(Visit(idem_key="vf", household_id=hh.id, cadre_id=cadre.id, visit_date=date(2026, 11, 5),
                    kind="routine", done=LINK, needs="-2+3", distance_m=-0.0, created_at=at))
        s.add(Difficulty(idem_key="df", reporter_id=cadre.id, household_id=hh.id, category="water",
                         description=DDE, urgency="high", status="open", resolution_note="@SUM(A1)",
                         created_at=at))
        s.add(CheckIn(cadre_id=cadre.id, day=date(2026, 11, 5), at=at, lat=-33.5, lon=-70.25))
        await s.commit()

    async with sessions() as s:
        data = await export_workbook(
            s, ["visits", "difficulties", "villagedays", "households"], date(2026, 11, 1), date(2026, 11, 30)
        )
    cells = _no_formulas(data)
    by_value = {c.value: c for c in cells if isinstance(c.value, str)}
    for text in (LINK, "-2+3", DDE, "@SUM(A1)", "'" + LINK, "'@张三"):
        assert text in by_value, text  # the text survives, character for character
        assert by_value[text].data_type == "s"
    for text in (LINK, "-2+3", DDE, "@SUM(A1)"):
        assert by_value[text].quotePrefix  # Excel's own "typed with a leading '" flag
    numbers = [c.value for c in cells if c.data_type == "n" and isinstance(c.value, float) and c.value < 0]
    assert -33.5 in numbers and -70.25 in numbers  # our numbers stay numbers

    # The households export re-imports unchanged: the apostrophe is not added twice.
    async with sessions() as s:
        roster = await export_workbook(s, "households", date(2026, 11, 1), date(2026, 11, 30))
        again = await import_file(s, roster, "export.xlsx", clock=io_clock)
        assert again.applied, [p.key for p in again.problems]
        assert sum(again.neutralised.values()) == 0
        assert again.counts["households"]["updated"] == 0

    async with sessions() as s:
        _png, xlsx = await monthly_report(s, "2026-11", None, rules=load_rules(None), today=date(2026, 11, 28))
    cells = _no_formulas(xlsx)
    assert DDE in {c.value for c in cells}


async def test_refused_rows_file_has_no_formula(sqlite_sessions: Any, io_clock: Any, zh: Translator) -> None:
    rows = sample_rows()
    rows["households"][0][H["phone"]] = "=1+2"  # a bad phone, written back into the refused-rows file
    rows["households"][0][H["head_name"]] = LINK
    async with sqlite_sessions() as s:
        result = await import_file(s, _text_roster(rows), "r.xlsx", clock=io_clock, skip_bad=True)
        await s.rollback()
    assert result.bad_rows
    result.bad_rows[0].raw.headers.append("=HYPERLINK(\"http://evil.example\")")  # headers come from the file too
    cells = _no_formulas(bad_rows_workbook(result, zh))
    assert {"=1+2", LINK} <= {c.value for c in cells}
