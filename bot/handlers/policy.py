"""Villagers' policy questions: free text (and /ask) → the policy parser → an answer, a clarifying
question, or an honest "not sure" with an offer to forward the question to their cadre."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table

from bot.buttons import QUESTION_FORWARD, QUESTION_KEEP, QUESTION_MORE, QUESTION_REPLY, QUESTION_TOPIC
from bot.core.context import Ctx
from bot.core.router import EVERYONE, Router
from bot.core.rows import RowLog
from bot.core.types import Button, InlineKeyboard
from bot.handlers.cases import reply_to_file, route_message
from bot.notices.policy import QuestionForwarded
from bot.services.people import cadre_for_household, leader_for_village
from bot.services.privacy import stored_text
from bot.services.stray import is_stray
from bot.store.enums import Role
from bot.store.models import Household, PolicyQuestion

router = Router("policy")

FOLLOW_UP_MINUTES = 10


#: every question is logged (the reply's buttons carry its id): a row added with the update (Ctx.add_row)
QUESTIONS = RowLog(cast(Table, PolicyQuestion.__table__))
#: the account memo's key for the last question: {"q": id, "at": ISO time, "ctx": the parser's context}
MEMO = "policy.last"


def _last_context(ctx: Ctx) -> dict[str, Any] | None:
    """The context of the speaker's last question if it was asked within the follow-up window: kept in the
    account memo (loaded with the account: no query), as that question's row holds it."""
    last = ctx.memo.get(MEMO)
    if not isinstance(last, dict):
        return None
    try:
        at = datetime.fromisoformat(str(last["at"]))
    except (KeyError, ValueError):
        return None
    if at < ctx.now - timedelta(minutes=FOLLOW_UP_MINUTES):
        return None
    context = last.get("ctx")
    return context if isinstance(context, dict) and context else None


async def answer_question(ctx: Ctx, text: str) -> None:
    """Answer one question, log it, and offer forwarding when the parser declines."""
    text = text.strip()
    limit = ctx.core.settings.max_text_length
    if len(text) > limit:
        ctx.reply("core.text_too_long", limit=limit, length=len(text))
        return
    advisor = ctx.core.services.policy
    # The previous question's context is read before this question is logged: otherwise the new question
    # would be its own "previous", and follow-ups ("县医院呢") would never see their context.
    context = _last_context(ctx) if advisor is not None else None
    if advisor is None:
        qid = await _log_question(ctx, text)
        ctx.reply("ask.unavailable")
        _offer_forward(ctx, qid)
        return
    res = advisor.answer(text, ctx.t.lang, context=context, now=ctx.now)
    # Triage (villagers only): a personal case, a hardship, something out of scope or chit-chat is not
    # answered with a policy leaflet (bot/handlers/cases.py routes it).
    kind = res.kind
    qid = await _log_question(
        ctx, text, topic=res.topic, confidence=float(res.confidence),
        answered=kind == "question" and res.decision == "answer", context=res.context or {},
    )
    if kind == "chat":  # hello, thanks, ok: a short reply, never forwarded
        if res.text:
            ctx.reply_text(res.text)
        else:
            ctx.reply("case.chat_reply")
    elif kind != "question" and ctx.role is Role.VILLAGER:
        await route_message(ctx, kind, res.topic, qid, text, res.text)
    elif kind != "question":
        ctx.reply("case.staff_hint")  # staff do not open villagers' cases by typing; /problem, /cases
    elif res.decision == "answer":
        ctx.reply_text(res.text, _more_button(ctx, qid) if res.detail else None)
    elif res.decision == "clarify":
        rows = tuple((Button(label, QUESTION_TOPIC.pack(qid, tid)),) for tid, label in res.options)
        ctx.reply_text(res.text or ctx.t("policy.clarify_prompt"), InlineKeyboard(rows))
    else:
        _offer_forward(ctx, qid)  # the offer says "not sure" once: no second decline sentence


def _more_button(ctx: Ctx, question_id: int) -> InlineKeyboard:
    """The "详细说明" button under a short answer: the whole entry on demand."""
    return InlineKeyboard(((Button(ctx.t("policy.more_button"), QUESTION_MORE.pack(question_id)),),))


async def _log_question(ctx: Ctx, text: str, **fields: Any) -> int:
    """Log the question (every question is kept) and return its id, for the buttons that refer to it; it
    becomes the speaker's last question (the memo), whose context the next one within the window reads."""
    values = {"account_id": ctx.account.id, "text": stored_text(text), "created_at": ctx.now, "context": {}, **fields}
    qid = await ctx.add_row(QUESTIONS, **values)
    await ctx.remember(MEMO, {"q": qid, "at": ctx.now.isoformat(), "ctx": values["context"]})
    return qid


