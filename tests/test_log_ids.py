"""Issue 10 #4: a failed update is logged by its ids, never by its texts (nor the SQL parameters)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from bot.core.bootstrap import App
from tests.conftest import Chat, World

SECRET = "张大山身份证530102197001011234秘密"


async def _rename(app: App, old: str, new: str) -> None:
    async with app.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_failed_update_logged_by_ids(app: App, world: World, caplog: pytest.LogCaptureFixture) -> None:
    chat = Chat(app, "790")
    await chat.send("/start")
    await _rename(app, "policy_questions", "policy_questions_away")  # every question now fails to save
    try:
        caplog.set_level(logging.INFO)
        await chat.send(f"住院能报多少 {SECRET}")
        assert "系统出了点问题" in chat.last_text
    finally:
        await _rename(app, "policy_questions_away", "policy_questions")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "update=790-2" in errors[0].getMessage() and "user=790" in errors[0].getMessage()
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "530102" not in logged and "秘密" not in logged and "住院能报多少" not in logged
