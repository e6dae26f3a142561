"""The scripted conversations that pass on aiogram and PTB, on WeCom: a /visit with a photo and a
location, a check-in, a difficulty to the leader and back, a villager's question forwarded to the cadre.
The real WeComRunner over HTTP against the fake WeCom (encrypted callbacks in, message/send out)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.channels.wecom.runner import WeComRunner
from bot.core.bootstrap import App
from bot.services.onboarding import create_invite
from bot.settings import Settings
from bot.store.models import Case, CheckIn, Difficulty, Household, Person, Photo, PolicyQuestion, Visit
from tests.cadre.conftest import rows
from tests.conftest import World
from tests.fakewecom import FakeWeCom, Sent

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class Member:
    """One WeCom member's side of the app chat."""

    def __init__(self, wecom: FakeWeCom, userid: str) -> None:
        self.wecom, self.userid = wecom, userid

    def _shows(self, m: Sent, fragment: str) -> bool:
        return fragment in m.text or fragment in str(m.body.get("main_title", {}).get("title", ""))

    async def said(self, fragment: str, since: int = 0) -> Sent:
        return await self.wecom.wait_for_sent(self.userid, lambda m: self._shows(m, fragment), since=since)

    async def send(self, text: str) -> None:
        assert await self.wecom.text(self.userid, text) == 200

    async def press(self, label: str, then: str) -> Sent:
        """Press the newest card button with this label the app showed this member (waiting for the card:
        a card follows its text as a message of its own)."""
        def newest() -> Sent | None:
            for m in reversed(self.wecom.sent):
                if m.touser == self.userid and m.msgtype == "template_card" and any(label in t for t in m.keys):
                    return m
            return None

        card: Sent = await self.wecom.wait_for(newest)
        text = next(t for t in card.keys if label in t)
        mark = len(self.wecom.sent)
        assert await self.wecom.press(self.userid, card, text) == 200
        return await self.said(then, since=mark) if then else card

    async def login(self, app: App, person_id: int | None = None, household_id: int | None = None) -> None:
        async with app.core.sessions() as s, s.begin():
            person = await s.get(Person, person_id) if person_id else None
            household = await s.get(Household, household_id) if household_id else None
            code = (await create_invite(s, app.core.clock.now(), person=person, household=household)).code
        mark = len(self.wecom.sent)
        await self.send(f"/start {code}")
        await self.wecom.wait_for_sent(self.userid, since=mark)


async def test_visit_with_photo_and_location(runner: WeComRunner, wecom: FakeWeCom, app: App, world: World,
                                             settings: Settings) -> None:
    cadre = Member(wecom, "wangjianguo")
    await cadre.login(app, world.cadre_ids[0])
    await cadre.send("/visit")
    await cadre.said("走访的是哪一户")
    await cadre.press("张大山", "是哪天")
    await cadre.press("今天", "什么类型")
    await cadre.press("日常走访", "做了什么")
    await cadre.send("帮助申请<产业>补贴")
    await cadre.said("需求")
    await cadre.press("没有", "要拍照")
    blob = b"\xff\xd8\xff\xe0wecom-photo" * 50
    assert await wecom.image(cadre.userid, blob) == 200
    await cadre.said("第1张")
    await cadre.press("完成", "最后一步")
    assert await wecom.location(cadre.userid, 25.0015, 102.7012, "石桥村") == 200
    summary = await cadre.said("请核对")
    # No Telegram HTML reaches WeCom: the user's text is shown as typed.
    assert "<产业>" in summary.text and "&lt;" not in summary.text and "<b>" not in summary.text
    mark = len(wecom.card_updates)
    await cadre.press("保存", "已保存")
    # The pressed card is updated once (its buttons greyed).
    await wecom.wait_for(lambda: wecom.card_updates[mark:] or None)
    assert wecom.card_updates[mark]["userids"] == [cadre.userid]

    [visit] = await rows(app, Visit)
    assert visit.location_status == "ok" and visit.lat == pytest.approx(25.0015) and visit.done == "帮助申请<产业>补贴"
    [photo] = await rows(app, Photo, Photo.visit_id == visit.id)
    assert photo.sha256 == hashlib.sha256(blob).hexdigest()
    assert (Path(settings.media_dir) / str(photo.local_path)).read_bytes() == blob
    assert [p for p, _ in wecom.requests].count("media/get") == 1


