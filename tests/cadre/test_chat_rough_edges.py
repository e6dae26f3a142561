"""Issue 11's rough edges in the cadre and leader chat, through the core (both databases): the
household file's phone and member details, overdue marks in /households, distances, stray input,
difficulty history, nudges and multi-kind visits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.settings import Settings
from bot.store.models import HouseholdMember, Visit
from tests.conftest import Chat, World, bind, seed_world


async def add_visit(app: App, world: World, head: str, day: date, cadre: int | None = None) -> None:
    async with app.core.sessions() as s, s.begin():
        s.add(
            Visit(
                idem_key=f"t-{head}-{day}",
                household_id=world.households[head],
                cadre_id=cadre or world.cadre_ids[0],
                visit_date=day,
                kind="routine",
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )


def file_lines(text: str) -> dict[str, str]:
    """List lines by head name ("3. 张大山 · …")."""
    return {ln.split(" · ")[0].split(". ")[1]: ln for ln in text.splitlines() if " · " in ln and ". " in ln}


# ------------------------------------------------------------------ the household file
async def test_household_file_shows_phone_as_plain_digits(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/households")
    await cadre.press_text("张大山")
    file = cadre.last_text
    # Telegram links a phone number written as plain digits (tap to call); no tel: anchor, no spaces.
    assert "电话：13800000001" in file and "tel:" not in file
    await cadre.press_text("返回")
    await cadre.press_text("刘老四")  # no phone on the roster
    assert "电话：未登记" in cadre.last_text


async def test_member_details_follow_the_readers_language(app: App, world: World) -> None:
    async with app.core.sessions() as s, s.begin():
        hid = world.households["张大山"]
        s.add_all(
            [
                HouseholdMember(
                    household_id=hid,
                    name="张大山",
                    relation="户主",
                    birth_year=1968,
                    health="健康",
                    education="初中",
                    occupation="务农",
                ),
                HouseholdMember(
                    household_id=hid,
                    name="李桂兰",
                    relation="配偶",
                    birth_year=1970,
                    health="长期慢性病",
                    education="小学",
                    occupation="务工",
                ),
                HouseholdMember(
                    household_id=hid,
                    name="张小明",
                    relation="长子",
                    birth_year=2008,
                    health="健康",
                    education="在校生",
                    occupation="放牛娃",
                ),
            ]
        )
    zh = Chat(app, "201", name="王建国")
    await bind(app, zh, person_id=world.cadre_ids[0])
    await zh.press(f"hh:o:{hid}")
    assert "李桂兰（配偶，1970年生，长期慢性病，小学，务工）" in zh.last_text
    en = Chat(app, "202", name="Wang", language_code="en")
    await bind(app, en, person_id=world.cadre_ids[0])
    await en.press(f"hh:o:{hid}")
    text = en.last_text
    assert "李桂兰 (spouse, born 1970, chronic illness, primary school, works away from home)" in text
    assert "张大山 (head of household, born 1968, healthy, junior high school, farming)" in text
    # A word no table knows is shown as the roster wrote it, not dropped.
    assert "张小明 (eldest son, born 2008, healthy, in school, 放牛娃)" in text
    assert "Lifted out of poverty" in text


async def test_no_pre_2021_status_is_offered_for_new_records() -> None:
    from bot.io import validate
    from bot.io.roster import HOUSEHOLD_DEFAULTS
    from bot.io.template import CHOICES
    from bot.store.enums import HOUSEHOLD_STATUS_ZH, HouseholdStatus

    assert "未脱贫" not in CHOICES["status"] and set(CHOICES["status"]) == {"脱贫户", "监测户", "一般户"}
    assert HouseholdStatus.POOR not in HOUSEHOLD_STATUS_ZH
    assert HOUSEHOLD_DEFAULTS["status"] == "lifted"
    assert validate.status("一般户") == "general" and validate.status("脱贫户") == "lifted"
    assert validate.status("未脱贫") == "poor"  # an old roster still imports
    with pytest.raises(validate.BadValue) as e:
        validate.status("特困")
    assert e.value.args_["allowed"] == "脱贫户、监测户、一般户"  # what the error offers instead


# ------------------------------------------------------------------ overdue marks in /households
@pytest.fixture
async def app10(settings: Settings, clock: FixedClock, tmp_path: Path) -> AsyncIterator[App]:
    """The core with a county rules file whose visit cadence is 10 days (not the shipped 30)."""
    rules = tmp_path / "county.toml"
    rules.write_text("[visits]\ncadence_days = 10\n", encoding="utf-8")
    app = build_core(settings.model_copy(update={"rules_file": rules}), clock)
    yield app
    await app.close()


async def test_households_marks_what_overdue_lists_with_the_county_cadence(app10: App) -> None:
    world = await seed_world(app10)
    c1 = world.cadre_ids[0]
    await add_visit(app10, world, "张大山", date(2026, 11, 20), c1)  # 8 days ago: within 10 days
    await add_visit(app10, world, "张小山", date(2026, 11, 13), c1)  # 15 days ago: 5 days overdue
    cadre = Chat(app10, "201")
    await bind(app10, cadre, person_id=c1)
    await cadre.send("/households")
    lines = file_lines(cadre.last_text)
    assert "超期" not in lines["张大山"]
    assert "⚠️超期5天" in lines["张小山"]
    assert "⚠️超期262天" in lines["刘老四"]  # never visited: counted from the pairing's start, 1 March
    leader = Chat(app10, "209")
    await bind(app10, leader, person_id=world.leader_id)
    await leader.send("/overdue")
    overdue = leader.last_text
    assert "张小山" in overdue and "刘老四" in overdue and "张大山" not in overdue
    assert "超期 5 天" in overdue and "超期 262 天" in overdue
    await leader.send("/households")
    assert "超过10天未走访2户" in leader.last_text


# ------------------------------------------------------------------ /overdue nudges
async def test_overdue_nudges_a_cadre_once_a_day(app: App, world: World, clock: FixedClock) -> None:
    from tests.cadre.conftest import to

    c1 = world.cadre_ids[0]
    await add_visit(app, world, "张大山", date(2026, 11, 20), c1)
    cadre = Chat(app, "201", name="王建国")
    await bind(app, cadre, person_id=c1)
    leader = Chat(app, "209", name="赵队长")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/overdue")
    assert "提醒" in leader.last_text
    await leader.press_text("提醒王建国（2户）")
    [reminder] = to(leader, "201")
    assert "王建国同志，您好！赵队长提醒您" in reminder and "张小山" in reminder and "刘老四" in reminder
    assert "张大山" not in reminder and "超过30天" in reminder
    assert "已提醒王建国（2户）" in leader.last_text
    # The reminder carries a "log a visit" button per household.
    sent = [a for a in leader.replies if getattr(a, "chat_id", None) == "201"]
    assert {b.data for row in sent[0].markup.rows for b in row} == {  # type: ignore[union-attr]
        f"rm:visit:{world.households['张小山']}",
        f"rm:visit:{world.households['刘老四']}",
    }
    # Pressed again (or from an old /overdue): told it was done today; nothing more reaches the cadre.
    await leader.press_text("提醒王建国（2户）")
    assert "今天已经提醒过王建国了" in leader.last_text and len(to(leader, "201")) == 1
    await leader.send("/overdue")
    await leader.press_text("提醒王建国")
    assert len(to(leader, "201")) == 1
    # The next local day the leader may nudge again.
    clock.set(datetime(2026, 11, 29, 7, 0))  # 23:00 UTC the day before: local days count
    await leader.press_text("提醒王建国")
    assert len(to(leader, "201")) == 2
    # 李红梅 has no chat account: the leader is told to call.
    await leader.press_text("提醒李红梅")
    assert "发不出去" in leader.last_text


async def test_nudge_refuses_a_cadre_outside_the_team_and_cadres(app: App, world: World) -> None:
    from bot.store.models import Person

    async with app.core.sessions() as s, s.begin():
        other = Person(name="外村干部", phone="13900000099", role="cadre")
        s.add(other)
        await s.flush()
        other_id = other.id
    leader = Chat(app, "209")
    await bind(app, leader, person_id=world.leader_id)
    await leader.press(f"od:n:{other_id}")
    assert "没有权限" in leader.last_text
    await leader.press("od:n:abc")
    assert "没有权限" in leader.last_text
    cadre = Chat(app, "201")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.press(f"od:n:{world.cadre_ids[1]}")
    assert "没有权限" in cadre.last_text


# ------------------------------------------------------------------ stray input
async def test_lone_number_or_ok_after_a_dialog_is_not_a_policy_question(app: App, world: World) -> None:
    from bot.store.models import PolicyQuestion
    from tests.cadre.conftest import count

    cadre = Chat(app, "201")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.send("/checkin")
    await cadre.send("没有信号，跳过")
    assert "本周已驻村" in cadre.last_text  # the dialog is over
    for typed in ("1", "好", "OK", "１。"):
        replies = await cadre.send(typed)
        assert len(replies) == 1 and "/visit" in replies[0].text and "/help" in replies[0].text
        assert replies[0].markup is None  # no offer to forward it to anyone
    villager = Chat(app, "301")
    await bind(app, villager, household_id=world.villager_household)
    replies = await villager.send("好的")
    assert len(replies) == 1 and "直接打字问我" in replies[0].text and replies[0].markup is None
    assert await count(app, PolicyQuestion) == 0  # nothing logged as a question, nothing to forward
    # A real question still goes to the parser.
    await villager.send("住院能报多少")
    assert await count(app, PolicyQuestion) == 1


# ------------------------------------------------------------------ visits of several kinds
async def test_visit_of_several_kinds_is_saved_shown_and_exported(
    app: App, world: World, cadre: Chat
) -> None:
    import io

    import openpyxl

    from bot.io.export import export_workbook
    from tests.cadre.conftest import rows

    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    assert "已选：日常走访" in cadre.last_text and cadre.button("✅ 日常走访")
    await cadre.press_text("政策宣讲")
    await cadre.press_text("慰问")
    await cadre.press_text("✅ 慰问")  # pressed again: not chosen after all
    assert "已选：日常走访、政策宣讲" in cadre.last_text
    replies = await cadre.send("3")  # a number where buttons are expected: re-asked, not taken as text
    assert "“3”不是这里的选项" in replies[0].text and "已选：日常走访、政策宣讲" in cadre.last_text
    await cadre.press_text("选好了")
    assert "做了什么" in cadre.last_text
    await cadre.send("讲解医保政策，了解收入")
    await cadre.press_text("没有")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    assert "类型：日常走访、政策宣讲" in cadre.last_text
    await cadre.press_text("改类型")  # from the summary: toggles keep what was chosen, then back to the card
    assert "已选：日常走访、政策宣讲" in cadre.last_text and "直接写" not in cadre.last_text
    await cadre.press_text("慰问")
    await cadre.press_text("✅ 慰问")
    await cadre.press_text("选好了")
    assert "请核对" in cadre.last_text and "类型：日常走访、政策宣讲" in cadre.last_text
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.kinds == ["routine", "policy"] and visit.kind == "routine"
    await cadre.press(f"hh:o:{world.households['张大山']}")
    assert "日常走访、政策宣讲：讲解医保政策" in cadre.last_text
    async with app.core.sessions() as s:
        data = await export_workbook(s, "visits", date(2026, 11, 1), date(2026, 11, 30), world.team_id)
    sheet = openpyxl.load_workbook(io.BytesIO(data))["走访记录"]
    header = [c.value for c in sheet[1]]
    assert sheet.cell(2, header.index("走访类型") + 1).value == "日常走访、政策宣讲"


async def test_seasonal_kind_among_several_counts_for_the_window(
    app: App, world: World, cadre: Chat, clock: FixedClock
) -> None:
    from tests.cadre.conftest import rows

    clock.set(datetime(2026, 4, 10, 9, 0))  # inside the spring window
    await cadre.send("/visit 刘老四")
    await cadre.press_text("今天")
    await cadre.press_text("政策宣讲")
    await cadre.press_text("春耕走访")
    await cadre.send("讲解产业补贴")  # typed once kinds are chosen: taken as what was done
    assert "需求" in cadre.last_text
    await cadre.send("/back")
    assert "做了什么" in cadre.last_text  # back goes to the step the text answered
    await cadre.send("/back")
    assert "已选：春耕走访、政策宣讲" in cadre.last_text
    await cadre.press_text("选好了")
    await cadre.send("讲解产业补贴，查看春耕")
    await cadre.press_text("没有")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.kind == "spring" and visit.kinds == ["spring", "policy"]
    await cadre.send("/households")
    assert "✅" in file_lines(cadre.last_text)["刘老四"]  # counted for the spring window


# ------------------------------------------------------------------ distances
async def test_distances_read_in_metres_or_kilometres(app: App, world: World, clock: FixedClock) -> None:
    from bot.services.texts import distance_text

    cadre = Chat(app, "201")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    told: list[str] = []
    # The village's point is 25.0, 102.7: about 788 km and 3 km away, on two days (both marked far).
    for day, (lat, lon) in enumerate(((32.087, 102.7), (25.027, 102.7))):
        clock.set(datetime(2026, 11, 23 + day, 10, 0))
        await cadre.send("/checkin")
        await cadre.location(lat, lon)
        told.append("\n".join(r.text or "" for r in cadre.replies[-2:] if getattr(r, "text", None)))
    assert "约788公里" in told[0] and "788.0" not in told[0]
    assert "约3公里" in told[1] and "3.0公里" not in told[1]
    # The visit summary: 1.2 km from the household's point, then (location changed) 350 m.
    clock.set(datetime(2026, 11, 28, 10, 0))
    await cadre.send("/visit 张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.press_text("选好了")
    await cadre.send("看望")
    await cadre.press_text("没有")
    await cadre.press_text("不拍照")
    await cadre.location(25.001 + 0.0108, 102.701)
    assert "1.2公里" in cadre.last_text
    await cadre.press_text("改位置")
    await cadre.location(25.001 + 0.00315, 102.701)
    assert "350米" in cadre.last_text
    t = app.core.catalogs.get("en")
    assert [distance_text(t, m) for m in (999.6, 1000, 99_960, 788_012.3)] == [
        "1 km",
        "1 km",
        "100 km",
        "788 km",
    ]


async def test_a_number_where_words_or_buttons_are_expected_is_reasked(
    app: App, world: World, cadre: Chat
) -> None:
    from bot.store.models import Difficulty
    from tests.cadre.conftest import count

    await cadre.send("/visit 张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.press_text("选好了")
    replies = await cadre.send("1")  # at "what was done"
    assert "只有一个数字" in replies[0].text and "做了什么" in cadre.last_text
    await cadre.send("看望老人")
    replies = await cadre.send("2")  # at "needs", which has a 没有 button
    assert "只有一个数字" in replies[0].text and "需求" in cadre.last_text
    await cadre.press_text("没有")
    await cadre.send("/cancel")
    await cadre.send("/problem")
    replies = await cadre.send("2")  # at the household buttons
    assert "“2”不是这里的选项" in replies[0].text
    await cadre.press_text("张大山")
    replies = await cadre.send("1")  # at the category buttons
    assert "请点" in replies[0].text
    await cadre.press_text("看病就医")
    replies = await cadre.send("３")  # a full-width digit as the description
    assert "只有一个数字" in replies[0].text
    await cadre.send("/cancel")
    assert await count(app, Difficulty) == 0


# ------------------------------------------------------------------ /difficulties
async def _difficulties(app: App, world: World, n_open: int, n_resolved: int) -> list[int]:
    from datetime import timedelta

    from bot.store.models import Difficulty

    ids = []
    async with app.core.sessions() as s, s.begin():
        for i in range(n_open + n_resolved):
            done = i >= n_open
            d = Difficulty(
                idem_key=f"d{i}", reporter_id=world.cadre_ids[0], team_id=world.team_id,
                household_id=world.households["张大山"], village_id=world.village_id, category="water",
                description=f"困难{i}", urgency="normal", status="resolved" if done else "open",
                created_at=datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=i),
                resolved_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i) if done else None,
                resolution_note="已解决" if done else None,
            )  # fmt: skip
            s.add(d)
            await s.flush()
            ids.append(d.id)
    return ids


async def test_difficulties_show_resolved_history_paged(app: App, world: World) -> None:
    ids = await _difficulties(app, world, n_open=2, n_resolved=12)
    leader = Chat(app, "209")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/difficulties")
    assert "待办2条" in leader.last_text and "已办结" not in leader.last_text
    await leader.press_text("看已办结的")
    page1 = leader.last_text
    assert "已办结12条" in page1 and "第1/2页" in page1
    # Most recently resolved first: the last one made (resolved 12 Nov) heads the list.
    assert page1.splitlines()[1].startswith(f"#{ids[-1]} ") and f"#{ids[4]} " in page1
    assert f"#{ids[3]} " not in page1  # on the second page
    await leader.press_text("下一页")
    page2 = leader.last_text
    assert "第2/2页" in page2 and f"#{ids[3]} " in page2 and f"#{ids[2]} " in page2
    await leader.press_text(f"#{ids[2]} ")
    assert "已解决" in leader.last_text  # the resolved card, with its note, no action buttons
    await leader.press_text("看待办的")
    assert "待办2条" in leader.last_text
    await leader.press("dl:r:99")  # an old page that no longer exists: the last one instead
    assert "第2/2页" in leader.last_text
    cadre = Chat(app, "201")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.press("dl:r:0")
    assert "没有权限" in cadre.last_text


async def test_assignee_picker_has_back_and_cancel_and_one_notice_for_reporter_assignee(
    app: App, world: World
) -> None:
    from bot.store.models import Difficulty
    from tests.cadre.conftest import rows, to

    [did] = await _difficulties(app, world, n_open=1, n_resolved=0)
    cadre = Chat(app, "201")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    leader = Chat(app, "209")
    await bind(app, leader, person_id=world.leader_id)
    await leader.press(f"df:open:{did}")
    await leader.press_text("指派")
    assert "指派给谁" in leader.last_text
    await leader.press_text("取消")
    assert "先不指派" in leader.last_text
    await leader.press_text("指派")
    await leader.press_text("上一步")
    assert f"#{did}" in leader.last_text and leader.button("指派")  # back to the card and its buttons
    await leader.press_text("指派")
    await leader.press_text("王建国")  # the reporter himself
    notices = to(leader, "201")
    assert len(notices) == 1 and "指派给您" in notices[0]
    [d] = await rows(app, Difficulty)
    assert d.assigned_to_id == world.cadre_ids[0]


async def test_difficulty_photo_shows_in_its_detail(app: App, world: World) -> None:
    from bot.core.types import Reply
    from tests.cadre.conftest import BytesFiles

    app.core.files = BytesFiles()
    cadre = Chat(app, "201")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.send("/problem")
    await cadre.press_text("张大山")
    await cadre.press_text("饮水安全")
    await cadre.send("水管冻裂了")
    await cadre.press_text("紧急")
    await cadre.photo("pipe-photo")
    leader = Chat(app, "209")
    await bind(app, leader, person_id=world.leader_id)
    await leader.send("/difficulties")
    replies = await leader.press_text("#")
    assert replies[0].photo is not None and replies[0].photo.file_id == "pipe-photo"
    assert "反映人拍的照片" in (replies[0].text or "")
    assert isinstance(replies[-1], Reply) and "水管冻裂了" in (replies[-1].text or "")
    assert leader.button("指派")  # the card with its buttons comes last


def test_main_kind_and_drafts_from_before_kinds_were_a_list() -> None:
    from bot.core.dialog import State
    from bot.dialogs.visit import _chosen_kinds
    from bot.services.visits import Season, main_kind, normalize_kinds
    from bot.store.models import DialogState

    spring = Season("spring", date(2026, 3, 10), date(2026, 4, 30))
    assert normalize_kinds(["policy", "routine", "policy"]) == ["routine", "policy"]
    assert main_kind(["policy", "spring"], spring) == "spring"
    assert main_kind(["policy", "autumn"], spring) == "autumn"  # another seasonal kind still leads
    assert main_kind(["policy", "condolence"], None) == "condolence"  # VisitKind order: 慰问 before 宣讲
    assert main_kind([], None) == "routine"
    old = State(DialogState(data={"kind": "condolence"}))
    assert _chosen_kinds(old) == ["condolence"]  # a draft parked before the upgrade keeps its kind
    assert _chosen_kinds(State(DialogState(data={"kinds": ["routine", "bogus"]}))) == ["routine"]
