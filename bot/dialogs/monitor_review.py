"""Review with a reason (send back / reject), and the monthly follow-up visit of a monitored household."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Retry, State, StepEnum
from bot.core.router import parse_number
from bot.dialogs.inputs import text_input
from bot.dialogs.monitor_common import money, tell_after
from bot.dialogs.monitor_screen import show_case
from bot.services import monitoring as mon
from bot.store.enums import Role


class ReasonDialog(Dialog):
    """The reviewer types the reason for sending a case back or rejecting it."""

    name = "mon_reason"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.LEADER, Role.TOWNSHIP, Role.COUNTY})
    first_step = "reason"
    title_key = "mon.reason.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        st.set(case=int(args["case_id"]), step=str(args["step"]), action=str(args["action"]))
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply(f"mon.reason.ask_{st.data['action']}", st.keyboard(ctx, [], back=False), id=st.data["case"])

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text, retry = text_input(ctx)
        if retry:
            return retry
        assert ctx.person is not None and text is not None
        d = st.data
        case = await mon.lock_case(ctx.session, int(d["case"]))
        if case is None:
            ctx.reply("core.not_allowed")
            return Finish()
        fn = mon.send_back if d["action"] == "back" else mon.reject
        try:
            await fn(ctx.session, ctx.core.services.rules, case, ctx.person, ctx.now, ctx.today, step=d["step"],
                     reason=text)
        except mon.Refused as e:
            ctx.reply(e.key, **e.args_)
            return Finish()
        await show_case(ctx, case, f"mon.done.{d['action']}")
        await tell_after(ctx, case, d["step"], "reject" if d["action"] == "no" else "send_back", text)
        return Finish()


class Step(StepEnum):
    INCOME = "income"
    EXPENSE = "expense"
    GUARANTEES = "guarantees"
    LABOUR = "labour"


class FollowUpDialog(Dialog):
    """The monthly follow-up: per-capita income now, rigid expense solved, 三保障 and water, labour."""

    name = "mon_follow"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.CADRE, Role.LEADER})
    first_step = Step.INCOME.value
    title_key = "mon.follow.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        st.set(case=int(args["case_id"]))
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        step = Step(st.step)
        yes_no = [[st.btn(ctx.t("mon.btn.yes"), "y"), st.btn(ctx.t("mon.btn.no"), "n")]]
        if step is Step.INCOME:
            ctx.reply("mon.follow.ask_income", st.keyboard(ctx, []))
        elif step is Step.EXPENSE:
            ctx.reply("mon.follow.ask_expense", st.keyboard(ctx, yes_no))
        elif step is Step.GUARANTEES:
            ctx.reply("mon.follow.ask_guarantees", st.keyboard(ctx, yes_no))
        else:
            ctx.reply("mon.follow.ask_labour", st.keyboard(ctx, []))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        step = Step(st.step)
        value = st.value(ctx)
        if step is Step.INCOME:
            amount = money(ctx.inc.text)
            if amount is None:
                return Retry("mon.screen.bad_money")
            st.set(income=str(amount))
            return Goto(Step.EXPENSE.value)
        if step in (Step.EXPENSE, Step.GUARANTEES):
            if value not in ("y", "n"):
                return Retry("mon.screen.pick")
            st.set(**{step.value: value == "y"})
            return Goto(Step.GUARANTEES.value if step is Step.EXPENSE else Step.LABOUR.value)
        n = parse_number((ctx.inc.text or "").strip(), 2)
        if n is None:
            return Retry("mon.follow.bad_labour")
        assert ctx.person is not None
        d = st.data
        case = await mon.lock_case(ctx.session, int(d["case"]))
        if case is None:
            ctx.reply("core.not_allowed")
            return Finish()
        try:
            await mon.follow_up(ctx.session, ctx.core.services.rules, case, ctx.person, ctx.now, ctx.today,
                                income_per_head=money(d["income"]) or money("0"),  # type: ignore[arg-type]
                                expense_solved=bool(d["expense"]), guarantees_secured=bool(d["guarantees"]),
                                labour=n)
        except mon.Refused as e:
            ctx.reply(e.key, **e.args_)
            return Finish()
        await show_case(ctx, case, "mon.follow.saved")
        return Finish()
