"""Issue 10 #13: a state-changing button pressed again changes nothing and tells nobody twice."""

from __future__ import annotations

from bot.core.bootstrap import App
from bot.store.models import Difficulty
from tests.cadre.conftest import rows, to
from tests.conftest import Chat, World, bind


async def _file(cadre: Chat) -> None:
    await cadre.send("/problem")
    await cadre.send("全村")
    await cadre.press_text("饮水安全")
    await cadre.send("水管冻裂")
    await cadre.press_text("紧急")
    await cadre.press_text("不发照片")


async def test_assign_ack_resolve_pressed_five_times(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    other = Chat(app, "212")
    await bind(app, other, person_id=world.cadre_ids[1])
    await _file(cadre)
    [d] = await rows(app, Difficulty)
    for _ in range(5):
        await leader.press(f"df:ack:{d.id}")
    assert len([t for t in to(leader, "201") if "已受理" in t]) == 1
    for _ in range(5):
        await leader.press(f"df:to:{d.id}:{world.cadre_ids[1]}")
    assert len([t for t in to(leader, "201") if "办理中" in t]) == 1  # the reporter, once
    assert len([t for t in to(leader, "212") if "指派给您" in t]) == 1  # the assignee, once
    assert "已经指派给李红梅" in leader.last_text
    for _ in range(5):
        await leader.press(f"df:res:{d.id}")
    await leader.send("已换管")
    for _ in range(4):
        await leader.press(f"df:res:{d.id}")
        await leader.send("又说一遍")
    assert len([t for t in to(leader, "201") if "已办结" in t]) == 1
    [d] = await rows(app, Difficulty)
    assert d.status == "resolved" and d.resolution_note == "已换管"
