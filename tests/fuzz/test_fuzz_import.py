"""Fuzz the whole roster import (reader, validators, cross-row checks, the bulk writes) with generated
rows on a real SQLite database: a file may be refused row by row, never crash."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import FixedClock
from bot.io.format import HOUSEHOLDS, MEMBERS, PAIRINGS, PEOPLE
from bot.io.reader import RosterError, read_roster
from bot.io.roster import import_roster
from bot.io.template import sample_rows
from bot.store.db import create_engine, session_factory
from tests.fuzz.budget import INPUTS, fuzz_settings
from tests.fuzz.strategies import digits, hostile, texts

SAMPLE = sample_rows()
SHEETS = {"households": HOUSEHOLDS, "people": PEOPLE, "members": MEMBERS, "pairings": PAIRINGS}
CELL = st.one_of(st.just(""), texts, digits, hostile, st.sampled_from(["张三", "13900000001", "999999101201", "是"]))


@pytest.fixture
async def sessions(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Any]:
    path = tmp_path / "fuzz.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield session_factory(engine)
    await engine.dispose()


@st.composite
def csv_file(draw: st.DrawFn) -> bytes:
    key = draw(st.sampled_from(sorted(SHEETS)))
    sheet = SHEETS[key]
    headers = [c.header for c in sheet.columns]
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        base = list(draw(st.sampled_from(SAMPLE[key])))
        for _ in range(draw(st.integers(0, 4))):  # a few cells of a real row replaced
            base[draw(st.integers(0, len(base) - 1))] = draw(CELL)
        rows.append(base)
    def cell(x: Any) -> str:
        s = "" if x is None else str(x)
        return '"' + s.replace('"', '""') + '"'
    lines = [",".join(headers)] + [",".join(cell(x) for x in r) for r in rows]
    return "\n".join(lines).encode("utf-8")


@fuzz_settings("import")
@given(data=csv_file(), skip_bad=st.booleans())
async def test_import_never_crashes(sessions: Any, data: bytes, skip_bad: bool) -> None:
    INPUTS["import"] += data.count(b"\n")
    try:
        roster = read_roster(data, "fuzz.csv")
    except RosterError:
        return
    async with sessions() as s:
        await import_roster(s, roster, clock=FixedClock(datetime(2026, 11, 28, 10)), skip_bad=skip_bad)
        await s.rollback()
