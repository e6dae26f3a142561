"""/households, /checkin and /problem through the chat driver against the real core and database."""

from __future__ import annotations

from datetime import date, datetime

from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.store.models import CheckIn, Difficulty, Photo, Visit
from tests.cadre.conftest import BytesFiles, count, rows, to
from tests.conftest import Chat, World, bind


async def _add_visit(app: App, household_id: int, cadre_id: int, day: date) -> None:
    async with app.core.sessions() as s, s.begin():
        s.add(
            Visit(
                idem_key=f"seed:{household_id}:{day}",
                household_id=household_id,
                cadre_id=cadre_id,
                visit_date=day,
                kind="routine",
                done="看望",
                created_at=app.core.clock.now(),
            )
        )


async def test_household_list_and_file(app: App, world: World, cadre: Chat, clock: FixedClock) -> None:
    clock.set(datetime(2026, 4, 10, 9, 0))  # inside the spring window
    await _add_visit(app, world.households["张大山"], world.cadre_ids[0], date(2026, 3, 20))
    await _add_visit(app, world.households["张小山"], world.cadre_ids[0], date(2026, 2, 20))
    await cadre.send("/households")
    text = cadre.last_text
    assert "共3户" in text and "陈秀英" not in text
    lines = {ln.split(" · ")[0].split(". ")[1]: ln for ln in text.splitlines() if " · " in ln}
    assert "21天前" in lines["张大山"] and "✅" in lines["张大山"]  # spring visit on 20 March
    assert "⏳" in lines["张小山"]  # last visited before the window
    assert "还没走访过" in lines["刘老四"]
    await cadre.press_text("张大山")
    file = cadre.last_text
    assert "一户一档：张大山" in file and "因病" in file and "缺劳力" in file and "8,100" in file
    assert "发展养殖" in file and "3月20日" in file
    assert cadre.button("记录走访") == f"rm:visit:{world.households['张大山']}"


async def test_forged_household_button_refused(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    await cadre.press(f"hh:o:{world.households['陈秀英']}")  # 李红梅's household
    assert "不能查看" in cadre.last_text and "陈秀英" not in cadre.last_text
    assert any("不能查看" in t for t in cadre.toasts())
    await cadre.press("hh:o:99999999")
    assert "不能查看" in cadre.last_text
    await cadre.press("hh:o:../1")
    assert "不能查看" in cadre.last_text
    await cadre.press(f"hh:c:{world.cadre_ids[1]}:0")  # another cadre's list
    assert "没有权限" in cadre.last_text and "陈秀英" not in cadre.last_text
    # The team leader sees the whole team, by cadre, and may open any of its households.
    await leader.send("/households")
    summary = leader.last_text
    assert "4户，2位干部" in summary and "<b>李红梅</b>：1户" in summary and "<b>王建国</b>：3户" in summary
    assert "超过30天未走访3户" in summary  # paired since 1 March, never visited
    await leader.press_text("李红梅")
    assert "李红梅的帮扶户" in leader.last_text and "陈秀英" in leader.last_text
    await leader.press_text("陈秀英")
    assert "一户一档：陈秀英" in leader.last_text
    await leader.press_text("全部帮扶户")
    assert "<b>李红梅</b>（1户）" in leader.last_text and "<b>王建国</b>（3户）" in leader.last_text


async def test_checkin_once_a_day_and_week_count(
    app: App, world: World, cadre: Chat, clock: FixedClock
) -> None:
    await cadre.send("/checkin")
    await cadre.location(25.0, 102.7)
    assert "本周已驻村1天，还差1天" in cadre.last_text
    await cadre.send("/checkin")
    assert "已经打过卡" in cadre.replies[-2].text  # type: ignore[union-attr]
    assert await count(app, CheckIn) == 1
    clock.advance(days=1)  # Sunday, same ISO week
    await cadre.press("rm:checkin")
    await cadre.send("没有信号，跳过")
    assert "本周已驻村2天，已完成" in cadre.last_text
    clock.advance(days=1)  # Monday: a new week
    await cadre.send("/checkin")
    await cadre.send("随便打的字")
    assert "发送我现在的位置" in cadre.last_text  # re-asked with the hint
    await cadre.location(25.0, 102.7)
    assert "本周已驻村1天" in cadre.last_text
    days = [c.day for c in await rows(app, CheckIn)]
    assert days == [date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)]


