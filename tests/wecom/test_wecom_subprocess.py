"""`bangfu run --channel wecom` as a real process: migrates, serves the callback URL, answers the console's
URL check and a member's /start; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services.onboarding import create_invite
from bot.store.db import create_engine, session_factory
from bot.store.models import Person
from tests.fakewecom import FakeWeCom

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_bangfu_run_channel_wecom(wecom: FakeWeCom, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update(
        BANGFU_DATABASE_URL=db_url, PYTHONPATH=str(REPO),
        BANGFU_WECOM_CORP_ID=wecom.corp_id, BANGFU_WECOM_AGENT_ID=str(wecom.agent_id),
        BANGFU_WECOM_SECRET=wecom.secret, BANGFU_WECOM_TOKEN=wecom.token, BANGFU_WECOM_AES_KEY=wecom.aes_key,
        BANGFU_WECOM_API_URL=wecom.url, BANGFU_WECOM_LISTEN=f"127.0.0.1:{port}",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--channel", "wecom", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    wecom.callback_url = f"http://127.0.0.1:{port}/wecom/callback"
    try:
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
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "bangfu stopped" in log and "bangfu running on WeCom" in log
    assert "ERROR bot." not in log, log
    assert wecom.secret not in log and wecom.aes_key not in log
