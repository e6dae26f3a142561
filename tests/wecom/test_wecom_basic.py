"""The WeCom runner over real HTTP against the fake WeCom: URL check, onboarding, forged and replayed
callbacks, token expiry mid-run."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.channels.wecom.runner import WeComRunner
from bot.core.bootstrap import App
from bot.services.onboarding import create_invite
from bot.store.models import Person
from tests.conftest import World
from tests.fakewecom import FakeWeCom


async def invite(app: App, person_id: int) -> str:
    async with app.core.sessions() as s, s.begin():
        return (await create_invite(s, app.core.clock.now(), person=await s.get(Person, person_id))).code


async def test_url_check_and_onboarding(runner: WeComRunner, wecom: FakeWeCom, app: App, world: World) -> None:
    zh = app.core.catalogs.get("zh_CN")
    assert await wecom.verify_url() == (200, "OK")
    code = await invite(app, world.cadre_ids[0])
    assert await wecom.text("wjg", f"/start {code}") == 200
    welcome = await wecom.wait_for_sent("wjg")
    assert welcome.msgtype in ("text", "markdown")
    assert "王建国" in welcome.text and "<" not in welcome.text
    await wecom.text("wjg", "/help")
    helptext = await wecom.wait_for_sent("wjg", lambda m: "/visit" in m.text)
    assert helptext.text.startswith(zh("help.intro.cadre").replace("<b>", "**").replace("</b>", "**")[:4])


async def test_forged_and_replayed(runner: WeComRunner, wecom: FakeWeCom, app: App, world: World,
                                   caplog: pytest.LogCaptureFixture) -> None:
    code = await invite(app, world.cadre_ids[0])
    await wecom.text("wjg", f"/start {code}")
    await wecom.wait_for_sent("wjg")
    # A forged signature: refused with 403, logged without the body, the token or the key.
    caplog.set_level(logging.WARNING)
    xml = wecom.text_xml("wjg", "/help")
    assert await wecom.post(xml, forge=True) == 403
    assert runner.refused == 1
    logged = caplog.text
    assert "refused a WeCom callback" in logged and "bad signature" in logged
    assert wecom.token not in logged and wecom.aes_key not in logged and "/help" not in logged
    # A callback sent twice (WeCom retries when slow): handled once.
    n = len(wecom.sent)
    body, params = wecom.encrypt(xml)
    assert await wecom.post_raw(body, params) == 200
    assert await wecom.post_raw(body, params) == 200
    await wecom.wait_for_sent("wjg", since=n)
    await asyncio.sleep(0.3)
    assert len([m for m in wecom.sent[n:] if m.touser == "wjg"]) == 1
    # A GET with a bad signature: refused too.
    status = await wecom.post_raw("<xml><Encrypt>x</Encrypt></xml>", {"msg_signature": "x", "timestamp": "1",
                                                                      "nonce": "n"})
    assert status == 403


async def test_token_expiry_mid_run(runner: WeComRunner, wecom: FakeWeCom, app: App, world: World) -> None:
    code = await invite(app, world.cadre_ids[0])
    await wecom.text("wjg", f"/start {code}")
    await wecom.wait_for_sent("wjg")
    fetched = wecom.token_fetches
    wecom.expire_tokens()
    n = len(wecom.sent)
    await wecom.text("wjg", "/help")
    reply = await wecom.wait_for_sent("wjg", since=n)
    assert reply.token in wecom.tokens  # sent with the new token, after one refresh
    assert wecom.token_fetches == fetched + 1


async def test_callbacks_answered_at_once_and_failed_replies_parked(runner: WeComRunner, wecom: FakeWeCom, app: App,
                                                                   world: World) -> None:
    import time

    from sqlalchemy import select

    from bot.store.models import Outbox

    code = await invite(app, world.cadre_ids[0])
    await wecom.text("wjg", f"/start {code}")
    await wecom.wait_for_sent("wjg")
    # WeCom slow to take our reply: the callback is still answered at once (WeCom would retry it).
    wecom.fail_next("message/send", delay=1.5)
    n = len(wecom.sent)
    t = time.monotonic()
    assert await wecom.text("wjg", "/cancel") == 200  # one short reply
    assert time.monotonic() - t < 0.5
    await wecom.wait_for_sent("wjg", since=n)
    # WeCom failing (5xx): the reply is parked in the outbox for the sender, on channel wecom.
    wecom.fail_next("message/send", status=502, times=5)
    await wecom.text("wjg", "/cancel")

    async def parked() -> list[Outbox]:
        async with app.core.sessions() as s:
            return list((await s.execute(select(Outbox).where(Outbox.rule == "relay"))).scalars())
    for _ in range(100):
        if rows := await parked():
            break
        await asyncio.sleep(0.05)
    zh = app.core.catalogs.get("zh_CN")
    assert rows and all((r.channel, r.chat_id) == ("wecom", "wjg") for r in rows)
    assert any(r.payload["text"] == zh("core.nothing_to_cancel") for r in rows)
