"""`bangfu wecom check` and `bangfu wecom import-contacts` against the fake WeCom."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.channels.wecom.cli import check, import_contacts
from bot.core.bootstrap import App
from bot.scheduler.tick import load_recipients
from bot.settings import Settings
from bot.store.models import Account, Person
from tests.conftest import World
from tests.fakewecom import FakeWeCom, Member


async def test_check_names_what_is_wrong(wecom: FakeWeCom, settings: Settings,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    good = wecom.settings(settings)
    assert await check(good) == 0
    out = capsys.readouterr().out
    assert "access_token" in out and "帮扶通" in out and wecom.secret not in out
    assert await check(good.model_copy(update={"wecom_secret": SecretStr("wrong")})) == 1
    assert "BANGFU_WECOM_SECRET" in capsys.readouterr().out
    assert await check(good.model_copy(update={"wecom_agent_id": 42})) == 1
    assert "BANGFU_WECOM_AGENT_ID" in capsys.readouterr().out
    assert await check(good.model_copy(update={"wecom_aes_key": SecretStr("short")})) == 1
    assert "EncodingAESKey" in capsys.readouterr().out


async def test_import_contacts_binds_staff_by_exact_phone(wecom: FakeWeCom, app: App, world: World,
                                                         settings: Settings) -> None:
    wecom.members = [
        Member("wangjianguo", "王建国", "+86 139-0000-0001"),  # the cadre, phone written another way
        Member("zhaoduizhang", "赵队长", ""),  # mobile only through user/get
        Member("stranger", "路人", "13911112222"),  # nobody on the roster
        Member("zhangdashan", "张大山", "13800000001"),  # a household's phone: villagers never bind here
    ]
    wecom.members[1].mobile = ""
    only_get = {"zhaoduizhang": "13900000000"}
    orig = wecom._api_user_get

    async def user_get(request, q, token):  # type: ignore[no-untyped-def]
        for m in wecom.members:
            if m.userid in only_get and m.userid == q.get("userid"):
                m.mobile = only_get[m.userid]
        return await orig(request, q, token)

    wecom._api_user_get = user_get  # type: ignore[method-assign]
    s = wecom.settings(settings)
    assert await import_contacts(s, prefer=True) == 0
    assert await import_contacts(s) == 0  # again: nothing changes
    async with app.core.sessions() as sess:
        accounts = {a.external_id: a.person_id for a in (await sess.execute(
            select(Account).where(Account.channel == "wecom"))).scalars()}
        cadre = await sess.get(Person, world.cadre_ids[0])
        assert cadre is not None and cadre.preferred_channel == "wecom"
    assert accounts == {"wangjianguo": world.cadre_ids[0], "zhaoduizhang": world.leader_id}


async def test_reminders_go_to_the_preferred_channel(app: App, world: World) -> None:
    now = app.core.clock.now()
    async with app.core.sessions() as s, s.begin():
        for channel, ext in (("telegram", "777"), ("wecom", "wangjianguo")):
            s.add(Account(channel=channel, external_id=ext, chat_id=ext, person_id=world.cadre_ids[0], created_at=now))
    async with app.core.sessions() as s:
        assert sorted(r.channel for r in (await load_recipients(s))[world.cadre_ids[0]]) == ["telegram", "wecom"]
    async with app.core.sessions() as s, s.begin():
        person = await s.get(Person, world.cadre_ids[0])
        assert person is not None
        person.preferred_channel = "wecom"
    async with app.core.sessions() as s:
        assert [r.channel for r in (await load_recipients(s))[world.cadre_ids[0]]] == ["wecom"]
