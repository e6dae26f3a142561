"""A reminder written while a cadre is in the middle of a dialog leaves the dialog alone, and its
button works afterwards (the chat layer handles rm:visit:<household_id>)."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.scheduler.rules import load_rules
from bot.scheduler.tick import run_tick
from bot.store.models import DialogState, Outbox
from tests.conftest import Chat, World, bind


async def _dialogs(app: App) -> list[tuple[str, str, bool]]:
    async with app.core.sessions() as s:
        return [(d.dialog, d.step, d.active) for d in (await s.scalars(select(DialogState))).all()]


async def test_reminder_mid_dialog(app: App, world: World) -> None:
    cadre = Chat(app, "201", name="王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.send("/visit")
    await cadre.press_text("张小山")
    assert "张小山" in cadre.last_text
    before = await _dialogs(app)
    assert any(active for _, _, active in before)

    # Saturday 10:00: the cadre's overdue reminder is written (pairings began 1 March, no visits).
    result = await run_tick(app.core.sessions, load_rules(), app.core.catalogs, app.core.clock.now())
    assert "visit.cadre" in result.ran
    async with app.core.sessions() as s:
        [reminder] = (await s.scalars(select(Outbox).where(Outbox.rule == "visit.cadre",
                                                            Outbox.chat_id == "201"))).all()
    assert await _dialogs(app) == before  # the tick never touches dialogs

    # The dialog goes on where it was...
    step_before = cadre.last_text
    await cadre.send("昨天")
    assert cadre.last_text != step_before and "哪天" not in cadre.last_text

    # ...and the reminder's first button (the most overdue household) still works afterwards.
    data = reminder.payload["markup"]["rows"][0][0]["data"]
    assert data.startswith("rm:visit:")
    household = int(data.rsplit(":", 1)[1])
    name = next(n for n, hid in world.households.items() if hid == household)
    await cadre.press(data)
    # Handled by the chat layer: it opens that household, or first offers to finish the visit
    # already under way; either way nothing typed so far is lost.
    assert name in cadre.last_text or "没填完" in cadre.last_text
    async with app.core.sessions() as s:
        drafts = [d.data for d in (await s.scalars(select(DialogState))).all()]
    # The visit under way keeps its household and the date typed after the reminder came.
    assert any({"张小山", "2026-11-27"} <= {str(v) for v in d.values()} for d in drafts)
