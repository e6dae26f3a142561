"""Rosters in, ledgers out, end to end: import the shipped sample roster, log a visit through the real
python-telegram-bot runner over HTTP against the fake Bot API server, export the ledger, and read the
workbook back with openpyxl."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from bot.core.bootstrap import App
from bot.io.export import export_workbook
from bot.io.roster import import_file
from bot.settings import PACKAGE_DIR, Settings
from bot.store.models import Household, Pairing, Person
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import make_runner, telegram_settings

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def _button(msg: dict[str, Any], label: str) -> str:
    markup = msg.get("params", {}).get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for b in row:
            if label in b["text"]:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {msg.get('text')!r}")


async def test_import_log_visit_over_telegram_export(app: App, settings: Settings, api: FakeBotAPI) -> None:
    sample = (PACKAGE_DIR / "io" / "templates" / "sample_roster.xlsx").read_bytes()
    async with app.core.sessions() as s, s.begin():
        result = await import_file(s, sample, "sample_roster.xlsx", clock=app.core.clock)
        assert result.applied, [p for p in result.problems]
    async with app.core.sessions() as s, s.begin():
        cadre, household = (
            await s.execute(
                select(Person, Household)
                .join(Pairing, Pairing.cadre_id == Person.id)
                .join(Household, Household.id == Pairing.household_id)
                .where(Pairing.end_date.is_(None), Person.role == "cadre")
                .order_by(Person.id, Household.id)
                .limit(1)
            )
        ).one()
        from bot.services.onboarding import create_invite

        code = (await create_invite(s, app.core.clock.now(), person=cadre)).code
        cadre_name, head = cadre.name, household.head_name

    runner = make_runner("ptb", app, telegram_settings(settings, api))
    await runner.start()
    try:
        user = FakeUser(7001, "干部")

        async def said(fragment: str) -> dict[str, Any]:
            return await api.wait_for_sent(user.id, lambda m: fragment in (m.get("text") or ""))

        async def press(msg: dict[str, Any], label: str, then: str) -> dict[str, Any]:
            api.inject_callback(user, _button(msg, label), msg)
            return await said(then)

        api.inject_message(user, f"/start {code}")
        await said(cadre_name)
        api.inject_message(user, f"/visit {head}")
        msg = await said("是哪天")
        api.inject_message(user, "前天")
        msg = await said("什么类型")
        msg = await press(msg, "日常走访", "做了什么")
        api.inject_message(user, "宣讲医保缴费政策，核对收入")
        msg = await said("需求")
        api.inject_message(user, "想找附近的务工机会")
        msg = await said("要拍照")
        msg = await press(msg, "不拍", "最后一步")
        api.inject_location(user, 25.0412, 102.7123)
        summary = await said("请核对")
        await press(summary, "保存", "已保存")
    finally:
        await runner.stop()

    async with app.core.sessions() as s:
        data = await export_workbook(s, "visits", date(2026, 1, 1), date(2026, 11, 30), None)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    cells = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert head in cells and cadre_name in cells
    assert "宣讲医保缴费政策，核对收入" in cells and "想找附近的务工机会" in cells
    assert any(v == date(2026, 11, 26) or getattr(v, "date", lambda: None)() == date(2026, 11, 26) for v in cells)