async def test_checkin_and_difficulty_to_the_leader_and_back(runner: WeComRunner, wecom: FakeWeCom, app: App,
                                                             world: World) -> None:
    cadre, leader = Member(wecom, "wangjianguo"), Member(wecom, "zhaoduizhang")
    await cadre.login(app, world.cadre_ids[0])
    await leader.login(app, world.leader_id)

    await cadre.send("/checkin")
    await cadre.said("发送我现在的位置")
    assert await wecom.location(cadre.userid, 25.0, 102.7) == 200
    await cadre.said("本周已驻村1天，还差1天")

    mark = len(wecom.sent)
    await cadre.send("/problem")
    await cadre.said("是哪一户的困难", since=mark)
    await cadre.send("刘老")
    await cadre.said("是哪方面的困难", since=mark)
    await cadre.press("饮水安全", "请说说具体情况")
    await cadre.send("自来水管冻裂，全家没水喝")
    await cadre.said("有多急", since=mark)
    await cadre.press("紧急", "有照片可以发一张")
    await cadre.press("不发照片", "已记入问题台账")
    alert = await leader.said("刘老四", since=mark)
    assert "紧急" in alert.text
    await leader.press("已知悉", "")
    await cadre.said("已受理", since=mark)
    await leader.press("已解决", "")
    await leader.send("已联系水务站，明天换管")
    done = await cadre.said("已办结", since=mark)
    assert "明天换管" in done.text

    assert len(await rows(app, CheckIn)) == 1
    [d] = await rows(app, Difficulty)
    assert d.status == "resolved" and d.resolution_note == "已联系水务站，明天换管"


async def test_villager_question_forwarded_to_the_cadre(runner: WeComRunner, wecom: FakeWeCom, app: App,
                                                        world: World) -> None:
    villager, cadre = Member(wecom, "zhangdashan"), Member(wecom, "wangjianguo")
    await villager.login(app, household_id=world.households["张大山"])
    await cadre.login(app, world.cadre_ids[0])
    mark = len(wecom.sent)
    await villager.send("我家的猪生病了不吃食怎么办")
    await villager.said("不在我能回答的政策里", since=mark)
    await villager.said("转给您的帮扶干部", since=mark)
    await villager.press("转给", "")
    ask = await cadre.said("猪生病", since=mark)
    await cadre.press("回复", "")
    await cadre.send("请联系乡兽医站，电话我晚上发您")
    back = await villager.said("兽医站", since=mark)
    assert "王建国" in back.text
    # Out of scope and passed on at the villager's request: a case for the cadre (bot/handlers/cases.py).
    [q] = [q for q in await rows(app, PolicyQuestion) if "猪" in q.text]
    [case] = await rows(app, Case)
    assert (case.kind, case.question_id, case.cadre_id) == ("other", q.id, world.cadre_ids[0]) and case.reply_text
    assert ask.touser == cadre.userid


async def test_voice_is_answered_and_the_dialog_goes_on(runner: WeComRunner, wecom: FakeWeCom, app: App,
                                                        world: World) -> None:
    """A cadre's voice message: outside a dialog a polite "not understood"; inside /visit the step is asked
    again (the voice is never downloaded), and the next typed answer is taken as the step's input."""
    cadre = Member(wecom, "wangjianguo")
    await cadre.login(app, world.cadre_ids[0])
    mark = len(wecom.sent)
    assert await wecom.voice(cadre.userid, b"#!AMR\n" + b"0" * 64) == 200
    await cadre.said("没看明白", since=mark)
    await cadre.send("/visit")
    await cadre.said("走访的是哪一户")
    await cadre.press("张大山", "是哪天")
    await cadre.press("今天", "什么类型")
    await cadre.press("日常走访", "做了什么")
    mark = len(wecom.sent)
    assert await wecom.voice(cadre.userid, b"#!AMR\n" + b"1" * 64) == 200
    await cadre.said("听不懂语音", since=mark)
    await cadre.said("做了什么", since=mark)
    await cadre.send("送去春耕种子")
    await cadre.said("需求")
    assert [p for p, _ in wecom.requests].count("media/get") == 0
