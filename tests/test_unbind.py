"""A stranger bound to a household (a door card photographed, a phone that changed hands) is unbound by the
household's cadre from the household file; nobody else can, and the account loses the household at once."""

from __future__ import annotations

from bot.buttons import HOUSEHOLD_FILE, HOUSEHOLD_UNBIND
from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.store.models import Account, AuditLog
from tests.cadre.conftest import rows
from tests.conftest import Chat, World, bind

HARDSHIP = "我家老人住院了，押金交不起，怎么办"


def _to(chat: Chat, user_id: str, since: int = 0) -> list[str]:
    return [r.text or "" for r in chat.replies[since:] if isinstance(r, Reply) and r.chat_id == user_id]


async def test_cadre_unbinds_a_stranger_from_the_household_file(app: App, world: World) -> None:
    hid = world.households["陈秀英"]
    villager, other_cadre, cadre = Chat(app, "800"), Chat(app, "801"), Chat(app, "802")
    await bind(app, villager, household_id=hid)
    await bind(app, other_cadre, person_id=world.cadre_ids[0])  # 王建国: not 陈秀英's cadre
    await bind(app, cadre, person_id=world.cadre_ids[1])  # 李红梅: 陈秀英's cadre
    [account] = await rows(app, Account, Account.external_id == "800")
    assert account.household_id == hid
    # While bound, the villager's hardship reaches the household's cadre.
    mark = len(villager.replies)
    await villager.send(HARDSHIP)
    assert any("陈秀英" in t for t in _to(villager, "802", mark))

    await cadre.press(HOUSEHOLD_FILE.pack(hid))
    assert "已绑定的聊天账号：1 个" in cadre.last_text
    unbind = cadre.button("解绑")
    assert unbind == HOUSEHOLD_UNBIND.pack(account.id)

    # Another cadre forging the same button (or any account id) changes nothing.
    await other_cadre.press(unbind)
    assert "不是您结对" in other_cadre.last_text
    [account] = await rows(app, Account, Account.external_id == "800")
    assert account.household_id == hid
    assert await rows(app, AuditLog, AuditLog.action == "account.unbind_refused")

    told = await cadre.press(unbind)
    assert "已解绑" in cadre.last_text
    assert any("解除绑定" in (r.text or "") for r in told if r.chat_id == "800")
    [account] = await rows(app, Account, Account.external_id == "800")
    assert account.household_id is None
    # Pressed again: said once, nobody told twice.
    again = await cadre.press(unbind)
    assert "已经解绑" in cadre.last_text and not [r for r in again if r.chat_id == "800"]
    # The household file no longer offers it; the account's next hardship message reaches no cadre.
    await cadre.press(HOUSEHOLD_FILE.pack(hid))
    assert "已绑定的聊天账号" not in cadre.last_text
    mark = len(villager.replies)
    await villager.send(HARDSHIP + "，医院在催")
    assert not _to(villager, "802", mark) and _to(villager, "800", mark)
