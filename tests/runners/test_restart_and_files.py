"""Runner-level behaviour that needs a custom core: a dialog surviving a runner restart (state lives in the
database, not in the process) and a user's photo fetched back through getFile over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, ClassVar

import pytest

from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Retry, State
from bot.core.engine import Core
from bot.core.router import EVERYONE, Router
from bot.core.services import Services, county_rules
from bot.dialogs import all_dialogs
from bot.handlers import all_routers
from bot.i18n import Catalogs
from bot.services.menu import commands_for
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.enums import Role
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import make_runner, telegram_settings


class SurveyDialog(Dialog):
    """Three steps: a name, a village, then a confirm button."""

    name = "survey"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = "name"
    title_key = "start.title"

    async def ask(self, ctx: Ctx, st: State) -> None:
        if st.step == "confirm":
            summary = f"confirm {st.data['name']} / {st.data['village']}?"
            ctx.reply_text(summary, st.keyboard(ctx, [[st.btn("OK", "ok")]]))
        else:
            ctx.reply_text(f"ask {st.step}", st.keyboard(ctx, []))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        if st.step == "confirm":
            if st.value(ctx) != "ok":
                return Retry("start.retry_code")
            ctx.reply_text(f"saved {st.data['name']} / {st.data['village']}")
            return Finish()
        text = (ctx.inc.text or "").strip()
        if not text:
            return Retry("start.retry_code")
        st.set(**{st.step: text})
        return Goto("village" if st.step == "name" else "confirm")


def _test_router() -> Router:
    router = Router("test")

    @router.command("survey")
    async def survey(ctx: Ctx) -> None:
        await ctx.core.start_dialog(ctx, "survey")

    async def photo(ctx: Ctx) -> None:
        source = ctx.core.file_source
        assert source is not None
        f = ctx.inc.files[0]
        data = await source.download(f.file_id)
        ctx.reply_text(f"{f.kind} {len(data)} {hashlib.sha256(data).hexdigest()[:16]}")

    router._add("file", [""], None)(photo)

    @router.command("slow")
    async def slow(ctx: Ctx) -> None:
        await asyncio.sleep(0.3)
        ctx.reply_text("done")

    @router.callback("boom")
    async def boom(ctx: Ctx) -> None:
        raise RuntimeError("handler bug")

    return router


def build_test_app(settings: Settings, clock: FixedClock) -> App:
    """The production routers and dialogs plus the test-only ones, on a fresh engine."""
    engine = create_engine(settings.database_url)
    core = Core(
        settings,
        clock,
        session_factory(engine),
        Catalogs(settings.locales_dir, settings.default_language),
        [_test_router(), *all_routers()],
        [*all_dialogs(), SurveyDialog()],
        Services(rules=county_rules(settings), policy=None),
        commands_for,
    )
    return App(core, engine)


@pytest.mark.parametrize(("first", "second"), [("aiogram", "ptb"), ("ptb", "aiogram")])
async def test_restart_mid_dialog_continues_at_step_3(
    first: str, second: str, settings: Settings, clock: FixedClock, api: FakeBotAPI
) -> None:
    s = telegram_settings(settings, api)
    user = FakeUser(7001)
    app1 = build_test_app(s, clock)
    runner1: Any = make_runner(first, app1, s)
    await runner1.start()
    try:
        api.inject_message(user, "/survey")
        assert (await api.wait_for_sent(user.id))["text"] == "ask name"
        api.inject_message(user, "张三")
        assert (await api.wait_for_sent(user.id))["text"] == "ask village"
    finally:
        await runner1.stop()
        await app1.close()

    # Whatever the user sends while the bot is down waits at Telegram and is delivered to the new process.
    api.inject_message(user, "石桥村")
    app2 = build_test_app(s, clock)
    runner2: Any = make_runner(second, app2, s)
    await runner2.start()
    try:
        confirm = await api.wait_for_sent(user.id)
        assert confirm["text"] == "confirm 张三 / 石桥村?"
        ok = next(b["callback_data"] for row in confirm["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "OK")
        api.inject_callback(user, ok, confirm)
        assert (await api.wait_for_sent(user.id))["text"] == "saved 张三 / 石桥村"
    finally:
        await runner2.stop()
        await app2.close()


@pytest.mark.parametrize("kind", ["aiogram", "ptb"])
async def test_photo_reaches_core_and_downloads_over_http(
    kind: str, settings: Settings, clock: FixedClock, api: FakeBotAPI
) -> None:
    s = telegram_settings(settings, api)
    app = build_test_app(s, clock)
    runner: Any = make_runner(kind, app, s)
    await runner.start()
    try:
        blob = bytes(range(256)) * 40
        _, largest = api.inject_photo(FakeUser(7002), blob)
        reply = await api.wait_for_sent(7002)
        assert reply["text"] == f"photo {len(blob)} {hashlib.sha256(blob).hexdigest()[:16]}"
        # The core asked for the largest size only.
        assert [r.params["file_id"] for r in api.calls("getFile")] == [largest]
    finally:
        await runner.stop()
        await app.close()


@pytest.mark.parametrize("kind", ["aiogram", "ptb"])
async def test_one_users_updates_run_in_order_while_users_run_concurrently(
    kind: str, settings: Settings, clock: FixedClock, api: FakeBotAPI
) -> None:
    s = telegram_settings(settings, api)
    # Queued before the runner starts, so they arrive in one getUpdates batch and are handled as
    # concurrent tasks: without per-user ordering the dialog steps would race each other.
    users = [FakeUser(7100 + i) for i in range(3)]
    for step in ("/survey", "张三", "石桥村"):
        for u in users:
            api.inject_message(u, f"{step}{u.id % 10}" if step != "/survey" else step)
    app = build_test_app(s, clock)
    runner: Any = make_runner(kind, app, s)
    await runner.start()
    try:
        for u in users:
            n = u.id % 10
            await api.wait_for_sent(u.id, lambda m, n=n: m["text"] == f"confirm 张三{n} / 石桥村{n}?", since=0)
            assert [m["text"] for m in api.sent_to(u.id)] == ["ask name", "ask village", f"confirm 张三{n} / 石桥村{n}?"]
    finally:
        await runner.stop()
        await app.close()


@pytest.mark.parametrize("kind", ["aiogram", "ptb"])
async def test_typing_shown_for_slow_updates_and_failed_press_still_answered(
    kind: str, settings: Settings, clock: FixedClock, api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.runners import telegram_common

    monkeypatch.setattr(telegram_common, "TYPING_AFTER", 0.05)
    s = telegram_settings(settings, api)
    app = build_test_app(s, clock)
    runner: Any = make_runner(kind, app, s)
    await runner.start()
    try:
        api.inject_message(FakeUser(7200), "/slow")
        assert (await api.wait_for_sent(7200))["text"] == "done"
        action = api.calls("sendChatAction")[-1]
        assert action.params["action"] == "typing" and str(action.params["chat_id"]) == "7200"
        api.inject_callback(FakeUser(7200), "boom:1")
        error = await api.wait_for_sent(7200)
        assert error["text"] == app.core.catalogs.get("zh_CN")("core.error")
        answered = await api.wait_for_request("answerCallbackQuery")
        assert answered.params["callback_query_id"].startswith("cq")
    finally:
        await runner.stop()
        await app.close()
