"""The core engine: dedup of redelivered updates, persisted dialogs (back, cancel, drafts, restart),
stale or forged buttons, concurrency on one SQLite file, and one transaction per update."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from sqlalchemy import func, select

from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Retry, State
from bot.core.engine import Core
from bot.core.router import EVERYONE, Router
from bot.core.types import Incoming, User
from bot.handlers import all_routers
from bot.settings import Settings
from bot.store.enums import Role
from bot.store.models import AuditLog, DialogState, ProcessedUpdate
from tests.conftest import Chat


class Survey(Dialog):
    """A three-step test dialog: name, age (validated), confirm."""

    name = "survey"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = "name"
    title_key = "core.btn_resume"

    async def ask(self, ctx: Ctx, st: State) -> None:
        if st.step == "confirm":
            ctx.reply_text(f"confirm {st.data['name']} {st.data['age']}", st.keyboard(ctx, [[st.btn("OK", "ok")]]))
        else:
            ctx.reply_text(f"ask {st.step}", st.keyboard(ctx, []))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text = (ctx.inc.text or "").strip()
        if st.step == "name":
            st.set(name=text)
            return Goto("age")
        if st.step == "age":
            if not text.isdigit():
                return Retry("core.not_understood")
            st.set(age=int(text))
            return Goto("confirm")
        if st.value(ctx) == "ok":
            ctx.audit("survey.saved", detail=st.data)
            ctx.reply_text("saved")
            return Finish()
        return Retry("core.not_understood")


def survey_router() -> Router:
    r = Router("survey")

    @r.command("survey")
    async def start(ctx: Ctx) -> None:
        await ctx.core.start_dialog(ctx, "survey")

    @r.command("boom")
    async def boom(ctx: Ctx) -> None:
        ctx.audit("before.boom")
        raise RuntimeError("handler bug")

    return r


def make_core(app: App, clock: FixedClock) -> Core:
    from bot.dialogs import all_dialogs

    return Core(
        app.core.settings,
        clock,
        app.core.sessions,
        app.core.catalogs,
        [survey_router(), *all_routers()],
        [*all_dialogs(), Survey()],
        app.core.services,
        app.core.menu,
    )


class _App:
    def __init__(self, core: Core) -> None:
        self.core = core


async def test_dialog_back_retry_cancel(app: App, clock: FixedClock) -> None:
    chat = Chat(_App(make_core(app, clock)), "1")  # type: ignore[arg-type]
    await chat.send("/survey")
    assert chat.last_text == "ask name"
    await chat.send("阿明")
    await chat.send("not a number")
    assert chat.last_text == "ask age"  # re-asked, name kept
    await chat.send("/back")
    assert chat.last_text == "ask name"
    await chat.send("阿强")
    await chat.send("42")
    assert chat.last_text == "confirm 阿强 42"
    await chat.press_text("取消")
    assert "已取消" in chat.last_text
    await chat.send("/cancel")
    assert "没有正在进行" in chat.last_text


async def test_restart_mid_dialog_continues_on_same_database(settings: Settings, clock: FixedClock) -> None:
    first = build_core(settings, clock)
    chat = Chat(_App(make_core(first, clock)), "2")  # type: ignore[arg-type]
    await chat.send("/survey")
    await chat.send("阿明")
    await first.close()
    second = build_core(settings, clock)  # a new process on the same database
    chat.app = _App(make_core(second, clock))  # type: ignore[assignment]
    await chat.send("30")
    assert chat.last_text == "confirm 阿明 30"
    await chat.press("d:" + chat.button("OK").split(":", 2)[1] + ":ok")
    assert chat.last_text == "saved"
    await second.close()


async def test_double_press_and_forged_nonce(app: App, clock: FixedClock) -> None:
    chat = Chat(_App(make_core(app, clock)), "3")  # type: ignore[arg-type]
    await chat.send("/survey")
    await chat.send("阿明")
    await chat.send("7")
    ok = chat.button("OK")
    await chat.press(ok)
    await chat.press(ok)  # second press of the same button
    assert "失效" in chat.last_text
    async with app.core.sessions() as s:
        saved = await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "survey.saved"))
    assert saved == 1
    await chat.send("/survey")
    await chat.press("d:deadbeef:ok")  # forged nonce
    assert "失效" in chat.last_text


async def test_redelivered_update_is_dropped(app: App, clock: FixedClock) -> None:
    core = make_core(app, clock)
    inc = Incoming("telegram", User("4", "x"), "4", update_id="777", text="/survey", command="survey")
    first = await core.handle(inc)
    again = await core.handle(inc)
    assert first.actions and not again.actions
    async with app.core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 1
        # Recorded on the fast path (straight to the DBAPI on SQLite): read back as SQLAlchemy wrote it.
        row = await s.scalar(select(ProcessedUpdate))
        assert row is not None and (row.channel, row.update_id, row.at) == ("telegram", "777", clock.now())


async def test_draft_parked_and_resumed(app: App, clock: FixedClock) -> None:
    chat = Chat(_App(make_core(app, clock)), "5")  # type: ignore[arg-type]
    await chat.send("/survey")
    await chat.send("阿明")
    await chat.send("/start")  # another dialog parks the survey as a draft
    assert any("草稿" in (getattr(r, "text", "") or "") for r in chat.replies)
    await chat.send("/cancel")
    clock.advance(days=3)
    await chat.send("/survey")
    await chat.press_text("接着填")
    assert chat.last_text == "ask age"
    await chat.send("/cancel")
    # A draft older than the keep period is not offered, and purge removes it.
    await chat.send("/survey")
    await chat.send("阿明")
    await chat.send("/start")
    clock.advance(days=8)
    await chat.send("/cancel")
    await chat.send("/survey")
    assert chat.last_text == "ask name"


async def test_handler_error_rolls_back_and_answers_politely(app: App, clock: FixedClock) -> None:
    chat = Chat(_App(make_core(app, clock)), "6")  # type: ignore[arg-type]
    await chat.send("/boom")
    assert "出了点问题" in chat.last_text
    async with app.core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "before.boom")) == 0


async def test_concurrent_users_on_one_database(app: App, clock: FixedClock) -> None:
    core = make_core(app, clock)

    async def user(n: int) -> list[Any]:
        out = []
        for i, text in enumerate(["/survey", f"name{n}", str(n)]):
            cmd, args = Incoming.parse_command(text)
            r = await core.handle(
                Incoming("telegram", User(f"u{n}"), f"u{n}", update_id=f"{n}-{i}", text=text, command=cmd, args=args)
            )
            out.append(r.actions[0].text)  # type: ignore[union-attr]
        return out

    results = await asyncio.gather(*(user(n) for n in range(20)))
    for n, texts in enumerate(results):
        assert texts[-1] == f"confirm name{n} {n}"
    async with app.core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DialogState)) == 20


def test_startup_heap_is_frozen_out_of_the_collectors_sight(app: App) -> None:
    import gc

    from bot.core.bootstrap import freeze_startup_heap

    catalogs = app.core.catalogs
    try:
        assert freeze_startup_heap() > 0
        # Long-lived start-up objects are no longer walked by full collections.
        assert not any(o is catalogs for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
