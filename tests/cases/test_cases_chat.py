"""Villagers' messages that are not policy questions, end to end through the core on both databases:
a case reaches the paired cadre and the team leader and its resolution reaches the villager; a hardship
alerts the cadre at once; chit-chat is never forwarded; out-of-scope matters are passed on only when asked;
a voice message gets the call-back button; /cases lists what waits, and every button is re-checked."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.core.types import FileRef, InlineKeyboard, Reply
from bot.store.models import AuditLog, Case, PolicyQuestion
from tests.conftest import Chat, World, bind

CASE_TEXT = "我家的低保补贴三个月没到账了，是不是弄错了"
HARDSHIP_TEXT = "我老伴上个月住院，报销完还欠三万多，家里实在付不起了，还有别的帮助吗"


async def _cases(app: App) -> list[Case]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(Case).order_by(Case.id))).scalars())


async def _people(app: App, world: World) -> tuple[Chat, Chat, Chat]:
    """A villager of 张大山's household (paired with 王建国), 王建国 himself, and the team leader."""
    villager = Chat(app, "8001")
    await bind(app, villager, household_id=world.households["张大山"])
    cadre = Chat(app, "8002")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    leader = Chat(app, "8003")
    await bind(app, leader, person_id=world.leader_id)
    return villager, cadre, leader


def _to(replies: list[Reply], chat: Chat) -> list[Reply]:
    got = [r for r in replies if r.chat_id == chat.user_id]
    chat.replies.extend(got)  # so chat.button() finds buttons sent to it by someone else's update
    return got


def _texts(replies: list[Reply]) -> str:
    return "\n".join(r.text or "" for r in replies)


async def test_case_reaches_cadre_and_leader_and_resolution_reaches_villager(app: App, world: World) -> None:
    villager, cadre, leader = await _people(app, world)
    out = await villager.send(CASE_TEXT)
    [case] = await _cases(app)
    assert (case.kind, case.status, case.cadre_id, case.team_id) == ("case", "open", world.cadre_ids[0], world.team_id)
    assert case.topic == "welfare.dibao"  # the policy topic rides along when recognisable
    assert f"编号 <b>{case.id}</b>" in villager.last_text and "王建国" in villager.last_text
    to_cadre, to_leader = _to(out, cadre), _to(out, leader)
    assert to_cadre and "没到账" in _texts(to_cadre) and "个人事项" in _texts(to_cadre)
    assert to_leader and "抄送" in _texts(to_leader) and f"编号 {case.id}" in _texts(to_leader)
    # No policy leaflet for a personal matter, and the question log says it was not answered.
    async with app.core.sessions() as s:
        [q] = (await s.execute(select(PolicyQuestion))).scalars().all()
    assert not q.answered and case.question_id == q.id

    # The cadre replies from the button on the message that carried the case.
    await cadre.press(cadre.button("回复"))
    assert "请输入给群众的回复" in cadre.last_text
    # A voice message is no answer: the step is asked again (nothing is stored as a "reply").
    await cadre._go(files=(FileRef(file_id="V9", unique_id="V9u", kind="voice"),), message_id="5")
    assert "请输入给群众的回复" in cadre.last_text
    assert any("听不懂语音" in (r.text or "") for r in cadre.replies[-3:] if isinstance(r, Reply))
    back = await cadre.send("已经问了民政所，下个月一起补发")
    assert "民政所" in _texts(_to(back, villager)) and f"编号 {case.id}" in villager.last_text
    [case] = await _cases(app)
    assert case.status == "replied" and case.first_reply_at is not None
    # The dialog is over: the cadre's next message is handled as if none were open (a policy question).
    await cadre.send("住院能报销多少")
    assert "住院" in cadre.last_text and "回复已经发给群众" not in cadre.last_text
    [case] = await _cases(app)
    assert case.reply_text == "已经问了民政所，下个月一起补发"

    # Resolving tells the villager once; a second press changes nothing and tells nobody.
    out = await cadre.press(f"cs:res:{case.id}")
    assert "已经办结" in _texts(_to(out, villager))
    again = await cadre.press(f"cs:res:{case.id}")
    assert not _to(again, villager) and "已经办结了" in cadre.last_text
    [case] = await _cases(app)
    assert case.status == "resolved" and case.resolved_at is not None


async def test_hardship_alerts_the_cadre_at_once(app: App, world: World) -> None:
    villager, cadre, leader = await _people(app, world)
    out = await villager.send(HARDSHIP_TEXT)
    [case] = await _cases(app)
    assert case.hardship and case.kind == "hardship"
    # In the same update: the alert is among the actions the runner sends right away.
    alert = _texts(_to(out, cadre))
    assert "⚠️" in alert and "付不起" in alert and "13800000001" in alert
    assert _to(out, leader)
    assert "马上告诉帮扶干部王建国" in _texts(_to(out, villager))
    # The monitoring self-report is offered too (issue 14's hook), with one button.
    assert "申报防返贫监测" in str(out[-1].markup)
    # The next message is triaged afresh (nothing was left open).
    await villager.send("住院能报销多少")
    assert "住院" in villager.last_text and len(await _cases(app)) == 1


