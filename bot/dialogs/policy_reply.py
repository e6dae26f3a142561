"""A cadre answers a villager's forwarded policy question (started by the pq:reply button)."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Next, Retry, State
from bot.core.router import STAFF
from bot.notices.policy import QuestionAnswered
from bot.services.privacy import stored_text
from bot.store.enums import Role
from bot.store.models import PolicyQuestion


class PolicyReplyDialog(Dialog):
    """A cadre answers a villager's forwarded question."""

    name = "policy_reply"
    roles: ClassVar[frozenset[Role]] = STAFF
    first_step = "text"
    title_key = "policy.reply_button"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        st.set(question_id=int(args["question_id"]))
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        question = await ctx.session.get(PolicyQuestion, st.data["question_id"])
        ctx.reply(
            "policy.ask_reply", st.keyboard(ctx, [], back=False), question=question.text if question else ""
        )

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text = (ctx.inc.text or "").strip()
        if not text:
            return Retry("policy.ask_reply_retry")
        limit = ctx.core.settings.max_text_length
        if len(text) > limit:
            return Retry("core.text_too_long", {"limit": limit, "length": len(text)})
        question = await ctx.session.get(PolicyQuestion, st.data["question_id"])
        if question is None or ctx.person is None or question.forwarded_to_id != ctx.person.id:
            ctx.reply("core.not_allowed")
            return Finish()
        text = stored_text(text)
        question.reply_text = text
        question.replied_at = ctx.now
        await ctx.notify(QuestionAnswered(question, ctx.person.name, text))
        ctx.audit("policy.replied", "policy_question", question.id)
        ctx.reply("policy.reply_sent")
        return Finish()
