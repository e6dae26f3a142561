"""防止返贫监测 (issue 14): /monitor (cases in one's area), /hardship (a villager's self-report), and the
case buttons mn:* — every state change is checked by bot.services.monitoring (role owns the step, in
order, in the actor's area); a refused button is answered and audited there."""

from __future__ import annotations

import asyncio

from bot.buttons import (
    MON_APPROVE,
    MON_CHECK,
    MON_CLOSE,
    MON_FOLLOW_UP,
    MON_MEASURE,
    MON_MEASURE_TOPIC,
    MON_NOTICE,
    MON_OPEN,
    MON_REJECT,
    MON_SCREEN,
    MON_SELF_REPORT,
    MON_SEND_BACK,
)
from bot.core.context import Ctx
from bot.core.router import EVERYONE, Router
from bot.core.types import Button, InlineKeyboard, Photo
from bot.dialogs.monitor_common import tell_after
from bot.dialogs.monitor_screen import show_case
from bot.i18n import Safe
from bot.notices.monitoring import TOPICS
from bot.services import monitoring as mon
from bot.services.people import can_see_household
from bot.store.enums import MonitorSource, MonitorStep, Role
from bot.store.models import Household, MonitorCase, Village

router = Router("monitoring")
OFFICERS = frozenset({Role.CADRE, Role.LEADER, Role.TOWNSHIP, Role.COUNTY, Role.ADMIN})


@router.command("monitor", roles=OFFICERS, private_only=True)
async def monitor(ctx: Ctx) -> None:
    assert ctx.person is not None
    cases = await mon.cases_in_scope(ctx.session, ctx.person)
    if not cases:
        ctx.reply("mon.list.empty")
        return
    lines = [ctx.t("mon.list.head", n=len(cases))]
    buttons: list[tuple[Button, ...]] = []
    for c in cases:
        overdue = c.step_due is not None and c.step_due < ctx.today
        lines.append(ctx.t("mon.list.line", id=c.id, name=c.head_name or "-", step=ctx.t(f"mon.step.{c.step}"),
                           due=c.step_due.isoformat() if c.step_due else "-",
                           overdue=ctx.t("mon.list.overdue") if overdue else ""))
        buttons.append((Button(f"#{c.id} {c.head_name}", MON_OPEN.pack(c.id)),))
    ctx.reply("cadre.raw", InlineKeyboard(tuple(buttons[:20])), text=Safe("\n".join(lines)))


@router.command("hardship", roles=EVERYONE, private_only=True)
async def hardship(ctx: Ctx) -> None:
    await ctx.core.start_dialog(ctx, "mon_report")


async def _case(ctx: Ctx, case_id: int) -> MonitorCase | None:
    case = await mon.lock_case(ctx.session, case_id)
    if case is None:
        ctx.answer_callback("mon.refused.scope", alert=True)
        ctx.audit("monitor.missing_case", "monitor_case", case_id)
    return case


def _refused(ctx: Ctx, e: mon.Refused) -> None:
    reasons = e.args_.get("reasons")
    args = {k: v for k, v in e.args_.items() if k != "reasons"}
    ctx.answer_callback(e.key, alert=True, **args)
    text = ctx.t(e.key, **args)
    if reasons:
        text += "\n" + "\n".join("· " + ctx.t(r) for r in reasons)
    ctx.reply("cadre.raw", text=Safe(text))