async def test_chit_chat_is_answered_and_never_forwarded(app: App, world: World) -> None:
    villager, _cadre, _leader = await _people(app, world)
    for text in ("你好", "谢谢", "好的，知道了"):
        out = await villager.send(text)
        assert [r.chat_id for r in out] == [villager.user_id] and out[0].text
        assert "转给" not in villager.last_text and "编号" not in villager.last_text
        assert not any(isinstance(r.markup, InlineKeyboard) for r in out)  # no forward offer either
    assert await _cases(app) == []


async def test_out_of_scope_is_declined_kindly_and_passed_on_only_when_asked(app: App, world: World) -> None:
    villager, cadre, _leader = await _people(app, world)
    out = await villager.send("我们组的路坑坑洼洼好几年了，什么时候修路")
    assert [r.chat_id for r in out] == [villager.user_id] * 2  # the engine's sentence, then the offer
    assert "12345" in _texts(out) and "村委会" in _texts(out) and "转给您的帮扶干部" in villager.last_text
    assert await _cases(app) == []
    button = villager.button("转给干部")
    out = await villager.press(button)
    [case] = await _cases(app)
    assert case.kind == "other" and "修路" in case.text and _to(out, cadre)
    # Pressed again (or redelivered): still one case, and the cadre is not told twice.
    again = await villager.press(button)
    assert not _to(again, cadre) and len(await _cases(app)) == 1 and f"<b>{case.id}</b>" in villager.last_text
    # Another villager cannot pass this question on.
    stranger = Chat(app, "8009")
    await stranger.press(button)
    assert "失效" in stranger.last_text and len(await _cases(app)) == 1


async def test_voice_gets_the_call_back_button(app: App, world: World) -> None:
    villager, cadre, _leader = await _people(app, world)
    voice = (FileRef(file_id="VOICE1", unique_id="VOICE1u", kind="voice", size=5000),)
    out = await villager._go(files=voice, message_id="77")
    assert [r.chat_id for r in out] == [villager.user_id]
    assert "听不懂语音" in villager.last_text
    out = await villager.press_text("回电话")
    [case] = await _cases(app)
    assert case.kind == "callback" and case.cadre_id == world.cadre_ids[0]
    to_cadre = _texts(_to(out, cadre))
    assert "回电话" in to_cadre and "13800000001" in to_cadre
    # A photo says it cannot read pictures; a caption is read like typed text, before that note.
    await villager.photo("PHOTO1")
    assert "看不懂图片" in villager.last_text
    out = await villager._go(files=(FileRef(file_id="PHOTO2", unique_id="P2u"),), text="住院能报销多少",
                             message_id="78")
    assert [r.chat_id for r in out] == [villager.user_id] * 2
    assert "住院" in (out[0].text or "") and "看不懂图片" in (out[1].text or "")
    await villager.send("住院能报销多少")
    assert "住院" in villager.last_text and len(await _cases(app)) == 1


async def test_cases_list_buttons_are_checked_and_idempotent(app: App, world: World) -> None:
    villager, cadre, leader = await _people(app, world)
    await villager.send(CASE_TEXT)
    [case] = await _cases(app)
    # A declined policy question forwarded the old way also waits in /cases.
    await villager.send("那个政策今年还有吗")
    await villager.press_text("转给")
    await cadre.send("/cases")
    listing = cadre.last_text
    assert f"{case.id}｜张大山" in listing and "那个政策今年还有吗" in listing
    answer = cadre.button("回复 张大山")
    assert answer.startswith("pq:reply:")

    other = Chat(app, "8004")
    await bind(app, other, person_id=world.cadre_ids[1])  # 李红梅: not paired with 张大山
    await other.send("/cases")
    assert "没有待处理" in other.last_text
    for data in (f"cs:res:{case.id}", f"cs:open:{case.id}", "cs:res:99999999", f"cs:lead:{case.id}"):
        await other.press(data)
        assert "没有权限" in other.last_text
    await other.press("cs:lead:abc")  # malformed: not even a case id
    assert "失效" in other.last_text
    await villager.press(f"cs:res:{case.id}")
    assert "没有权限" in villager.last_text
    async with app.core.sessions() as s:
        refused = (await s.execute(select(AuditLog).where(AuditLog.action == "case.refused"))).scalars().all()
    assert len(refused) == 5
    [case] = await _cases(app)
    assert case.status == "open"

    # Hand to the leader: the leader gets it with buttons, the villager is told; a second press does nothing.
    out = await cadre.press(f"cs:lead:{case.id}")
    assert "交给您处理" in _texts(_to(out, leader)) and "赵队长" in _texts(_to(out, villager))
    again = await cadre.press(f"cs:lead:{case.id}")
    assert not _to(again, leader) and not _to(again, villager) and "已经在队长" in cadre.last_text
    # The leader sees the team's case with its age, and this month's most-asked topics.
    await leader.send("/cases")
    assert f"{case.id}｜张大山" in leader.last_text and "0 天" in leader.last_text
    assert "本月群众问得最多" in leader.last_text
    assert "农村最低生活保障（低保）：1 次，答上 0 次" in leader.last_text  # the case's topic; "none" not ranked
    out = await leader.press(f"cs:res:{case.id}")
    assert "已经办结" in _texts(_to(out, villager)) and "已办结" in leader.last_text


