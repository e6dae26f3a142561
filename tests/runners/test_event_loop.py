"""The event loop `bangfu run` runs on: uvloop when installed and BANGFU_UVLOOP is on, asyncio's otherwise
(bot/eventloop.py); both runners, long polling and webhook, as deployed (a separate process)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from bot import eventloop
from tests.botproc import bangfu_env, bangfu_run, free_port
from tests.fakebotapi import FakeBotAPI, FakeUser

try:
    import uvloop  # noqa: F401

    HAVE_UVLOOP = True
except ImportError:  # Windows
    HAVE_UVLOOP = False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runner", "webhook", "use_uvloop"),
    [("aiogram", False, True), ("aiogram", True, False), ("ptb", False, False), ("ptb", True, True)],
    ids=["aiogram-polling-uvloop", "aiogram-webhook-asyncio", "ptb-polling-asyncio", "ptb-webhook-uvloop"],
)
async def test_bangfu_run_event_loop(
    runner: str, webhook: bool, use_uvloop: bool, api: FakeBotAPI, tmp_path: Path
) -> None:
    env = bangfu_env(
        BANGFU_TELEGRAM_TOKEN=api.token,
        BANGFU_TELEGRAM_API_URL=api.url,
        BANGFU_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}",
        BANGFU_UVLOOP="true" if use_uvloop else "false",
    )
    args = ["--runner", runner, "--no-scheduler"]
    if webhook:
        port = free_port()
        env.update(BANGFU_WEBHOOK_URL=f"http://127.0.0.1:{port}/tg/hook", BANGFU_WEBHOOK_PORT=str(port))
        args.append("--webhook")
    async with bangfu_run(*args, cwd=tmp_path, env=env) as run:  # on leaving: exit 0, stopped, no ERROR bot.
        await api.wait_for_request("setWebhook" if webhook else "getUpdates", timeout=90)
        user = FakeUser(8101)
        api.inject_message(user, "/help")
        first = await api.wait_for_sent(user.id, timeout=20)
        assert first["text"]
        # The next message is answered too (the fake server POSTs it to the webhook, or hands it out).
        api.inject_message(user, "低保怎么申请")
        # The first policy question loads the parser (its dictionaries): seconds on a loaded CI machine.
        second = await api.wait_for_sent(user.id, timeout=60)
        assert second["text"] and second["text"] != first["text"]
    kind = "uvloop" if use_uvloop and HAVE_UVLOOP else "asyncio"
    mode = "webhook" if webhook else "polling"
    assert f"bangfu running: {runner} runner, {mode} as @" in run.log, run.log
    assert run.log.count(f", on {kind}\n") == 1, run.log


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
