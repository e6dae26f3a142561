"""/visit through the chat driver against the real core and database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.core.bootstrap import App, build_core
from bot.settings import Settings
from bot.store.models import DialogState, Photo, Visit
from tests.cadre.conftest import BytesFiles, count, log_visit_until_summary, rows, to
from tests.conftest import Chat, World, bind


async def test_visit_with_two_photos_and_location(
    app: App, world: World, cadre: Chat, leader: Chat, files: BytesFiles, settings: Settings
) -> None:
    villager = Chat(app, "301")
    await bind(app, villager, household_id=world.households["张大山"])
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.send("了解务工收入，讲了<医保>政策")
    await cadre.send("想学养牛技术")
    await cadre.photo("ph-1")
    assert "第1张" in cadre.last_text
    await cadre.photo("ph-2")
    assert "第2张" in cadre.last_text
    await cadre.press_text("完成")
    await cadre.location(25.0020, 102.7010)  # ~110 m from the household's point
    summary = cadre.last_text
    assert "照片：2张" in summary and "已定位" in summary
    assert "&lt;医保&gt;" in summary and "<医保>" not in summary  # user text escaped in HTML mode
    await cadre.press_text("保存")
    assert "已保存" in cadre.last_text

    [visit] = await rows(app, Visit)
    assert (visit.household_id, visit.visit_date, visit.kind) == (
        world.households["张大山"],
        date(2026, 11, 28),
        "routine",
    )
    assert visit.needs == "想学养牛技术" and visit.location_status == "ok" and not visit.flagged
    assert visit.distance_m is not None and 50 < visit.distance_m < 300
    photos = await rows(app, Photo, Photo.visit_id == visit.id)
    assert [p.file_id for p in photos] == ["ph-1", "ph-2"]
    assert files.downloaded == ["ph-1", "ph-2"]
    for p in photos:
        stored = Path(settings.media_dir) / str(p.local_path)
        assert stored.read_bytes() == await files.download(p.file_id)
        import hashlib

        assert p.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    # The bound villager is asked, politely, about today's visit by 王同志; the leader hears nothing.
    assert any("今天王同志来您家走访了吗" in t for t in to(cadre, "301"))
    assert to(cadre, "209") == []
    assert await count(app, DialogState) == 0


async def test_photo_without_file_source_keeps_file_id(app: App, world: World, cadre: Chat) -> None:
    app.core.files = None
    await cadre.send("/visit")
    await cadre.press_text("刘老四")
    await cadre.press_text("昨天")
    await cadre.press_text("政策宣讲")
    await cadre.photo("early-id")  # sent before its step: kept, and the question asked again
    assert "照片收到了" in cadre.replies[-2].text and "做了什么" in cadre.last_text  # type: ignore[union-attr]
    await cadre.send("讲解低保政策")
    await cadre.press_text("没有")
    assert "已收到1张" in cadre.last_text
    await cadre.photo("only-id")
    await cadre.press_text("完成")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.location_status == "none" and visit.visit_date == date(2026, 11, 27)
    photos = await rows(app, Photo)
    assert [p.file_id for p in photos] == ["early-id", "only-id"]
    assert all(p.local_path is None and p.sha256 is None for p in photos)


async def test_far_location_is_kept_flagged_and_leader_told(
    app: App, world: World, cadre: Chat, leader: Chat
) -> None:
    await leader.send("/lang")
    await leader.press("lang:en")  # the leader reads English: the notice is rendered for them
    await log_visit_until_summary(cadre, "张小山")
    await cadre.press_text("改位置")
    await cadre.location(25.05, 102.75)  # ~7 km away
    assert "工作队长核实" in cadre.last_text
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.location_status == "far" and visit.flagged and (visit.distance_m or 0) > 5000
    told = to(cadre, "209")
    assert len(told) == 1 and "张小山" in told[0] and "王建国" in told[0]
    assert "Please check" in told[0] and "km" in told[0] and "28/11" in told[0]


async def test_date_typed_as_qiantian(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/visit 大山")  # the household named with the command
    assert "走访张大山家是哪天" in cadre.last_text
    await cadre.send("/cancel")
    await log_visit_until_summary(cadre, date_text="前天")
    assert "11月26日" in cadre.last_text
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.visit_date == date(2026, 11, 26)


async def test_invalid_dates_reasked_keeping_the_household(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/visit")
    await cadre.send("山")
    assert "2户" in cadre.replies[-2].text  # type: ignore[union-attr]  # ambiguous: asked again
    await cadre.send("陈秀英")  # paired with another cadre: not offered
    assert "没有名字含" in cadre.replies[-2].text  # type: ignore[union-attr]
    await cadre.send("小山")  # part of the head's name: one match
    assert "张小山" in cadre.last_text
    await cadre.send("下个月吧")
    assert "没看懂" in cadre.replies[-2].text  # type: ignore[union-attr]
    assert "张小山" in cadre.last_text  # asked again, household kept
    await cadre.send("12月20日")
    assert "还没到" in "".join(r.text or "" for r in cadre.replies[-3:] if hasattr(r, "text"))
    await cadre.send("2026年2月1日")  # before the pairing began on 1 March
    assert "早于" in "".join(r.text or "" for r in cadre.replies[-3:] if hasattr(r, "text"))
    await cadre.send("2026-03-05")
    await cadre.press_text("春耕走访")
    await cadre.send("x" * (app.core.settings.max_text_length + 1))
    assert "太长" in "".join(r.text or "" for r in cadre.replies[-3:] if hasattr(r, "text"))
    await cadre.send("x" * app.core.settings.max_text_length)  # exactly the limit is accepted, uncut
    await cadre.press_text("没有")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.household_id == world.households["张小山"] and visit.visit_date == date(2026, 3, 5)
    assert visit.kind == "spring" and len(visit.done) == app.core.settings.max_text_length


async def test_double_press_on_save_makes_one_visit(app: App, world: World, cadre: Chat) -> None:
    from bot.core.types import Incoming, User

    await log_visit_until_summary(cadre)
    save = cadre.button("保存")
    # The same update delivered twice (a runner retry): the second delivery does nothing.
    inc = Incoming(
        channel="telegram",
        user=User("201", "王建国"),
        chat_id="201",
        update_id="redelivered-1",
        callback_data=save,
        callback_id="cbx",
    )
    first = await app.core.handle(inc)
    again = await app.core.handle(inc)
    assert first.actions and again.actions == []
    # A second press of the same button: a friendly "already saved", still one visit.
    await cadre.press(save)
    assert "已经保存过了" in cadre.last_text
    assert await count(app, Visit) == 1


async def test_edit_from_summary_returns_to_summary(app: App, world: World, cadre: Chat) -> None:
    await log_visit_until_summary(cadre, "张大山")
    await cadre.press_text("改户")
    await cadre.press_text("刘老四")
    assert "户主：刘老四" in cadre.last_text and "了解务工收入" in cadre.last_text
    await cadre.press_text("改日期")
    await cadre.send("大前天")
    assert "11月25日" in cadre.last_text and "请核对" in cadre.last_text
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.household_id == world.households["刘老四"] and visit.visit_date == date(2026, 11, 25)


async def test_restart_mid_visit_continues_with_data(
    app: App, world: World, cadre: Chat, settings: Settings, clock: object
) -> None:
    await cadre.send("/visit")
    await cadre.press_text("刘老四")
    await cadre.send("昨天")
    await cadre.press_text("慰问")
    await app.close()
    app2 = build_core(settings, clock)  # type: ignore[arg-type]
    try:
        cadre.app = app2
        await cadre.send("送去米和油")
        assert "需求" in cadre.last_text
        await cadre.press_text("没有")
        await cadre.press_text("不拍照")
        await cadre.send("没有信号，跳过")
        assert "刘老四" in cadre.last_text and "慰问" in cadre.last_text and "送去米和油" in cadre.last_text
        await cadre.press_text("保存")
        [visit] = await rows(app2, Visit)
        assert (visit.kind, visit.visit_date, visit.done) == ("condolence", date(2026, 11, 27), "送去米和油")
    finally:
        await app2.close()


async def test_reminders_park_and_resume_drafts(app: App, world: World, cadre: Chat, clock: object) -> None:
    # A visit reminder's button pre-selects the household, only if it is the cadre's own.
    await cadre.press(f"rm:visit:{world.households['陈秀英']}")  # another cadre's household
    assert "不是您现在结对" in cadre.last_text
    assert await count(app, DialogState) == 0
    await cadre.press(f"rm:visit:{world.households['张大山']}")
    assert "走访张大山家是哪天" in cadre.last_text
    await cadre.send("昨天")
    # A check-in reminder arrives mid-dialog; pressing it parks the visit as a draft.
    await cadre.press("rm:checkin")
    assert any("草稿" in (r.text or "") for r in cadre.replies[-4:] if hasattr(r, "text"))
    await cadre.send("没有信号，跳过")
    assert "本周已驻村1天" in cadre.last_text
    await cadre.send("/visit")
    assert "没填完" in cadre.last_text
    await cadre.press_text("接着填")
    assert "什么类型" in cadre.last_text
    await cadre.press_text("日常走访")
    await cadre.send("看望")
    await cadre.press_text("没有")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    assert visit.household_id == world.households["张大山"] and visit.visit_date == date(2026, 11, 27)
    # A draft older than the keep period is not offered any more.
    await cadre.send("/visit")
    await cadre.press_text("刘老四")
    await cadre.send("/checkin")  # parks the visit draft
    clock.advance(days=app.core.settings.draft_keep_days + 1)  # type: ignore[attr-defined]
    await cadre.send("/visit")
    assert "没填完" not in cadre.last_text and "走访的是哪一户" in cadre.last_text


async def test_villager_no_is_flagged_to_leader(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    villager = Chat(app, "302")
    await bind(app, villager, household_id=world.households["张大山"])
    await log_visit_until_summary(cadre)
    await cadre.press_text("保存")
    [visit] = await rows(app, Visit)
    # Only the household's own account may answer.
    stranger = Chat(app, "303")
    await bind(app, stranger, household_id=world.households["陈秀英"])
    await stranger.press(f"vc:{visit.id}:n")
    assert "没有权限" in stranger.last_text
    await villager.press(f"vc:{visit.id}:n")
    assert "工作队长" in villager.last_text
    told = to(villager, "209")
    assert len(told) == 1 and "张大山" in told[0] and "没有人来走访" in told[0]
    await villager.press(f"vc:{visit.id}:y")  # answered already: not changed
    [visit] = await rows(app, Visit)
    assert visit.villager_confirmed is False and visit.flagged
    # A visit back-filled from months ago is not put to the family.
    asked = len(to(cadre, "302"))
    await log_visit_until_summary(cadre, date_text="2026-03-05")
    await cadre.press_text("保存")
    assert await count(app, Visit) == 2 and len(to(cadre, "302")) == asked


async def test_photo_required_by_county(app: App, world: World, cadre: Chat, files: BytesFiles) -> None:
    app.core.settings = app.core.settings.model_copy(update={"visit_photo_required": True})
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.send("看望")
    await cadre.press_text("没有")
    assert "要求" in cadre.last_text
    with pytest.raises(AssertionError):
        cadre.button("跳过")  # no way to skip photos
    await cadre.send("没照片")
    assert "请发照片" in cadre.replies[-2].text  # type: ignore[union-attr]
    await cadre.photo("p")
    await cadre.press_text("完成")
    assert "位置" in cadre.last_text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_photo_is_downloaded_before_the_update_takes_the_write_lock(
    app: App, world: World, cadre: Chat, settings: Settings
) -> None:
    """A slow getFile must not hold SQLite's single write lock: the bytes are fetched before the
    update's transaction opens, so another connection can still write meanwhile."""
    import sqlite3

    from sqlalchemy.engine import make_url

    db_path = make_url(settings.database_url).database
    writable: list[bool] = []

    class ProbingFiles:
        async def download(self, file_id: str) -> bytes:
            conn = sqlite3.connect(str(db_path), timeout=0.2, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                writable.append(True)
            except sqlite3.OperationalError:
                writable.append(False)
            finally:
                conn.close()
            return b"\xff\xd8\xff\xe0" + file_id.encode() * 20

    app.core.files = ProbingFiles()
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.send("看望")
    await cadre.send("无")
    await cadre.photo("probe-1")
    assert "第1张" in cadre.last_text
    assert writable == [True]  # downloaded once, outside the transaction
    assert app.core._prefetched == {}  # nothing kept after the update
