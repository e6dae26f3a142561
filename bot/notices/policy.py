"""Notices about a villager's policy question: forwarded to their cadre, the cadre's reply back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from bot.buttons import QUESTION_REPLY
from bot.core.context import Ctx, Rendered
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Translator
from bot.store.models import Account, PolicyQuestion


@dataclass(frozen=True)
class QuestionForwarded:
    """A question the parser could not answer, forwarded to the household's cadre (or the village's
    leader), with a button to reply."""

    question: PolicyQuestion
    to_person_id: int
    villager: str

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        q = select(Account).where(Account.person_id == self.to_person_id, Account.unreachable.is_(False))
        return list((await ctx.session.execute(q)).scalars())

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        button = Button(t("policy.reply_button"), QUESTION_REPLY.pack(self.question.id))
        return Rendered(
            t("policy.question_to_cadre", villager=self.villager, question=self.question.text),
            InlineKeyboard(((button,),)),
        )


@dataclass(frozen=True)
class QuestionAnswered:
    """The cadre's reply to a forwarded question, to the villager who asked it."""

    question: PolicyQuestion
    cadre: str
    reply: str

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        villager = await ctx.session.get(Account, self.question.account_id) if self.question.account_id else None
        return [villager] if villager is not None else []

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(t("policy.reply_to_villager", cadre=self.cadre, reply=self.reply))
