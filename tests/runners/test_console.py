"""`bangfu chat`: the console runner driven through piped input, as a script would."""

from __future__ import annotations

import io
from pathlib import Path

from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.runners.console import LocalFiles, plain, run_console
from bot.services.menu import help_text
from bot.settings import Settings
from bot.store.enums import Role
from tests.conftest import World


async def _chat(settings: Settings, clock: FixedClock, who: str | None, script: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_console(settings, who, stdin=io.StringIO(script), stdout=out, clock=clock)
    return code, out.getvalue()


async def test_console_binds_renders_and_presses_buttons(
    app: App, world: World, settings: Settings, clock: FixedClock
) -> None:
    zh = app.core.catalogs.get("zh_CN")
    en = app.core.catalogs.get("en")
    code, out = await _chat(settings, clock, "王建国", "/help\n/lang\n2\n/quit\n")
    assert code == 0
    # Bound through a real invite: the welcome comes first, in plain text (no HTML tags).
    assert plain(zh("start.bound_person", name="王建国", role=zh("role.cadre"))) in out
    assert plain(help_text(Role.CADRE, zh)) in out
    assert f"[1] {zh('lang.name.zh_CN')}\n[2] {zh('lang.name.en')}\n" in out  # one line per keyboard row
    assert en("lang.changed") in out  # typing 2 pressed the English button
    assert "<" not in out.replace("<=", "")

    # A second session is already bound (no new welcome) and remembers the language.
    code, out = await _chat(settings, clock, "13900000001", "/help\n")
    assert code == 0 and plain(zh("start.bound_person", name="王建国", role=zh("role.cadre"))) not in out
    assert plain(help_text(Role.CADRE, en)) in out


async def test_console_dialog_reply_keyboard_and_extras(
    app: App, world: World, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    zh = app.core.catalogs.get("zh_CN")
    pic = tmp_path / "p.jpg"
    pic.write_bytes(b"\xff\xd8\xff" + bytes(100))
    # A guest starts onboarding; the reply keyboard is numbered; pressing the cancel button (2) cancels.
    code, out = await _chat(settings, clock, None, "/start\n2\n/loc 25.0 x\n/photo /nonexistent.jpg\n")
    assert code == 0
    assert f"[1] {zh('start.btn_share_phone')}\n[2] {zh('core.btn_cancel')}\n" in out
    assert plain(zh("core.cancelled", title=zh("start.title"))) in out
    assert zh("console.bad_loc") in out
    assert plain(zh("console.no_file", path="/nonexistent.jpg")) in out
    assert await LocalFiles().download(str(pic)) == pic.read_bytes()  # what /photo PATH hands the core
    # Sharing the phone as a guest binds a household by its phone; a cadre's phone asks for the invite code.
    code, out = await _chat(settings, clock, None, "/start\n/contact 13800000004\n")
    assert "陈秀英" in out
    code, out = await _chat(settings, clock, None, "/start\n/contact 13900000002\n")
    assert "李红梅" not in out and plain(zh("security.staff_use_code")) in out


async def test_console_unknown_person(app: App, world: World, settings: Settings, clock: FixedClock) -> None:
    code, out = await _chat(settings, clock, "不存在的人", "")
    assert code == 1 and "不存在的人" in out
