"""微信客服 end to end: the real KfRunner (WeCom callback URL, same crypto) against the fake WeCom with kf
endpoints (tests/fakekf.py) and the fake Aliyun SMS gateway; the cadre on the WeCom app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.channels.sms.sender import SmsSender
from bot.channels.wechat_kf.runner import KfRunner
from bot.channels.wechat_kf.transport import BUDGET, render
from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.core.types import Button, InlineKeyboard, Reply
from bot.services.onboarding import create_invite
from bot.settings import Settings
from bot.store.models import Account, Household, KfScene, KfWindow, Person, PolicyQuestion, ProcessedUpdate
from tests.conftest import World
from tests.fakekf import FakeKf
from tests.fakesms import FakeSms
from tests.fakewecom import Sent
from tests.wecom.test_wecom_conversation import Member

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
VILLAGER = "wmVILLAGER000001"


@pytest.fixture
async def kf(clock: FixedClock) -> AsyncIterator[FakeKf]:
    async with FakeKf(now=clock.now) as fake:
        yield fake


@pytest.fixture
async def kfrunner(app: App, settings: Settings, kf: FakeKf, sms: SmsSender) -> AsyncIterator[KfRunner]:
    r = KfRunner(app, kf.settings(settings, wechat_kf_open_kfid=kf.open_kfid), sms=sms)
    await r.start()
    kf.callback_url = r.url
    try:
        yield r
    finally:
        await r.stop()


async def login_villager(app: App, kf: FakeKf, runner: KfRunner, household_id: int, user: str = VILLAGER) -> None:
    async with app.core.sessions() as s, s.begin():
        code = (await create_invite(s, app.core.clock.now(), household=await s.get(Household, household_id))).code
    await kf.villager_text(user, f"/start {code}")
    await runner.kf.wait_idle()


async def count(app: App, model: type, *where: object) -> int:
    async with app.core.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


def test_render_fits_the_budget() -> None:
    long = "\n".join(f"第{i}行" + "政策说明" * 60 for i in range(12))  # ~ 9 KB: five text parts
    r = Reply(chat_id="u", text=long, channel="wechat_kf", format="plain",
              markup=InlineKeyboard(((Button("转给干部", "pq:f:1"), Button("没事了", "pq:n:1")),)))
    full = render(r, BUDGET)
    assert len(full) <= BUDGET and full[-1]["msgtype"] == "msgmenu"
    assert [i["click"]["id"] for i in full[-1]["msgmenu"]["list"]] == ["pq:f:1", "pq:n:1"]
    one = render(r, 1)
    assert len(one) == 1 and one[0]["msgtype"] == "msgmenu"
    assert len(one[0]["msgmenu"]["head_content"].encode()) <= 1024 and one[0]["msgmenu"]["head_content"].endswith("…")
    assert render(r, 0) == []


@SQLITE
async def test_question_forwarded_and_answered_in_the_window_then_by_sms_after_48h(
        kfrunner: KfRunner, kf: FakeKf, fakesms: FakeSms, app: App, world: World, clock: FixedClock) -> None:
    await login_villager(app, kf, kfrunner, world.households["张大山"])
    cadre = Member(kf, "wangjianguo")
    await cadre.login(app, world.cadre_ids[0])

    mark = len(kf.kf_sent)
    await kf.villager_text(VILLAGER, "我家的猪生病了不吃食怎么办")
    offer = await kf.wait_kf(VILLAGER, "转给您的帮扶干部", since=mark)
    assert offer.msgtype == "msgmenu"
    forward = next(i["click"]["id"] for i in offer.body["list"] if "转给" in i["click"]["content"])
    wmark = len(kf.sent)
    await kf.villager_text(VILLAGER, "转给干部", menu_id=forward)  # a msgmenu click comes back as text + menu_id
    await cadre.said("猪生病", since=wmark)
    await cadre.press("回复", "")
    await cadre.send("请联系乡兽医站")
    back = await kf.wait_kf(VILLAGER, "兽医站", since=mark)
    assert "王建国" in back.body["content"]
    assert kf.window_violations == []

    # A second question, answered two days later: the window is closed, the answer waits, SMS tells them.
    mark, wmark = len(kf.kf_sent), len(kf.sent)
    await kf.villager_text(VILLAGER, "我家的牛也不吃草了怎么办")

    def forwarded_or_offered() -> Sent | None:
        return next((m for m in kf.kf_sent[mark:] if m.touser == VILLAGER and (
            "转给了帮扶干部" in m.body.get("content", "") or "转给您的帮扶干部" in m.body.get("head_content", ""))), None)

    reply: Sent = await kf.wait_for(forwarded_or_offered)
    if reply.msgtype == "msgmenu":  # offered, not forwarded at once: the villager accepts
        forward = next(i["click"]["id"] for i in reply.body["list"] if "转给" in i["click"]["content"])
        await kf.villager_text(VILLAGER, "转给干部", menu_id=forward)
        await kf.wait_kf(VILLAGER, "转给了帮扶干部", since=mark)
    await cadre.said("牛也不吃草", since=wmark)
    await kfrunner.kf.wait_idle()
    clock.advance(hours=49)
    kmark = len(kf.kf_sent)
    await cadre.press("回复", "")
    await cadre.send("牛的事请找畜牧站")
    w = None
    for _ in range(200):
        async with app.core.sessions() as s:
            w = await s.get(KfWindow, VILLAGER)
        if w is not None and w.sms_told_at is not None:
            break
        await asyncio.sleep(0.025)
    assert w is not None and w.sms_told_at is not None
    assert len(w.held) == 1 and "畜牧站" in w.held[0]["text"]
    [m] = fakesms.to("13800000001")
    assert m.params == {"name": "张大山"}
    assert len(kf.kf_sent) == kmark and kf.window_violations == []
    # The villager writes again: the held answer goes out in the new window.
    await kf.villager_text(VILLAGER, "在吗")
    await kfrunner.kf.wait_idle()
    await kf.wait_kf(VILLAGER, "畜牧站", since=kmark)
    assert kf.window_violations == [] and fakesms.violations == []


@SQLITE
async def test_a_replayed_callback_is_handled_once(kfrunner: KfRunner, kf: FakeKf, app: App, world: World) -> None:
    await login_villager(app, kf, kfrunner, world.households["张大山"])
    kf.add(VILLAGER, "text", {"content": "低保怎么申请"})
    token = "ENCreplay"
    kf.kf_tokens.add(token)
    body, params = kf.encrypt(kf.callback_xml(token))
    for _ in range(3):
        assert await kf.post_raw(body, params) == 200
        await kfrunner.kf.wait_idle()
    assert await count(app, PolicyQuestion, PolicyQuestion.text == "低保怎么申请") == 1
    assert len([m for m in kf.kf_sent if m.touser == VILLAGER]) == 2  # the welcome, one answer


@SQLITE
async def test_sync_resumes_after_a_crash_without_loss_or_duplicates(
        app: App, settings: Settings, kf: FakeKf, sms: SmsSender, world: World) -> None:
    questions = [f"第{i}个问题：医保报销比例是多少" for i in range(12)]
    s1 = kf.settings(settings, wechat_kf_open_kfid=kf.open_kfid)
    first = KfRunner(app, s1, sms=sms)
    first.kf.page_limit = 3
    await first.start()
    kf.callback_url = first.url
    await login_villager(app, kf, first, world.households["张大山"])
    for q in questions:
        kf.add(VILLAGER, "text", {"content": q})
    await kf.notify()
    await kf.wait_for(lambda: True if first.kf.handled >= 5 else None, timeout=10)
    await first.kf.abort()  # the process dies mid-page
    await first.stop()
    assert 0 < await count(app, PolicyQuestion) < len(questions)

    second = KfRunner(app, s1, sms=sms)
    second.kf.page_limit = 3
    await second.start()
    kf.callback_url = second.url
    await kf.notify()
    await second.kf.wait_idle()
    await second.stop()
    async with app.core.sessions() as s:
        texts = sorted((await s.execute(select(PolicyQuestion.text))).scalars())
    assert texts == sorted(questions)  # each exactly once
    assert await count(app, ProcessedUpdate, ProcessedUpdate.channel == "wechat_kf") == len(questions) + 1
    # The window counts from the villager's last message: five answers (and the welcome before), the rest
    # held for their next message; WeChat never had to refuse one.
    assert kf.window_violations == []
    # (A reply the crash cut off is the one at-most-once gap: five or six messages, six or seven held.)
    assert len([m for m in kf.kf_sent if m.touser == VILLAGER]) in (5, 6)
    async with app.core.sessions() as s:
        w = await s.get(KfWindow, VILLAGER)
        assert w is not None and len(w.held) in (len(questions) - 6, len(questions) - 5)


@SQLITE
async def test_door_card_scene_binds_the_household_and_tells_the_cadre(
        kfrunner: KfRunner, kf: FakeKf, app: App, world: World) -> None:
    cadre = Member(kf, "wangjianguo")
    await cadre.login(app, world.cadre_ids[0])
    hh = world.households["张小山"]
    async with app.core.sessions() as s, s.begin():
        s.add(KfScene(scene="s3cretSCENE", village_id=world.village_id, household_id=hh, created_at=app.core.clock.now()))
    mark = len(kf.sent)
    await kf.enter("wmSCANNER", "s3cretSCENE")
    await kfrunner.kf.wait_idle()
    await kf.enter("wmGUESSER", "guessed")  # an unknown scene binds nothing
    await kfrunner.kf.wait_idle()
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account).where(Account.external_id == "wmSCANNER"))).scalar_one()
        assert acc.household_id == hh and acc.person_id is None
        assert (await s.execute(select(Account).where(Account.external_id == "wmGUESSER"))).first() is None
        assert await s.get(Person, world.cadre_ids[0]) is not None
    told = await cadre.said("张小山", since=mark)
    assert "门牌二维码" in told.text
    assert any(m.touser == "welcome" for m in kf.kf_sent)


@SQLITE
async def test_forged_callback_refused_and_expired_token_refreshed(kfrunner: KfRunner, kf: FakeKf, app: App,
                                                                   world: World) -> None:
    await login_villager(app, kf, kfrunner, world.households["张大山"])
    kf.add(VILLAGER, "text", {"content": "低保怎么申请"})
    token = "ENCforged"
    kf.kf_tokens.add(token)
    assert await kf.post(kf.callback_xml(token), forge=True) == 403
    await kfrunner.kf.wait_idle()
    assert kfrunner.refused == 1 and await count(app, PolicyQuestion) == 0
    kf.expire_tokens()  # the access token expires mid-run: refreshed once, the pull goes on
    before = kf.token_fetches
    mark = len(kf.kf_sent)
    assert await kf.notify() == 200
    await kfrunner.kf.wait_idle()
    await kf.wait_kf(VILLAGER, "低保", since=mark)
    assert kf.token_fetches == before + 1 and await count(app, PolicyQuestion) == 1


def test_channel_option() -> None:
    import argparse

    from bot.runners.cli import channel_list

    assert channel_list("wechat_kf,wecom") == "wechat_kf+wecom" == channel_list("wecom, wechat_kf")
    assert channel_list("telegram") == "telegram"
    for bad in ("telegram,wecom", "sms", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            channel_list(bad)


@SQLITE
async def test_photo_text_and_buttons_fit_what_is_left(kfrunner: KfRunner, kf: FakeKf, app: App,
                                                       clock: FixedClock) -> None:
    from bot.core.types import Photo
    from bot.runners.cli import make_runner

    transport = kfrunner.kf.transport
    kf.last_inbound[VILLAGER], kf.sent_since[VILLAGER] = clock.now(), 3
    async with app.core.sessions() as s, s.begin():
        s.add(KfWindow(external_userid=VILLAGER, open_kfid=kf.open_kfid, last_inbound_at=clock.now(), last_msg_time=1,
                       last_msgid="x", sent_since=3, held=[], undeliverable=0))
    reply = Reply(chat_id=VILLAGER, text="您家的走访照片", channel="wechat_kf", photo=Photo(data=b"\x89PNG" + b"0" * 64),
                  markup=InlineKeyboard(((Button("好的", "ok:1"),),)))
    await transport.send(reply)  # two left: the picture, then the text with its button
    image, menu = kf.kf_sent[-2:]
    assert image.msgtype == "image" and image.body["media_id"] in kf.media
    assert menu.msgtype == "msgmenu" and menu.body["head_content"] == "您家的走访照片"
    await transport.send(reply)  # none left: held, nobody to tell (no phone on an unbound account)
    async with app.core.sessions() as s:
        w = await s.get(KfWindow, VILLAGER)
        assert w is not None and len(w.held) == 1 and w.undeliverable == 1
    assert kf.window_violations == []
    runner = make_runner("wechat_kf+wecom", app, kfrunner.settings)
    assert {t.channel for t in runner.transports} >= {"wecom", "wechat_kf"}
    await runner.api.close()


@SQLITE
async def test_voice_and_location_are_handled(kfrunner: KfRunner, kf: FakeKf, app: App, world: World) -> None:
    await login_villager(app, kf, kfrunner, world.households["张大山"])
    mark = len(kf.kf_sent)
    kf.add(VILLAGER, "voice", {"media_id": kf.add_media(b"#!AMR\n" + b"0" * 32, "audio/amr")})
    kf.add(VILLAGER, "location", {"latitude": 25.001, "longitude": 102.701, "name": "石桥村", "address": ""})
    await kf.notify()
    await kfrunner.kf.wait_idle()
    assert await count(app, ProcessedUpdate, ProcessedUpdate.channel == "wechat_kf") == 3
    assert kf.window_violations == [] and len(kf.kf_sent) >= mark
    # The voice message is answered as voice (not "I cannot read pictures"), with the call-back offer.
    voice = await kf.wait_kf(VILLAGER, "听不懂语音", since=mark)
    assert "看不懂图片" not in voice.body.get("content", "") + voice.body.get("head_content", "")