async def test_staff_typing_a_grievance_get_a_hint_not_a_case(app: App, world: World) -> None:
    _villager, cadre, _leader = await _people(app, world)
    out = await cadre.send(CASE_TEXT)
    assert [r.chat_id for r in out] == [cadre.user_id] and "/problem" in cadre.last_text
    assert await _cases(app) == []


async def test_villager_without_household_and_masked_ids(app: App, world: World) -> None:
    loose = Chat(app, "8010")
    await loose.send(CASE_TEXT)
    assert "还没有绑定" in loose.last_text and await _cases(app) == []
    villager, _cadre, _leader = await _people(app, world)
    await villager.send("我身份证号110101199003074512，补贴一直没到账")
    [case] = await _cases(app)
    assert "110101199003074512" not in case.text and "**************4512" in case.text
    async with app.core.sessions() as s:
        texts = (await s.execute(select(PolicyQuestion.text))).scalars().all()
    assert all("110101199003074512" not in t for t in texts)


async def test_household_without_cadre_goes_to_the_leader(app: App, world: World) -> None:
    from datetime import date

    from sqlalchemy import update

    from bot.store.models import Pairing

    async with app.core.sessions() as s, s.begin():
        await s.execute(update(Pairing).where(Pairing.household_id == world.households["张小山"])
                        .values(end_date=date(2026, 11, 1)))
    villager = Chat(app, "8020")
    await bind(app, villager, household_id=world.households["张小山"])
    leader = Chat(app, "8021")
    await bind(app, leader, person_id=world.leader_id)
    out = await villager.send(CASE_TEXT)
    [case] = await _cases(app)
    assert case.cadre_id is None and case.team_id == world.team_id
    to_leader = _texts(_to(out, leader))
    assert "没到账" in to_leader and "抄送" not in to_leader
    assert "工作队" in villager.last_text
    await leader.press(leader.button("回复"))
    back = await leader.send("这周我来核实")
    assert "这周我来核实" in _texts(_to(back, villager))


async def test_each_person_is_told_in_their_own_language(app: App, world: World) -> None:
    from sqlalchemy import update

    from bot.store.models import Account

    villager, cadre, leader = await _people(app, world)
    async with app.core.sessions() as s, s.begin():
        await s.execute(update(Account).where(Account.chat_id == leader.user_id).values(language="en"))
    out = await villager.send(CASE_TEXT)
    to_leader = _texts(_to(out, leader))
    assert "(copy to the team leader)" in to_leader and "没到账" in to_leader  # the villager's words stay
    assert "个人事项" in _texts(_to(out, cadre)) and "编号" in villager.last_text


async def test_further_lines_in_one_sitting_add_to_the_open_case(app: App, world: World) -> None:
    villager, cadre, leader = await _people(app, world)
    await villager.send(CASE_TEXT)
    out = await villager.send("是不是弄错了？")
    [case] = await _cases(app)
    assert "弄错了" in case.text and f"<b>{case.id}</b>" in villager.last_text and "补充" in villager.last_text
    assert "补充" in _texts(_to(out, cadre)) and _to(out, leader)
    # A hardship revealed later turns the same case into a hardship and alerts the cadre urgently.
    out = await villager.send(HARDSHIP_TEXT)
    [case] = await _cases(app)
    assert case.hardship and "付不起" in case.text
    assert "⚠️" in _texts(_to(out, cadre))


async def test_a_case_nobody_can_be_told_of_is_kept_and_said_so(app: App, world: World) -> None:
    villager = Chat(app, "8030")  # 陈秀英's cadre 李红梅 and the leader have no chat accounts here
    await bind(app, villager, household_id=world.households["陈秀英"])
    out = await villager.send(CASE_TEXT)
    [case] = await _cases(app)
    assert [r.chat_id for r in out] == [villager.user_id]
    assert f"<b>{case.id}</b>" in villager.last_text and "12345" in villager.last_text
    assert case.cadre_id == world.cadre_ids[1] and case.status == "open"
