"""The leader's resolution note on a difficulty (started by the df:res button)."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Next, State
from bot.core.router import LEADERS
from bot.dialogs.inputs import text_input
from bot.notices.difficulties import StatusChanged
from bot.services import difficulties as dsvc
from bot.store.enums import Role
from bot.store.models import Difficulty


class ResolveNoteDialog(Dialog):
    """The leader writes how a difficulty was resolved; the reporter is told."""

    name = "resolve_note"
    roles: ClassVar[frozenset[Role]] = LEADERS
    first_step = "note"
    title_key = "difficulty.resolve_title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        st.set(difficulty_id=int(args["difficulty_id"]))
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply("difficulty.ask_note", st.keyboard(ctx, [], back=False), id=st.data["difficulty_id"])

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text, retry = text_input(ctx)
        if retry:
            return retry
        d = await ctx.session.get(Difficulty, st.data["difficulty_id"])
        if d is None or not await dsvc.can_manage(ctx.session, ctx.person, d):
            ctx.reply("core.not_allowed")
            return Finish()
        if not dsvc.resolve(d, text or "", ctx.now):
            ctx.reply("difficulty.already_resolved", id=d.id)
            return Finish()
        ctx.audit("difficulty.resolved", "difficulty", d.id)
        ctx.reply("difficulty.resolved", id=d.id)
        await ctx.notify(StatusChanged(d))
        return Finish()
