"""农户自主申报: a villager's self-report of a hardship — head's name, phone, ID number (kept only as a
keyed hash and a masked form), village, risk type, a few sentences, an optional photo."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlalchemy import select

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Retry, State, StepEnum
from bot.core.router import EVERYONE
from bot.dialogs.inputs import text_input
from bot.dialogs.monitor_common import tell_after
from bot.services import monitoring as mon
from bot.store.enums import MonitorRisk, MonitorSource, Role
from bot.store.idhash import normalize_id
from bot.store.models import Household, Village

_PHONE = re.compile(r"^[0-9-]{7,20}$")


class Step(StepEnum):
    NAME = "name"
    PHONE = "phone"
    ID = "id"
    VILLAGE = "village"
    RISK = "risk"
    TEXT = "text"
    PHOTO = "photo"


class SelfReportDialog(Dialog):
    name = "mon_report"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = Step.NAME.value
    title_key = "mon.self.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        hid = ctx.account.household_id
        if hid is not None:
            hh = await ctx.session.get(Household, hid)
            if hh is not None:
                st.set(hh=hh.id, village=hh.village_id, head=hh.head_name, hh_phone=hh.phone or "")
        ctx.reply("mon.self.intro")
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        step = Step(st.step)
        d = st.data
        if step is Step.NAME:
            rows = [[st.btn(d["head"], "same")]] if d.get("head") else []
            ctx.reply("mon.self.ask_name", st.keyboard(ctx, rows))
        elif step is Step.PHONE:
            rows = [[st.btn(d["hh_phone"], "same")]] if d.get("hh_phone") else []
            ctx.reply("mon.self.ask_phone", st.keyboard(ctx, rows))
        elif step is Step.ID:
            ctx.reply("mon.self.ask_id", st.keyboard(ctx, [[st.btn(ctx.t("mon.btn.skip"), "skip")]]))
        elif step is Step.VILLAGE:
            ctx.reply("mon.self.ask_village", st.keyboard(ctx, []))
        elif step is Step.RISK:
            risks = list(MonitorRisk)
            rows = [[st.btn(ctx.t(f"mon.risk.{r.value}"), f"r:{r.value}") for r in risks[i : i + 2]]
                    for i in range(0, len(risks), 2)]
            ctx.reply("mon.self.ask_risk", st.keyboard(ctx, rows))
        elif step is Step.TEXT:
            ctx.reply("mon.self.ask_text", st.keyboard(ctx, []))
        else:
            ctx.reply("mon.self.ask_photo", st.keyboard(ctx, [[st.btn(ctx.t("mon.btn.no_photo"), "skip")]]))

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        step = Step(st.step)
        value = st.value(ctx)
        if step is Step.NAME:
            if value == "same":
                st.set(name=st.data["head"])
            else:
                text, retry = text_input(ctx)
                if retry:
                    return retry
                if text is None or len(text) > 32:
                    return Retry("mon.self.bad_name")
                st.set(name=text)
            return Goto(Step.PHONE.value)
        if step is Step.PHONE:
            phone = st.data.get("hh_phone") if value == "same" else (ctx.inc.text or "").strip().replace(" ", "")
            if not phone or not phone.isascii() or not _PHONE.match(phone):
                return Retry("mon.self.bad_phone")
            st.set(phone=phone)
            return Goto(Step.ID.value)
        if step is Step.ID:
            if value == "skip":
                st.set(id_number=None)
            else:
                number = normalize_id(ctx.inc.text or "")
                if number is None:
                    return Retry("mon.self.bad_id")
                st.set(id_number=number)
            return Goto(Step.RISK.value if st.data.get("village") else Step.VILLAGE.value)
        if step is Step.VILLAGE:
            text, retry = text_input(ctx)
            if retry:
                return retry
            q = select(Village.id).where(Village.name == text).limit(2)
            found = list((await ctx.session.execute(q)).scalars())
            if len(found) != 1:
                return Retry("mon.self.bad_village")
            st.set(village=found[0])
            return Goto(Step.RISK.value)
        if step is Step.RISK:
            risk = value[2:] if value and value.startswith("r:") else None
            if risk not in {r.value for r in MonitorRisk}:
                return Retry("mon.self.pick_risk")
            st.set(risk=risk)
            return Goto(Step.TEXT.value)
        if step is Step.TEXT:
            text, retry = text_input(ctx)
            if retry:
                return retry
            st.set(text=text)
            return Goto(Step.PHOTO.value)
        photo: str | None = None
        if ctx.inc.files:
            photo = ctx.inc.files[0].file_id
        elif value != "skip":
            return Retry("mon.self.photo_hint")
        await self._save(ctx, st, photo)
        return Finish()

    async def _save(self, ctx: Ctx, st: State, photo: str | None) -> None:
        d = st.data
        rules = ctx.core.services.rules
        if d.get("hh") is not None:
            existing = await mon.open_cases_for(ctx.session, int(d["hh"]))
            if existing:
                ctx.reply("mon.self.already_open", id=existing[0].id)
                return
        case = await mon.open_case(
            ctx.session, rules, ctx.now, ctx.today, village_id=int(d["village"]), household_id=d.get("hh"),
            source=MonitorSource.SELF_REPORT, reporter_account_id=ctx.account.id, head_name=d["name"],
            phone=d["phone"], id_number=d.get("id_number"), id_key=ctx.core.settings.id_key(),
            risks=[d["risk"]], description=d["text"], photo_file_id=photo,
        )
        ctx.audit("monitor.self_report", "monitor_case", case.id)
        ctx.reply("mon.self.saved", id=case.id, days=rules.monitoring.accept_working_days)
        await tell_after(ctx, case, "", "open")
