"""Issue 10 #2: staff commands, dialogs and anything with personal data answer in private chats only."""

from __future__ import annotations

from typing import Any

from bot.core.bootstrap import App
from bot.core.types import Incoming, Reply, User
from bot.store.models import DialogState
from tests.cadre.conftest import count
from tests.conftest import Chat, World

GROUP = "-100777"
PRIVATE_ONLY = "只能在和我的私聊里使用"


class GroupChat(Chat):
    """The same user, talking in a group chat."""

    async def _go(self, **kw: Any) -> list[Reply]:
        self._update += 1
        inc = Incoming(
            channel="telegram",
            user=User(self.user_id, self.name, language_code=self.language_code),
            chat_id=GROUP,
            update_id=f"g{self.user_id}-{self._update}",
            chat_type="supergroup",
            **kw,
        )
        result = await self.app.core.handle(inc)
        self.replies.extend(result.actions)
        return [a for a in result.actions if isinstance(a, Reply)]


async def test_staff_commands_refused_in_group(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    group = GroupChat(app, cadre.user_id, name="王建国")
    for command in ("/households", "/visit", "/problem", "/checkin"):
        replies = await group.send(command)
        assert [r.text for r in replies] == [app.core.catalogs.get("zh_CN")("core.private_only")], command
        assert all("张大山" not in (r.text or "") for r in replies)
    for data in (f"hh:o:{world.households['张大山']}", "hh:p:0", f"pb:{world.households['张大山']}"):
        replies = await group.press(data)
        assert [r.text for r in replies if r.chat_id == GROUP] and PRIVATE_ONLY in (replies[0].text or "")
        assert all("张大山" not in (r.text or "") for r in replies)
    lgroup = GroupChat(app, leader.user_id, name="赵队长")
    for command in ("/overdue", "/week", "/difficulties", "/export", "/report"):
        replies = await lgroup.send(command)
        assert len(replies) == 1 and PRIVATE_ONLY in (replies[0].text or ""), command
    assert await count(app, DialogState) == 0
    # Sharing a contact or an invite code in a group binds nobody.
    stranger = GroupChat(app, "888")
    replies = await stranger.send("/start ABCDEFGH")
    assert PRIVATE_ONLY in (replies[0].text or "")
    # Everyone's things still work in a group: a policy question, /help.
    replies = await group.send("住院能报多少")
    assert "住院" in (replies[-1].text or "")
    # The cadre's private dialog is neither advanced nor cancelled from the group.
    await cadre.send("/visit")
    await group.send("/cancel")
    assert PRIVATE_ONLY in group.last_text or PRIVATE_ONLY in (group.replies[-1].text or "")  # type: ignore[union-attr]
    assert await count(app, DialogState, DialogState.active.is_(True)) == 1