async def test_difficulty_reaches_leader_and_resolution_reaches_cadre(
    app: App, world: World, cadre: Chat, leader: Chat, files: BytesFiles
) -> None:
    await cadre.send("/problem")
    await cadre.send("刘老")
    await cadre.press_text("饮水安全")
    await cadre.send("自来水管冻裂，<全家>没水喝")
    await cadre.press_text("紧急")
    await cadre.photo("pipe")
    assert "已记入问题台账" in cadre.last_text
    [d] = await rows(app, Difficulty)
    assert (d.household_id, d.category, d.urgency, d.status) == (
        world.households["刘老四"],
        "water",
        "high",
        "open",
    )
    assert d.team_id == world.team_id
    [photo] = await rows(app, Photo, Photo.difficulty_id == d.id)
    assert photo.local_path and photo.file_id == "pipe"
    [alert] = to(cadre, "209")
    assert "刘老四" in alert and "&lt;全家&gt;" in alert and "紧急" in alert
    # The leader acknowledges, then resolves with a note; each change reaches the cadre.
    leader.replies.extend(r for r in cadre.replies if getattr(r, "chat_id", None) == "209")
    await leader.press_text("已知悉")
    assert "已受理" in "".join(to(leader, "201"))
    await leader.press_text("已解决")
    await leader.send("已联系水务站，明天换管")
    told = "".join(to(leader, "201"))
    assert "已办结" in told and "明天换管" in told
    [d] = await rows(app, Difficulty)
    assert d.status == "resolved" and d.resolution_note == "已联系水务站，明天换管" and d.resolved_at
    # A cadre cannot act on the ledger with a forged button.
    await cadre.press(f"df:res:{d.id}")
    assert "没有权限" in cadre.last_text


async def test_difficulty_assign_and_leader_list(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    other = Chat(app, "202")
    await bind(app, other, person_id=world.cadre_ids[1])
    await cadre.send("/problem")
    await cadre.send("全村")  # typed instead of pressed: understood too
    await cadre.send("基础设施")
    await cadre.send("村道塌方")
    await cadre.press_text("较急")
    await cadre.press_text("不发照片")
    await leader.send("/difficulties")
    assert "待办1条" in leader.last_text and "全村" in leader.last_text
    await leader.press_text("#")
    await leader.press_text("指派")
    await leader.press_text("李红梅")
    assert "已指派给李红梅" in leader.last_text
    assert any("指派给您" in t for t in to(leader, "202"))
    assert any("办理中" in t for t in to(leader, "201"))
    [d] = await rows(app, Difficulty)
    assert d.status == "assigned" and d.assigned_to_id == world.cadre_ids[1] and d.household_id is None
    # Assigning to someone outside the team is refused.
    await leader.press(f"df:to:{d.id}:{world.leader_id + 1000}")
    assert "没有权限" in leader.last_text


async def test_many_households_are_paged(app: App, world: World, cadre: Chat) -> None:
    from bot.store.models import Household, Pairing

    async with app.core.sessions() as s, s.begin():
        for i in range(12):
            h = Household(
                code=f"X{i:02d}", village_id=world.village_id, head_name=f"孙{'一二三四五六七八九十甲乙'[i]}"
            )
            s.add(h)
            await s.flush()
            s.add(Pairing(cadre_id=world.cadre_ids[0], household_id=h.id, start_date=date(2026, 3, 1)))
    await cadre.send("/households")
    assert "共15户，第1/2页" in cadre.last_text and cadre.last_text.count("\n") >= 10
    await cadre.press_text("下一页")
    page2 = cadre.last_text
    assert "第2/2页" in page2 and "11. " in page2 and "15. " in page2
    await cadre.press("hh:p:999")  # a forged page number is clamped, not an error
    assert "第2/2页" in cadre.last_text
    # The /visit picker pages too, and typing narrows it from any page.
    await cadre.send("/visit")
    assert "第1/2页" in cadre.last_text
    await cadre.press_text("下一页")
    assert "第2/2页" in cadre.last_text
    await cadre.send("孙甲")
    assert "走访孙甲家是哪天" in cadre.last_text


async def test_checkin_far_from_the_village_counts_but_is_marked_for_the_leader(
    app: App, world: World, cadre: Chat, leader: Chat
) -> None:
    # The village's recorded point is 25.0, 102.7; 25.1 is about 11 km north of it (the county town, say).
    await cadre.send("/checkin")
    await cadre.location(25.1, 102.7)
    told = "\n".join(r.text or "" for r in cadre.replies[-2:] if isinstance(r, Reply))
    assert "今天已打卡" in told and "离村委会约11.1公里" in told and "工作队长能看到" in told
    assert "本周已驻村1天" in cadre.last_text  # it still counts: GPS can be wrong
    [c] = await rows(app, CheckIn)
    assert c.distance_m is not None and 11_000 < c.distance_m < 11_200
    await leader.send("/week")
    week = leader.last_text
    assert "王建国（1次打卡定位离村较远）" in week and "驻村 1/2 天" in week
    # A check-in at the village point is not marked (the next day, same week).
    app.core.clock.advance(days=1)  # type: ignore[attr-defined]
    await cadre.send("/checkin")
    await cadre.location(25.0005, 102.7)
    assert "离村委会" not in "\n".join(r.text or "" for r in cadre.replies[-2:] if isinstance(r, Reply))
    await leader.send("/week")
    assert "1次打卡定位离村较远" in leader.last_text and "驻村 2/2 天" in leader.last_text
