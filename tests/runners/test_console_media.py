"""The console saves the pictures the bot sends and prints where; a villager chats as their household."""

from __future__ import annotations

import io
import re
from pathlib import Path

from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.runners.console import plain, run_console
from bot.settings import Settings
from tests.conftest import World


async def _chat(settings: Settings, clock: FixedClock, who: str | None, script: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_console(settings, who, stdin=io.StringIO(script), stdout=out, clock=clock)
    return code, out.getvalue()


async def test_a_chart_sent_to_the_console_is_saved_and_its_path_printed(
    app: App, world: World, settings: Settings, clock: FixedClock
) -> None:
    code, out = await _chat(settings, clock, "赵队长", "/digest\n/digest\n")
    assert code == 0
    paths = [Path(p) for p in re.findall(r"已保存到 (\S+?)\]", out)]
    assert len(paths) == 2 and paths[0] != paths[1]  # the second chart does not overwrite the first
    for path in paths:
        assert path.is_absolute() and path.parent == (settings.media_dir / "console").resolve()
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_villager_chats_as_their_household(
    app: App, world: World, settings: Settings, clock: FixedClock
) -> None:
    zh = app.core.catalogs.get("zh_CN")
    code, out = await _chat(settings, clock, "13800000001", "")  # 张大山's household phone
    assert code == 0 and plain(zh("start.bound_household", head="张大山")) in out
    code, out = await _chat(settings, clock, "H004", "")  # or the household code
    assert code == 0 and plain(zh("start.bound_household", head="陈秀英")) in out
