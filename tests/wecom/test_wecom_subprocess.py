"""`bangfu run --channel wecom` as a real process: migrates, serves the callback URL, answers the console's
URL check and a member's /start; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services.onboarding import create_invite
from bot.store.db import create_engine, session_factory
from bot.store.models import Person
from tests.botproc import bangfu_env, bangfu_run, free_port
from tests.fakewecom import FakeWeCom


@pytest.mark.slow
async def test_bangfu_run_channel_wecom(wecom: FakeWeCom, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    port = free_port()
    env = bangfu_env(
        BANGFU_DATABASE_URL=db_url,
        BANGFU_WECOM_CORP_ID=wecom.corp_id, BANGFU_WECOM_AGENT_ID=str(wecom.agent_id),
        BANGFU_WECOM_SECRET=wecom.secret, BANGFU_WECOM_TOKEN=wecom.token, BANGFU_WECOM_AES_KEY=wecom.aes_key,
        BANGFU_WECOM_API_URL=wecom.url, BANGFU_WECOM_LISTEN=f"127.0.0.1:{port}",
    )
    # On leaving: exit 0, "bangfu stopped", no ERROR bot.
    async with bangfu_run("--channel", "wecom", cwd=tmp_path, env=env) as run:
        wecom.callback_url = f"http://127.0.0.1:{port}/wecom/callback"
        await wecom.wait_for(lambda: wecom.token_fetches or None, timeout=90)  # migrated, token fetched
        for _ in range(100):
            try:
                status = await wecom.verify_url()
                break
            except OSError:
                await asyncio.sleep(0.1)
        assert status == (200, "OK")
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as s, s.begin():
                p = Person(name="孙支书", phone="13700000009", role="cadre")
                s.add(p)
                await s.flush()
                code = (await create_invite(s, datetime.now(UTC), person=p)).code
        finally:
            await engine.dispose()
        assert await wecom.text("sunzhishu", f"/start {code}") == 200
        reply = await wecom.wait_for_sent("sunzhishu", timeout=20)
        assert "孙支书" in reply.text
    assert "bangfu running on WeCom" in run.log, run.log
    assert wecom.secret not in run.log and wecom.aes_key not in run.log
