"""One person heads one household: an ID number on two household rows of an import refuses both rows
(like a duplicate 户编号) and their members and pairings; one already stored in full (--full-id) for
another household refuses the row. Messages show the masked number only."""

from __future__ import annotations

from typing import Any

from io_helpers import count_rows, roster_bytes
from sqlalchemy import select

from bot.i18n import Translator
from bot.io.format import HOUSEHOLDS
from bot.io.roster import import_file
from bot.io.template import sample_rows
from bot.store.models import Household

H = {c.key: i for i, c in enumerate(HOUSEHOLDS.columns)}


async def test_duplicate_id_numbers_refused(sessions: Any, io_clock: Any, zh: Translator) -> None:
    rows = sample_rows()
    hh = rows["households"]
    the_id = hh[0][H["head_id_number"]]
    hh[5][H["head_id_number"]] = the_id
    async with sessions() as s:
        result = await import_file(s, roster_bytes(rows), "r.xlsx", clock=io_clock)
        await s.rollback()
    assert not result.applied
    dup = [p for p in result.problems if p.key == "io.err.duplicate_id"]
    assert sorted(p.row or 0 for p in dup) == [2, 7]
    text = dup[0].render(zh)
    assert the_id not in text and the_id[-4:] in text and "『农户』第2行『身份证号』" in text

    # With --skip-bad the rest goes in; the two households (and what depends on them) stay out.
    async with sessions() as s:
        result = await import_file(s, roster_bytes(rows), "r.xlsx", clock=io_clock, skip_bad=True)
        await s.commit()
    assert result.applied
    async with sessions() as s:
        codes = set((await s.scalars(select(Household.code))).all())
        assert hh[0][H["code"]] not in codes and hh[5][H["code"]] not in codes
        assert (await count_rows(s))["households"] == len(hh) - 2


async def test_id_stored_in_full_for_another_household(sessions: Any, io_clock: Any) -> None:
    rows = sample_rows()
    async with sessions() as s:
        assert (await import_file(s, roster_bytes(rows), "r.xlsx", clock=io_clock, full_id=True)).applied
        await s.commit()
    rows["households"][3][H["head_id_number"]] = rows["households"][1][H["head_id_number"]]
    async with sessions() as s:
        result = await import_file(s, roster_bytes({"households": rows["households"][3:4]}), "r.xlsx",
                                   clock=io_clock, full_id=True)
        await s.rollback()
    assert [p.key for p in result.problems] == ["io.err.duplicate_id_db"]
    assert result.problems[0].args["code"] == rows["households"][1][H["code"]]
    # The same household re-imported with its own number is fine, masked or not.
    async with sessions() as s:
        again = await import_file(s, roster_bytes({"households": rows["households"][1:2]}), "r.xlsx",
                                  clock=io_clock)
        assert again.applied, [p.key for p in again.problems]
        await s.rollback()


async def test_masked_numbers_are_not_compared(sessions: Any, io_clock: Any) -> None:
    """Our own exports carry masked numbers; two people sharing the last four digits are two people."""
    rows = sample_rows()
    rows["households"][0][H["head_id_number"]] = "**************1234"
    rows["households"][1][H["head_id_number"]] = "**************1234"
    async with sessions() as s:
        result = await import_file(s, roster_bytes(rows), "r.xlsx", clock=io_clock)
        assert result.applied, [p.key for p in result.problems]
        await s.rollback()
