"""Helpers shared by the io tests (a uniquely named module: tests/conftest.py is the other conftest)."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.io.format import SHEET_BY_KEY
from bot.store.models import Household, HouseholdMember, Pairing, Person, Team, Village

COUNTED = (Village, Team, Person, Household, HouseholdMember, Pairing)


async def count_rows(session: AsyncSession) -> dict[str, int]:
    """Row counts of the roster tables."""
    return {
        m.__tablename__: int(await session.scalar(select(func.count()).select_from(m)) or 0) for m in COUNTED
    }


def roster_bytes(rows: dict[str, list[list[Any]]], headers: dict[str, list[str]] | None = None) -> bytes:
    """A roster workbook from rows per sheet key, with the format's headers unless given."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    for key, data in rows.items():
        sheet = SHEET_BY_KEY[key]
        ws = wb.create_sheet(sheet.title)
        ws.append((headers or {}).get(key) or [c.header for c in sheet.columns])
        for r in data:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