def _offer_forward(ctx: Ctx, question_id: int, key: str = "policy.forward_offer") -> None:
    ctx.reply(
        key,
        InlineKeyboard(
            (
                (Button(ctx.t("policy.forward_yes"), QUESTION_FORWARD.pack(question_id)),),
                (Button(ctx.t("policy.forward_no"), QUESTION_KEEP.pack(question_id)),),
            )
        ),
    )


@router.command("ask")
async def ask(ctx: Ctx) -> None:
    if ctx.inc.args.strip():
        await answer_question(ctx, ctx.inc.args)
    else:
        ctx.reply("ask.prompt")


async def _own_question(ctx: Ctx, qid: int | None) -> PolicyQuestion | None:
    question = await ctx.session.get(PolicyQuestion, qid) if qid else None
    if question is None or question.account_id != ctx.account.id:
        return None
    return question


@router.callback(QUESTION_REPLY.prefix, private_only=True)
async def on_button(ctx: Ctx) -> None:
    data = ctx.inc.callback_data
    if (reply := QUESTION_REPLY.parse(data)) is not None:
        await _start_reply(ctx, reply[0])
        return
    topic, forward, keep = QUESTION_TOPIC.parse(data), QUESTION_FORWARD.parse(data), QUESTION_KEEP.parse(data)
    more = QUESTION_MORE.parse(data)
    pressed = topic or forward or keep or more
    question = await _own_question(ctx, pressed[0] if pressed else None)
    if question is None:
        ctx.answer_callback("core.button_expired")
        ctx.reply("core.button_expired")
        return
    advisor = ctx.core.services.policy
    if topic is not None and advisor is not None and topic[1] in advisor.topic_ids():
        res = advisor.answer_topic(topic[1], ctx.t.lang, context=question.context or None, now=ctx.now)
        question.topic, question.answered, question.context = topic[1], True, res.context or {}
        last = ctx.memo.get(MEMO)
        if isinstance(last, dict) and last.get("q") == question.id:  # the last question's context changed
            await ctx.remember(MEMO, {**last, "ctx": question.context})
        ctx.reply_text(res.text, _more_button(ctx, question.id) if res.detail else None)
    elif more is not None and advisor is not None and question.topic in advisor.topic_ids():
        res = advisor.answer_topic(question.topic, ctx.t.lang, context=question.context or None, now=ctx.now)
        ctx.answer_callback()
        ctx.reply_text(res.detail or res.text)
    elif forward is not None:
        await _forward(ctx, question)
    elif keep is not None:
        ctx.answer_callback()
    else:
        ctx.answer_callback("core.button_expired")


async def _forward(ctx: Ctx, question: PolicyQuestion) -> None:
    if question.forwarded_to_id is not None:
        ctx.reply("policy.forwarded")
        return
    household = (
        await ctx.session.get(Household, ctx.account.household_id) if ctx.account.household_id else None
    )
    target = None
    if household is not None:
        target = await cadre_for_household(ctx.session, household.id) or await leader_for_village(
            ctx.session, household.village_id
        )
    if target is None:
        ctx.reply("policy.forward_none")
        return
    villager = household.head_name if household else ctx.account.display_name
    if not await ctx.notify(QuestionForwarded(question, target.id, villager)):
        ctx.reply("policy.forward_none")
        return
    question.forwarded_to_id = target.id
    ctx.audit("policy.forwarded", "policy_question", question.id, to=target.id)
    ctx.reply("policy.forwarded")


async def _start_reply(ctx: Ctx, qid: int) -> None:
    question = await ctx.session.get(PolicyQuestion, qid)
    if question is None or ctx.person is None or question.forwarded_to_id != ctx.person.id:
        ctx.answer_callback("core.not_allowed")
        ctx.reply("core.not_allowed")
        return
    await ctx.core.start_dialog(ctx, "policy_reply", {"question_id": question.id}, fresh=True)


@router.file(roles={Role.VILLAGER})
async def villager_file(ctx: Ctx) -> None:
    """A villager's voice message, photo or document: a caption is read like typed text first; the file
    itself cannot be understood yet, so the villager is offered a call-back from their cadre."""
    if (ctx.inc.text or "").strip():
        await answer_question(ctx, ctx.inc.text or "")
    reply_to_file(ctx)


@router.text(roles=EVERYONE)
async def free_text(ctx: Ctx) -> None:
    """Anything typed outside a dialog: villagers get the parser; staff get it too (it may be a question).
    A lone "1" or "好" (say, after a dialog finished) is not a question: a short hint instead."""
    if is_stray(ctx.inc.text or ""):
        ctx.reply("core.stray.villager" if ctx.role is Role.VILLAGER else "core.stray.staff")
        return
    await answer_question(ctx, ctx.inc.text or "")
