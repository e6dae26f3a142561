"""`bangfu run` as deployed: a separate process configured only by environment variables, on a fresh database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services.onboarding import create_invite
from bot.store.db import create_engine, session_factory
from bot.store.models import Person
from tests.botproc import bangfu_env, bangfu_run
from tests.fakebotapi import FakeBotAPI, FakeUser


@pytest.mark.slow
async def test_bangfu_run_subprocess(api: FakeBotAPI, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    env = bangfu_env(BANGFU_TELEGRAM_TOKEN=api.token, BANGFU_TELEGRAM_API_URL=api.url, BANGFU_DATABASE_URL=db_url)
    # cwd has no .env: the environment is the only configuration. On leaving, the process must have stopped
    # cleanly with nothing of ours failing (aiogram logs its cancelled long poll; APScheduler a tick cut short).
    async with bangfu_run(cwd=tmp_path, env=env) as run:
        # Importing aiogram alone takes seconds on a slow machine; the first getUpdates means migrated and polling.
        await api.wait_for_request("getUpdates", timeout=90)
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as s, s.begin():
                p = Person(name="孙支书", phone="13700000009", role="cadre")
                s.add(p)
                await s.flush()
                code = (await create_invite(s, datetime.now(UTC), person=p)).code
        finally:
            await engine.dispose()
        user = FakeUser(8001)
        api.inject_message(user, f"/start {code}")
        reply = await api.wait_for_sent(user.id, timeout=20)
        assert "孙支书" in reply["text"]
    assert "Failed to fetch updates" not in run.log, run.log  # the long poll was ended, not cut
