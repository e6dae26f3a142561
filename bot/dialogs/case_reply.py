"""A cadre or leader writes a reply to the villager of a case (started by the cs:rep button)."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Next, Retry, State
from bot.core.router import STAFF
from bot.notices.cases import CaseReplied
from bot.services import cases as csvc
from bot.store.enums import Role
from bot.store.models import Case


class CaseReplyDialog(Dialog):
    """One step: the reply text. The villager gets it at once; the case counts as answered."""

    name = "case_reply"
    roles: ClassVar[frozenset[Role]] = STAFF
    first_step = "text"
    title_key = "case.reply_title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        st.set(case_id=int(args["case_id"]))
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply("case.ask_reply", st.keyboard(ctx, [], back=False), number=st.data["case_id"])

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text = (ctx.inc.text or "").strip()
        if not text:
            return Retry("case.ask_reply_retry")
        limit = ctx.core.settings.max_text_length
        if len(text) > limit:
            return Retry("core.text_too_long", {"limit": limit, "length": len(text)})
        case = await ctx.session.get(Case, st.data["case_id"])
        person_id = ctx.person.id if ctx.person else None
        if case is None or not await csvc.can_handle(ctx.session, person_id, ctx.role, case):
            ctx.reply("core.not_allowed")
            return Finish()
        text = csvc.storable_text(text)
        csvc.record_reply(case, text, ctx.now)
        ctx.audit("case.replied", "case", case.id)
        await ctx.notify(CaseReplied(case, ctx.person.name if ctx.person else "", text))
        ctx.reply("case.reply_sent", number=case.id)
        return Finish()
