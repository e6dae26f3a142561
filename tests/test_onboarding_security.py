"""Issue 10 #1 and #3: nobody binds as someone else; invite guesses and message floods are limited."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.store.models import Account, RateLimit
from tests.conftest import Chat, World, bind


async def _bound(app: App, user_id: str) -> tuple[int | None, int | None]:
    async with app.core.sessions() as s:
        a = (await s.execute(select(Account).where(Account.external_id == user_id))).scalar_one_or_none()
        return (a.person_id, a.household_id) if a else (None, None)


def _to(chat: Chat, user_id: str) -> list[Reply]:
    return [r for r in chat.replies if isinstance(r, Reply) and r.chat_id == user_id]


def _recent(chat: Chat, n: int = 2) -> str:
    return "".join(r.text or "" for r in _to(chat, chat.user_id)[-n:])


async def test_address_book_card_binds_nobody(app: App, world: World) -> None:
    leader = Chat(app, "700", name="赵队长")
    await bind(app, leader, person_id=world.leader_id)
    attacker = Chat(app, "701")
    for phone in ("13900000000", "13800000004", "13900000001"):
        for own in (None, False):
            await attacker.send("/start")
            await attacker.contact(phone, own=own)
            assert "自己的手机号" in attacker.last_text
    assert await _bound(app, "701") == (None, None)  # bound: 0
    assert await _bound(app, "700") == (world.leader_id, None)  # the real leader keeps the account
    # Even the leader's own card binds by invite code only.
    other = Chat(app, "702")
    await other.contact("13900000000")
    assert "请用邀请码绑定" in other.last_text and await _bound(app, "702") == (None, None)


async def test_bound_household_needs_leaders_confirmation(app: App, world: World) -> None:
    leader = Chat(app, "710", name="赵队长")
    await bind(app, leader, person_id=world.leader_id)
    cadre = Chat(app, "711")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    hid = world.households["陈秀英"]
    first = Chat(app, "712")
    await first.contact("13800000004")
    assert "陈秀英" in first.last_text and await _bound(app, "712") == (None, hid)
    # A new account with the same (own) phone: not taken over silently.
    second = Chat(app, "713")
    replies = await second.contact("13800000004")
    assert await _bound(app, "713") == (None, None) and await _bound(app, "712") == (None, hid)
    assert "工作队长确认" in second.last_text
    assert any("陈秀英" in (r.text or "") and "工作队长" in (r.text or "") for r in replies if r.chat_id == "712")
    [ask] = [r for r in replies if r.chat_id == "710"]
    again = await second.contact("13800000004")  # asking again tells nobody again
    assert [r.chat_id for r in again] == ["713"] and "工作队长确认" in second.last_text
    leader.replies.append(ask)
    ok = leader.button("确认换绑")
    # Only the team leader decides: a cadre's forged press changes nothing.
    await cadre.press(ok)
    assert "没有权限" in cadre.last_text and await _bound(app, "713") == (None, None)
    await leader.press(ok)
    assert await _bound(app, "713") == (None, hid) and await _bound(app, "712") == (None, None)
    assert any("不再绑定" in (r.text or "") for r in _to(leader, "712"))
    assert any("陈秀英" in (r.text or "") for r in _to(leader, "713"))
    told = len(_to(leader, "712"))
    for _ in range(3):
        await leader.press(ok)
        await leader.press(ok.replace(":ok:", ":no:"))
    assert "已经处理过" in leader.last_text and len(_to(leader, "712")) == told


async def test_refused_rebind_changes_nothing(app: App, world: World) -> None:
    leader = Chat(app, "720")
    await bind(app, leader, person_id=world.leader_id)
    first = Chat(app, "721")
    await first.contact("13800000001")
    second = Chat(app, "722")
    replies = await second.contact("13800000001")
    leader.replies.extend(r for r in replies if r.chat_id == "720")
    await leader.press(leader.button("不同意"))
    assert await _bound(app, "722") == (None, None) and await _bound(app, "721") == (None, world.households["张大山"])
    assert any("没有同意" in (r.text or "") for r in _to(leader, "722"))


async def test_invite_guesses_lock_out_growing(app: App, world: World) -> None:
    from bot.services.onboarding import create_invite
    from bot.store.models import Person

    async with app.core.sessions() as s, s.begin():
        code = (await create_invite(s, app.core.clock.now(), person=await s.get(Person, world.cadre_ids[0]))).code
    chat = Chat(app, "730")
    await chat.send("/start")
    for i in range(5):
        await chat.send(f"WRONG{i:03d}")
    assert "1分钟后再试" in "".join(r.text or "" for r in _to(chat, "730")[-3:])
    await chat.send(code)  # the right code is not even looked at while locked
    assert "分钟后再试" in _recent(chat) and await _bound(app, "730") == (None, None)
    app.core.clock.advance(minutes=2)  # type: ignore[attr-defined]
    for i in range(5):
        await chat.send(f"/start WRONG{i:03d}")
    assert "4分钟后再试" in "".join(r.text or "" for r in _to(chat, "730")[-4:])
    app.core.clock.advance(minutes=3)  # type: ignore[attr-defined]
    await chat.send(code)
    assert "分钟后再试" in _recent(chat) and await _bound(app, "730") == (None, None)
    app.core.clock.advance(minutes=2)  # type: ignore[attr-defined]
    await chat.send(f"/start {code}")
    assert await _bound(app, "730") == (world.cadre_ids[0], None)


async def test_message_budget_answers_once_then_quiet(app: App, world: World) -> None:
    budget = app.core.settings.messages_per_minute
    chat = Chat(app, "740")
    answered = []
    for _ in range(budget + 20):
        answered.append(await chat.send("住院能报多少"))
    assert all(answered[:budget])
    assert [r.text for r in answered[budget]] == [app.core.catalogs.get("zh_CN")("security.too_fast")]
    assert not any(answered[budget + 1 :])
    # Another user is not affected; the next minute the first one is answered again.
    assert await Chat(app, "741").send("住院能报多少")
    app.core.clock.advance(minutes=1)  # type: ignore[attr-defined]
    assert "住院" in (await chat.send("住院能报多少"))[-1].text  # type: ignore[operator]
    async with app.core.sessions() as s:
        row = await s.get(RateLimit, "msg:telegram:740")
        assert row is not None and row.count == 1


async def _flood(chats: list[Chat], n: int) -> list[list[Reply]]:
    out = []
    for i in range(n):
        out.append(await chats[i % len(chats)].send("住院能报多少"))
    return out


async def test_message_budget_holds_across_processes_and_restarts(app: App, world: World) -> None:
    """Two cores on one database (two worker processes, or one restarted) share the account's budget."""
    from bot.core.bootstrap import build_core

    other = build_core(app.core.settings, app.core.clock)
    try:
        budget = app.core.settings.messages_per_minute
        chats = [Chat(app, "750"), Chat(other, "750")]
        chats[1]._update = 10_000  # distinct update ids, as Telegram would give
        answered = await _flood(chats, budget + 6)
        assert all(answered[:budget])
        assert [r.text for r in answered[budget]] == [app.core.catalogs.get("zh_CN")("security.too_fast")]
        assert not any(answered[budget + 1 :])
    finally:
        await other.close()


async def test_message_budget_in_redis_shared_by_workers(app: App, world: World) -> None:
    import uuid

    import redis.asyncio as aioredis

    from bot.core.bootstrap import build_core

    url = "redis://127.0.0.1:6379/0"
    probe = aioredis.from_url(url)
    try:
        await probe.ping()
    except Exception:
        import pytest

        pytest.skip("Redis is not reachable")
    finally:
        await probe.aclose()
    settings = app.core.settings.model_copy(update={"redis_url": url})
    a, b = build_core(settings, app.core.clock), build_core(settings, app.core.clock)
    try:
        budget = settings.messages_per_minute
        uid = f"r{uuid.uuid4().hex[:8]}"  # a fresh Redis key for this run
        chats = [Chat(a, uid), Chat(b, uid)]
        chats[1]._update = 10_000
        answered = await _flood(chats, budget + 6)
        assert all(answered[:budget])
        assert [r.text for r in answered[budget]] == [app.core.catalogs.get("zh_CN")("security.too_fast")]
        assert not any(answered[budget + 1 :])
        async with app.core.sessions() as s:  # counted in Redis: the database is not written for it
            assert await s.get(RateLimit, f"msg:telegram:{uid}") is None
    finally:
        await a.close()
        await b.close()
