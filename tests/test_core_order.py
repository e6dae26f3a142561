"""One user's updates handled by two workers (two cores on two engines over one database) take turns, and
the second reads what the first committed: its dialog step, not the one the first update started from.

On PostgreSQL (READ COMMITTED) a statement reads the snapshot taken when it started: a statement that
both waits for the user's lock and reads the dialog row would read the row as it was before the first
update committed, and the second update would answer the wrong step."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.core.context import Ctx
from bot.core.dialog import Dialog, Goto, Next, Retry, State
from bot.core.engine import Core
from bot.core.router import EVERYONE, Router
from bot.core.types import Incoming, Reply, User
from bot.settings import Settings
from bot.store.enums import Role


class Held(Dialog):
    """Two steps; the input "hold" waits for the test's signal inside the update's transaction."""

    name = "held"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = "name"
    title_key = "core.btn_resume"
    entered: asyncio.Event
    release: asyncio.Event

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply_text(f"ask {st.step}" if st.step != "done" else f"got {st.data['name']} {st.data['age']}")

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text = (ctx.inc.text or "").strip()
        if text == "hold":
            self.entered.set()
            await self.release.wait()
        if st.step == "name":
            st.set(name=text)
            return Goto("age")
        if st.step == "age":
            st.set(age=text)
            return Goto("done")
        return Retry("core.not_understood")


def _router() -> Router:
    r = Router("held")

    @r.command("held")
    async def start(ctx: Ctx) -> None:
        await ctx.core.start_dialog(ctx, "held")

    return r


def _core(app: App, clock: FixedClock, dialog: Held) -> Core:
    return Core(app.core.settings, clock, app.core.sessions, app.core.catalogs, [_router()], [dialog],
                app.core.services, None)


def _inc(n: int, text: str) -> Incoming:
    cmd, args = Incoming.parse_command(text)
    return Incoming("telegram", User("42", "x"), "42", update_id=f"o-{n}", text=text, command=cmd, args=args)


def _text(actions: list[Any]) -> str:
    return " | ".join(a.text for a in actions if isinstance(a, Reply) and a.text)


@pytest.mark.parametrize("budget", [30, 0])  # 0: no message budget counted in the database (or in Redis)
@pytest.mark.parametrize("hot_path", [True, False])  # False: PostgreSQL through SQLAlchemy only (not asyncpg)
async def test_second_worker_reads_what_the_first_committed(
    settings: Settings, clock: FixedClock, budget: int, hot_path: bool
) -> None:
    settings = settings.model_copy(update={"messages_per_minute": budget})
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)  # two engines, two pools
    dialog = Held()
    dialog.entered, dialog.release = asyncio.Event(), asyncio.Event()
    a, b = _core(worker_a, clock, dialog), _core(worker_b, clock, dialog)
    if not hot_path:
        if a._pg is None:
            pytest.skip("no PostgreSQL hot path on this database")
        a._pg = b._pg = None
    try:
        assert _text((await a.handle(_inc(1, "/held"))).actions) == "ask name"
        first = asyncio.create_task(a.handle(_inc(2, "hold")))  # name = hold, held open
        await asyncio.wait_for(dialog.entered.wait(), 10)
        second = asyncio.create_task(b.handle(_inc(3, "42")))  # the same user, on the other worker
        await asyncio.sleep(0.3)
        assert not second.done()  # it waits for the first update of its user to end
        dialog.release.set()
        assert _text((await asyncio.wait_for(first, 10)).actions) == "ask age"
        # The second update sees the step the first one committed (age), not the one it replaced (name).
        assert _text((await asyncio.wait_for(second, 10)).actions) == "got hold 42"
        # And the next message, on the first worker again, finds the dialog where the second one left it.
        assert _text((await a.handle(_inc(4, "more"))).actions).endswith("got hold 42")
    finally:
        dialog.release.set()
        await worker_a.close()
        await worker_b.close()
