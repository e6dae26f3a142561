"""Issue 10 #3: the invite-code lock-out lives in the database, so it holds across worker processes (two
cores on one database) and across a restart (a new core), not only within one process's memory."""

from __future__ import annotations

from bot.core.bootstrap import App, build_core
from bot.services.onboarding import create_invite
from bot.store.models import Person, RateLimit
from tests.conftest import Chat, World
from tests.test_onboarding_security import _bound


def _said(chat: Chat) -> str:
    return "".join(r.text or "" for r in chat.replies[-2:] if hasattr(r, "text"))


async def test_invite_lock_out_shared_by_workers_and_kept_over_a_restart(app: App, world: World) -> None:
    async with app.core.sessions() as s, s.begin():
        code = (await create_invite(s, app.core.clock.now(), person=await s.get(Person, world.cadre_ids[0]))).code
    other = build_core(app.core.settings, app.core.clock)  # a second worker process on the same database
    try:
        first, second = Chat(app, "760"), Chat(other, "760")
        second._update = 10_000  # distinct update ids, as Telegram would give
        await first.send("/start")
        for i in range(3):  # the guesses alternate between the two workers: 3 + 2 = 5 wrong codes
            await (first if i % 2 == 0 else second).send(f"/start WRONG{i:03d}")
        await second.send("/start WRONG003")
        assert "分钟后再试" not in _said(second)
        await first.send("/start WRONG004")
        assert "1分钟后再试" in _said(first)
        await second.send(f"/start {code}")  # the other worker refuses the right code too
        assert "分钟后再试" in _said(second) and await _bound(app, "760") == (None, None)
    finally:
        await other.close()
    await app.close()
    restarted = build_core(app.core.settings, app.core.clock)  # the process restarted: nothing in memory
    try:
        chat = Chat(restarted, "760")
        chat._update = 20_000
        await chat.send(f"/start {code}")
        assert "分钟后再试" in _said(chat) and await _bound(restarted, "760") == (None, None)
        async with restarted.core.sessions() as s:
            row = await s.get(RateLimit, "invite:telegram:760")
            assert row is not None and row.strikes == 1
        restarted.core.clock.advance(minutes=2)  # type: ignore[attr-defined]
        await chat.send(f"/start {code}")
        assert await _bound(restarted, "760") == (world.cadre_ids[0], None)
    finally:
        await restarted.close()
