"""入户核实: the cadre's screening form, step by step (resumable as a draft): members, working-age labour,
income items, rigid expenses, 三保障 and drinking water, the type, the signed consent; the per-capita
income is computed with the working shown and compared with the province's line (when one is set)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Retry, State, StepEnum
from bot.core.router import parse_number
from bot.core.types import InlineKeyboard
from bot.dialogs.monitor_common import money
from bot.i18n import Safe
from bot.notices.monitoring import actions, card
from bot.services import monitoring as mon
from bot.store.enums import MonitorKind, Role
from bot.store.models import MonitorCase

ITEMS = ("income.wage", "income.business", "income.property", "income.transfer",
         "expense.medical", "expense.schooling", "expense.other")
GUARANTEES = ("education", "medical", "housing", "water")


class Step(StepEnum):
    MEMBERS = "members"
    LABOUR = "labour"
    ITEM = "item"
    GUARANTEE = "guarantee"
    KIND = "kind"
    CONSENT = "consent"
    CONFIRM = "confirm"


def _screening(d: dict[str, Any]) -> mon.Screening:
    amounts = d.get("items", {})
    return mon.Screening(
        members=int(d["members"]), labour=int(d["labour"]),
        income={k.split(".")[1]: Decimal(v) for k, v in amounts.items() if k.startswith("income.")},
        expenses={k.split(".")[1]: Decimal(v) for k, v in amounts.items() if k.startswith("expense.")},
        guarantees=dict(d.get("guar", {})), consent=bool(d.get("consent")), kind=d.get("kind"),
    )


class ScreeningDialog(Dialog):
    name = "mon_screen"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.CADRE, Role.LEADER})
    first_step = Step.MEMBERS.value
    title_key = "mon.screen.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        st.set(case=int(args["case_id"]), items={}, guar={}, i=0, g=0)
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        step = Step(st.step)
        d = st.data
        if step is Step.MEMBERS:
            ctx.reply("mon.screen.ask_members", st.keyboard(ctx, []))
        elif step is Step.LABOUR:
            ctx.reply("mon.screen.ask_labour", st.keyboard(ctx, []), members=d["members"])
        elif step is Step.ITEM:
            item = ITEMS[d["i"]]
            ctx.reply("mon.screen.ask_item", st.keyboard(ctx, [[st.btn("0", "zero")]]),
                      item=ctx.t(f"mon.item.{item}"), n=d["i"] + 1, total=len(ITEMS))
        elif step is Step.GUARANTEE:
            g = GUARANTEES[d["g"]]
            rows = [[st.btn(ctx.t("mon.btn.yes_secured"), "y"), st.btn(ctx.t("mon.btn.not_secured"), "n")]]
            ctx.reply("mon.screen.ask_guarantee", st.keyboard(ctx, rows), item=ctx.t(f"mon.guarantee.{g}"))
        elif step is Step.KIND:
            rows = [[st.btn(ctx.t(f"mon.kind.{k.value}"), f"k:{k.value}")] for k in MonitorKind]
            ctx.reply("mon.screen.ask_kind", st.keyboard(ctx, rows))
        elif step is Step.CONSENT:
            ctx.reply("mon.screen.ask_consent", st.keyboard(ctx, [[st.btn(ctx.t("mon.btn.consent"), "y")]]))
        else:
            line = ctx.core.services.rules.monitoring.income_line(ctx.today.year)
            pc = mon.per_capita(_screening(d), line)
            if pc.below is None:
                compare = ctx.t("mon.screen.no_line", year=ctx.today.year)
            else:
                compare = ctx.t("mon.screen.below" if pc.below else "mon.screen.above", line=f"{line}")
            ctx.reply("mon.screen.summary", st.keyboard(ctx, [[st.btn(ctx.t("mon.btn.save"), "save")]]),
                      working=pc.working, compare=Safe(compare))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        step = Step(st.step)
        d = st.data
        value = st.value(ctx)
        text = (ctx.inc.text or "").strip()
        if step is Step.MEMBERS:
            n = parse_number(text, 2)
            if n is None or not 1 <= n <= 30:
                return Retry("mon.screen.bad_members")
            st.set(members=n)
            return Goto(Step.LABOUR.value)
        if step is Step.LABOUR:
            n = parse_number(text, 2)
            if n is None or n > int(d["members"]):
                return Retry("mon.screen.bad_labour", {"members": d["members"]})
            st.set(labour=n, i=0)
            return Goto(Step.ITEM.value)
        if step is Step.ITEM:
            amount = Decimal(0) if value == "zero" else money(text)
            if amount is None:
                return Retry("mon.screen.bad_money")
            items = {**d["items"], ITEMS[d["i"]]: str(amount)}
            if d["i"] + 1 < len(ITEMS):
                st.set(items=items, i=d["i"] + 1)
                return Goto(Step.ITEM.value)
            st.set(items=items, g=0)
            return Goto(Step.GUARANTEE.value)
        if step is Step.GUARANTEE:
            if value not in ("y", "n"):
                return Retry("mon.screen.pick")
            guar = {**d["guar"], GUARANTEES[d["g"]]: value == "y"}
            if d["g"] + 1 < len(GUARANTEES):
                st.set(guar=guar, g=d["g"] + 1)
                return Goto(Step.GUARANTEE.value)
            st.set(guar=guar)
            return Goto(Step.KIND.value)
        if step is Step.KIND:
            kind = value[2:] if value and value.startswith("k:") else None
            if kind not in {k.value for k in MonitorKind}:
                return Retry("mon.screen.pick")
            st.set(kind=kind)
            return Goto(Step.CONSENT.value)
        if step is Step.CONSENT:
            if value != "y":
                return Retry("mon.screen.need_consent")
            st.set(consent=True)
            return Goto(Step.CONFIRM.value)
        if value != "save":
            return Retry("mon.screen.pick")
        assert ctx.person is not None
        case = await mon.lock_case(ctx.session, int(d["case"]))
        if case is None:
            ctx.reply("core.not_allowed")
            return Finish()
        try:
            await mon.record_screening(ctx.session, ctx.core.services.rules, case, ctx.person, ctx.now, ctx.today,
                                       _screening(d))
        except mon.Refused as e:
            ctx.reply(e.key, **e.args_)
            return Finish()
        await show_case(ctx, case, "mon.screen.saved")
        return Finish()


async def show_case(ctx: Ctx, case: MonitorCase, key: str | None = None, history: bool = False) -> None:
    """The case card with the speaker's buttons (an optional headline first)."""
    text = await card(ctx, ctx.t, case, history=history)
    if key:
        text = ctx.t(key) + "\n" + text
    markup: InlineKeyboard | None = actions(ctx.t, case, ctx.role)
    ctx.reply("cadre.raw", markup, text=Safe(text))
