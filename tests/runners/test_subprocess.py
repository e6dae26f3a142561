"""`bangfu run` as deployed: a separate process configured only by environment variables, on a fresh database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services.onboarding import create_invite
from bot.store.db import create_engine, session_factory
from bot.store.models import Person
from tests.fakebotapi import FakeBotAPI, FakeUser

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_bangfu_run_subprocess(api: FakeBotAPI, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update(
        BANGFU_TELEGRAM_TOKEN=api.token,
        BANGFU_TELEGRAM_API_URL=api.url,
        BANGFU_DATABASE_URL=db_url,
        PYTHONPATH=str(REPO),
    )
    # cwd has no .env: the environment is the only configuration.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
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
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "bangfu stopped" in log
    assert "Failed to fetch updates" not in log  # the long poll was ended, not cut
    # Nothing of ours failed (aiogram logs its cancelled long poll; APScheduler a tick cut short by the stop).
    assert "ERROR bot." not in log, log
