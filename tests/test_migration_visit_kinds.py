"""ux_0001: visits recorded before a visit could be several kinds get their one kind as the list."""

from __future__ import annotations

import asyncio
import json

from alembic import command
from sqlalchemy import text

from bot.store.db import create_engine
from bot.store.migrate import alembic_config

_ROWS = [
    "INSERT INTO villages (id, code, name, township, county, groups_count) VALUES (1, 'V1', '石桥村', '镇', '县', 1)",
    "INSERT INTO people (id, name, role, work_unit, active) VALUES (1, '王建国', 'cadre', '', true)",
    "INSERT INTO households (id, code, village_id, head_name, members_count, address, poverty_causes, status,"
    " registered_poor, plan) VALUES (1, 'H1', 1, '张大山', 1, '', '[]', 'lifted', true, '')",
    "INSERT INTO visits (id, idem_key, household_id, cadre_id, visit_date, kind, done, needs, location_status,"
    " flagged, created_at) VALUES (1, 'v1', 1, 1, '2026-04-01', 'spring', '', '', 'none', false,"
    " '2026-04-01 08:00:00+00:00')",
]


async def test_existing_visits_get_their_kind_as_a_list(db_url: str) -> None:
    cfg = alembic_config(db_url)
    await asyncio.to_thread(command.downgrade, cfg, "base")
    await asyncio.to_thread(command.upgrade, cfg, "0001")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            for sql in _ROWS:
                await conn.execute(text(sql))
        await asyncio.to_thread(command.upgrade, cfg, "heads")
        async with engine.connect() as conn:
            raw = (await conn.execute(text("SELECT kinds FROM visits WHERE id = 1"))).scalar_one()
    finally:
        await engine.dispose()
    assert (json.loads(raw) if isinstance(raw, str) else raw) == ["spring"]