@router.callback(MON_OPEN.prefix, roles=EVERYONE, private_only=True)
async def on_button(ctx: Ctx) -> None:
    data = ctx.inc.callback_data or ""
    if MON_SELF_REPORT.parse(data) is not None:
        ctx.answer_callback()
        await ctx.core.start_dialog(ctx, "mon_report")
        return
    person = ctx.person
    if person is None or ctx.role not in OFFICERS:
        ctx.answer_callback("core.not_allowed", alert=True)
        ctx.audit("monitor.refused_role", "monitor_case", None, data=data[:64])
        return
    rules = ctx.core.services.rules
    if (hit := MON_CHECK.parse(data)) is not None:
        await _cadre_check(ctx, hit[0])
        return
    if (hit := MON_NOTICE.parse(data)) is not None:
        await _public_notice(ctx, hit[0])
        return
    if (hit := MON_OPEN.parse(data)) is not None:
        case = await _case(ctx, hit[0])
        if case is None:
            return
        if not await mon.in_scope(ctx.session, person, case):
            ctx.audit("monitor.refused_scope", "monitor_case", case.id)
            ctx.answer_callback("mon.refused.scope", alert=True)
            return
        ctx.answer_callback()
        await show_case(ctx, case, history=True)
        return
    step_hit = MON_APPROVE.parse(data) or MON_SEND_BACK.parse(data) or MON_REJECT.parse(data)
    id_hit = (MON_SCREEN.parse(data) or MON_MEASURE.parse(data) or MON_FOLLOW_UP.parse(data)
              or MON_CLOSE.parse(data))
    topic_hit = MON_MEASURE_TOPIC.parse(data)
    case_id = (step_hit or id_hit or topic_hit or (None,))[0]
    if case_id is None:
        ctx.answer_callback("core.not_allowed", alert=True)
        ctx.audit("monitor.bad_button", "monitor_case", None, data=data[:64])
        return
    case = await _case(ctx, int(case_id))
    if case is None:
        return
    try:
        if MON_APPROVE.parse(data) is not None:
            assert step_hit is not None
            before = case.step
            await mon.approve(ctx.session, rules, case, person, ctx.now, ctx.today, step=str(step_hit[1]))
            ctx.answer_callback()
            await show_case(ctx, case, "mon.done.approve")
            await tell_after(ctx, case, before, "approve")
        elif step_hit is not None:
            action = "back" if MON_SEND_BACK.parse(data) is not None else "no"
            await mon.check_actor(ctx.session, case, person, ctx.now, str(step_hit[1]))
            if case.step not in mon.REVIEW_STEPS or (action == "back" and case.step == MonitorStep.ACCEPT):
                raise mon.Refused("mon.refused.not_review")
            ctx.answer_callback()
            await ctx.core.start_dialog(ctx, "mon_reason", {"case_id": case.id, "step": case.step, "action": action})
        elif MON_SCREEN.parse(data) is not None:
            await mon.check_actor(ctx.session, case, person, ctx.now, MonitorStep.VERIFY.value)
            ctx.answer_callback()
            await ctx.core.start_dialog(ctx, "mon_screen", {"case_id": case.id})
        elif MON_FOLLOW_UP.parse(data) is not None:
            await mon.check_actor(ctx.session, case, person, ctx.now, MonitorStep.FOLLOW_UP.value)
            ctx.answer_callback()
            await ctx.core.start_dialog(ctx, "mon_follow", {"case_id": case.id})
        elif MON_MEASURE.parse(data) is not None:
            await mon.check_actor(ctx.session, case, person, ctx.now)
            if case.step not in (MonitorStep.MEASURES, MonitorStep.FOLLOW_UP):
                raise mon.Refused("mon.refused.order")
            ctx.answer_callback()
            rows = tuple((Button(ctx.t(f"mon.topic.{t}"), MON_MEASURE_TOPIC.pack(case.id, t)),) for t in TOPICS)
            ctx.reply("mon.ask_topic", InlineKeyboard(rows), id=case.id)
        elif topic_hit is not None:
            await mon.add_measure(ctx.session, case, person, ctx.now, ctx.today, topic=str(topic_hit[1]),
                                  note=ctx.t(f"mon.topic.{topic_hit[1]}") if topic_hit[1] in TOPICS else "",
                                  known_topics=TOPICS)
            ctx.answer_callback()
            await show_case(ctx, case, "mon.done.measure")
        elif MON_CLOSE.parse(data) is not None:
            await mon.request_close(ctx.session, rules, case, person, ctx.now, ctx.today)
            ctx.answer_callback()
            await show_case(ctx, case, "mon.done.request_close")
            await tell_after(ctx, case, MonitorStep.FOLLOW_UP.value, "request_close")
    except mon.Refused as e:
        _refused(ctx, e)


async def _public_notice(ctx: Ctx, case_id: int) -> None:
    """The printable 公示 page of the case's village: names, group, type and measures only."""
    from datetime import timedelta

    from bot.io.monitor import notice_image, notice_lines, notice_rows

    assert ctx.person is not None
    case = await ctx.session.get(MonitorCase, case_id)
    if case is None or not await mon.in_scope(ctx.session, ctx.person, case):
        ctx.answer_callback("mon.refused.scope", alert=True)
        ctx.audit("monitor.refused_scope", "monitor_case", case_id)
        return
    ctx.answer_callback()
    village = await ctx.session.get(Village, case.village_id)
    rows = await notice_rows(ctx.session, case.village_id, case.phase)
    days = ctx.core.services.rules.monitoring.publicity_days
    lines = notice_lines(village.name if village else "", rows, case.step_started,
                         case.step_started + timedelta(days=days), case.phase)
    png = await asyncio.to_thread(notice_image, lines, "PNG")
    ctx.reply_photo(Photo(data=png, filename="gongshi.png"), caption=ctx.t("mon.notice.caption", n=len(rows)))


async def _cadre_check(ctx: Ctx, household_id: int) -> None:
    """干部排查: a cadre opens a case for a household they may see (or is shown the open one)."""
    assert ctx.person is not None
    hh = await ctx.session.get(Household, household_id)
    if hh is None or not await can_see_household(ctx.session, ctx.person, hh):
        ctx.answer_callback("households.not_yours", alert=True)
        ctx.audit("monitor.refused_scope", "household", household_id)
        return
    ctx.answer_callback()
    existing = await mon.open_cases_for(ctx.session, hh.id)
    if existing:
        await show_case(ctx, existing[0], "mon.check.already_open")
        return
    case = await mon.open_case(ctx.session, ctx.core.services.rules, ctx.now, ctx.today, village_id=hh.village_id,
                               household_id=hh.id, source=MonitorSource.CADRE_CHECK, actor=ctx.person,
                               head_name=hh.head_name, phone=hh.phone)
    ctx.audit("monitor.cadre_check", "monitor_case", case.id)
    await show_case(ctx, case, "mon.check.opened")
