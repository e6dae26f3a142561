"""The event loop `bangfu run` runs on: uvloop when installed and BANGFU_UVLOOP is on, asyncio's otherwise
(bot/eventloop.py); both runners, long polling and webhook, as deployed (a separate process)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from bot import eventloop
from tests.fakebotapi import FakeBotAPI, FakeUser

REPO = Path(__file__).resolve().parents[2]
try:
    import uvloop  # noqa: F401

    HAVE_UVLOOP = True
except ImportError:  # Windows
    HAVE_UVLOOP = False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runner", "webhook", "use_uvloop"),
    [("aiogram", False, True), ("aiogram", True, False), ("ptb", False, False), ("ptb", True, True)],
    ids=["aiogram-polling-uvloop", "aiogram-webhook-asyncio", "ptb-polling-asyncio", "ptb-webhook-uvloop"],
)
async def test_bangfu_run_event_loop(
    runner: str, webhook: bool, use_uvloop: bool, api: FakeBotAPI, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update(
        BANGFU_TELEGRAM_TOKEN=api.token,
        BANGFU_TELEGRAM_API_URL=api.url,
        BANGFU_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}",
        BANGFU_UVLOOP="true" if use_uvloop else "false",
        PYTHONPATH=str(REPO),
    )
    argv = ["run", "--runner", runner, "--no-scheduler"]
    if webhook:
        port = _free_port()
        env.update(BANGFU_WEBHOOK_URL=f"http://127.0.0.1:{port}/tg/hook", BANGFU_WEBHOOK_PORT=str(port))
        argv.append("--webhook")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *argv, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await api.wait_for_request("setWebhook" if webhook else "getUpdates", timeout=90)
        user = FakeUser(8101)
        api.inject_message(user, "/help")
        first = await api.wait_for_sent(user.id, timeout=20)
        assert first["text"]
        # The next message is answered too (the fake server POSTs it to the webhook, or hands it out).
        api.inject_message(user, "低保怎么申请")
        second = await api.wait_for_sent(user.id, timeout=20)
        assert second["text"] and second["text"] != first["text"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    kind = "uvloop" if use_uvloop and HAVE_UVLOOP else "asyncio"
    mode = "webhook" if webhook else "polling"
    assert f"bangfu running: {runner} runner, {mode} as @" in log, log
    assert log.count(f", on {kind}\n") == 1, log
    assert "bangfu stopped" in log
    assert "ERROR bot." not in log, log


def test_run_picks_the_loop() -> None:
    async def which() -> str:
        return eventloop.loop_kind()

    assert eventloop.run(which(), use_uvloop=False) == "asyncio"
    assert eventloop.run(which(), use_uvloop=True) == ("uvloop" if HAVE_UVLOOP else "asyncio")


def test_without_uvloop_installed_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError, as on Windows
    assert eventloop.loop_factory(True) is None

    async def which() -> str:
        return eventloop.loop_kind()

    assert eventloop.run(which(), use_uvloop=True) == "asyncio"


def test_gc_gen0_threshold() -> None:
    before = gc.get_threshold()
    try:
        eventloop.set_gc_gen0_threshold(0)
        assert gc.get_threshold() == before
        eventloop.set_gc_gen0_threshold(20_000)
        assert gc.get_threshold() == (20_000, before[1], before[2])
    finally:
        gc.set_threshold(*before)
