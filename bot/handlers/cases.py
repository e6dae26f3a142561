"""Villagers' messages that are not policy questions, and the cadres' side of them.

- Triage routing (called by the policy handler, which reads PolicyAnswer.kind, for a villager's free text):
  a case or a hardship becomes a tracked case sent to the paired cadre and copied to the team leader
  (further lines in the same sitting add to it); "other" is declined kindly with who usually handles it
  and a button to pass it on anyway. Chit-chat never gets here: the policy handler replies briefly.
- Voice messages, photos and documents from villagers (the policy handler's file route): an honest "I
  cannot understand these yet" and one button asking the paired cadre to call back (which opens a case).
- /cases for staff: open cases and forwarded questions waiting for a reply, with reply, resolve and hand
  to the leader; leaders also see their team's cases with their age and the topics asked most this month.

Buttons (bot/buttons.py): CASE_PASS / CASE_KEEP, CASE_CALL, CASE_OPEN / REPLY / RESOLVE / TO_LEADER.
Every press is re-checked against who may handle the case; state changes are idempotent.
"""

from __future__ import annotations

from datetime import timedelta

from bot.buttons import (
    CASE_CALL,
    CASE_KEEP,
    CASE_OPEN,
    CASE_PASS,
    CASE_REPLY,
    CASE_RESOLVE,
    CASE_TO_LEADER,
    MON_SELF_REPORT,
)
from bot.core.context import Ctx
from bot.core.router import STAFF, Router, parse_id
from bot.core.types import Button, InlineKeyboard
from bot.notices.cases import (
    CaseAdded,
    CaseResolved,
    CaseWithLeader,
    HandedToLeader,
    NewCase,
    NewCaseToLeader,
    actions,
    age_days,
    card,
    leader_of,
    topic_label,
)
from bot.services import cases as csvc
from bot.store.enums import CaseKind, CaseStatus, Role
from bot.store.models import Case, Person, PolicyQuestion

router = Router("cases")

LIST_LIMIT = 30
SAME_SITTING_MINUTES = 30  # a case message this soon after an open case adds to it
_FILE_KINDS = {"voice": "v", "photo": "p", "document": "d"}
_WHAT = {"v": "voice", "p": "photo", "d": "document"}


def offer_hardship_self_report(ctx: Ctx, case: Case) -> bool:
    """A hardship: besides the case (the cadre has been alerted already), offer the villager the
    monitoring self-report (防返贫监测 农户自主申报, issue 14) with one button."""
    ctx.reply("mon.self.offer", InlineKeyboard(((Button(ctx.t("mon.btn.self_report"), MON_SELF_REPORT.pack()),),)))
    return True


async def open_and_tell(
    ctx: Ctx, kind: CaseKind, idem_key: str, text: str, *, topic: str = "none", question_id: int | None = None
) -> Case | None:
    """Open a case for the speaking villager (once per idem_key), tell them its number and tell the cadre.
    None (and an explanation) when the villager has no household to route it by."""
    if ctx.account.household_id is None:
        ctx.reply("case.no_household")
        return None
    opened = await csvc.open_case(
        ctx.session, idem_key=idem_key, account=ctx.account, kind=kind, text=text, now=ctx.now, topic=topic,
        question_id=question_id,
    )
    case = opened.case
    if not opened.created:
        ctx.answer_callback()
        ctx.reply("case.already_open", number=case.id)
        return case
    ctx.audit("case.opened", "case", case.id, kind=case.kind, hardship=case.hardship)
    told = await ctx.notify(NewCase(case)) + await ctx.notify(NewCaseToLeader(case))
    cadre = await ctx.session.get(Person, case.cadre_id) if case.cadre_id else None
    name = cadre.name if cadre else ctx.t("case.your_team")
    if not told:
        # Kept for whoever takes the household on (the deadlines escalate it); the villager is not misled.
        ctx.reply("case.opened_unrouted", number=case.id)
    elif case.kind == CaseKind.CALLBACK.value:
        ctx.reply("case.opened_callback", number=case.id, cadre=name)
    elif case.hardship:
        ctx.reply("case.opened_hardship", number=case.id, cadre=name)
    else:
        days = ctx.core.services.rules.cases.first_reply_working_days
        ctx.reply("case.opened", number=case.id, cadre=name, days=days)
    if case.hardship:
        offer_hardship_self_report(ctx, case)
    return case


# --------------------------------------------------------------------------- triage routing
async def route_message(ctx: Ctx, kind: str, topic: str, question_id: int, text: str, said: str = "") -> None:
    """A villager's message the triage called a case, a hardship or out of scope ("other"). `said` is the
    policy engine's own sentence for it (for "other": that it is out of scope and who usually handles it)."""
    if kind == "other":
        if said:
            ctx.reply_text(said)
        ctx.reply(
            "case.pass_offer" if said else "case.other",
            InlineKeyboard(
                (
                    (Button(ctx.t("case.btn_pass"), CASE_PASS.pack(question_id)),),
                    (Button(ctx.t("case.btn_no"), CASE_KEEP.pack()),),
                )
            ),
        )
    else:
        since = ctx.now - timedelta(minutes=SAME_SITTING_MINUTES)
        open_case = await csvc.recent_open_case(ctx.session, ctx.account.id, since, ctx.account.household_id)
        if open_case is not None:
            await _add_to(ctx, open_case, text, kind == "hardship", topic)
            return
        case_kind = CaseKind.HARDSHIP if kind == "hardship" else CaseKind.CASE
        await open_and_tell(ctx, case_kind, f"q{question_id}", text, topic=topic, question_id=question_id)


async def _add_to(ctx: Ctx, case: Case, text: str, hardship: bool, topic: str) -> None:
    """A further message in the same sitting (villagers write a matter in several short lines): added to
    the open case; the cadre is told what was added, at once and urgently if it revealed a hardship."""
    became_hardship = csvc.add_to(case, text, hardship, topic, ctx.now)
    ctx.audit("case.added", "case", case.id, hardship=became_hardship)
    await ctx.notify(CaseAdded(case, csvc.storable_text(text), became_hardship))
    ctx.reply("case.added", number=case.id)
    if became_hardship:
        offer_hardship_self_report(ctx, case)


# --------------------------------------------------------------------------- voice and pictures
def reply_to_file(ctx: Ctx) -> None:
    """A villager's voice message, photo or document outside any dialog (routed by the policy handler, which
    first answers a caption): say honestly it cannot be understood yet, and offer a call-back."""
    ref = ctx.inc.files[0]
    code = _FILE_KINDS.get(ref.kind, "d")
    # The message id ties the button to this message: one case per message, however often it is pressed.
    msg = parse_id(ctx.inc.message_id) or int(ctx.now.timestamp())
    key = "case.voice_reply" if code == "v" else "case.picture_reply"
    ctx.reply(key, InlineKeyboard(((Button(ctx.t("case.btn_callback"), CASE_CALL.pack(code, msg)),),)))




# --------------------------------------------------------------------------- buttons
_STAFF_ACTIONS = {"open": CASE_OPEN, "rep": CASE_REPLY, "res": CASE_RESOLVE, "lead": CASE_TO_LEADER}


@router.callback(CASE_OPEN.prefix, private_only=True)  # villagers press some of these: not staff-only
async def on_button(ctx: Ctx) -> None:
    data = ctx.inc.callback_data
    if CASE_KEEP.parse(data) is not None:
        ctx.answer_callback()
        ctx.reply("case.not_passed")
        return
    if (passed := CASE_PASS.parse(data)) is not None:
        await _pass_on(ctx, passed[0])
        return
    if (call := CASE_CALL.parse(data)) is not None:
        what = ctx.t(f"case.what.{_WHAT[call[0]]}")
        await open_and_tell(ctx, CaseKind.CALLBACK, f"call:{ctx.account.id}:{call[1]}", what)
        return
    for action, button in _STAFF_ACTIONS.items():
        if (pressed := button.parse(data)) is not None:
            if ctx.role not in STAFF:
                _refuse(ctx, pressed[0])
                return
            case = await _load(ctx, pressed[0], lock=action != "open")
            if case is not None:
                await _staff_action(ctx, action, case)
            return
    ctx.answer_callback("core.button_expired")
    ctx.reply("core.button_expired")


async def _pass_on(ctx: Ctx, qid: int) -> None:
    """The villager asks to pass an out-of-scope matter on: it becomes a case (once)."""
    question = await ctx.session.get(PolicyQuestion, qid)
    if question is None or question.account_id != ctx.account.id:
        ctx.answer_callback("core.button_expired")
        ctx.reply("core.button_expired")
        return
    await open_and_tell(ctx, CaseKind.OTHER, f"q{question.id}", question.text, topic=question.topic,
                        question_id=question.id)


def _refuse(ctx: Ctx, case_id: int | None) -> None:
    ctx.audit("case.refused", "case", case_id, data=(ctx.inc.callback_data or "")[:64])
    ctx.answer_callback("core.not_allowed", alert=True)
    ctx.reply("core.not_allowed")


async def _load(ctx: Ctx, cid: int, *, lock: bool) -> Case | None:
    """The case if the speaker may handle it; otherwise a polite refusal and an audit row. Locked for a
    state change, so a cadre and the leader pressing at once change it (and tell the villager) once."""
    case = await ctx.session.get(Case, cid, with_for_update=lock or None)
    person_id = ctx.person.id if ctx.person else None
    if case is None or not await csvc.can_handle(ctx.session, person_id, ctx.role, case):
        _refuse(ctx, cid)
        return None
    return case


async def _staff_action(ctx: Ctx, action: str, case: Case) -> None:
    if action == "open":
        ctx.reply_text(await card(ctx, ctx.t, case), actions(ctx.t, case, ctx.role))
        return
    if case.status == CaseStatus.RESOLVED.value:
        ctx.answer_callback("case.already_resolved", number=case.id)
        ctx.reply("case.already_resolved", number=case.id)
        return
    if action == "rep":
        await ctx.core.start_dialog(ctx, "case_reply", {"case_id": case.id}, fresh=True)
    elif action == "res":
        csvc.resolve(case, "", ctx.now)
        ctx.audit("case.resolved", "case", case.id)
        ctx.answer_callback()
        ctx.reply("case.resolved", number=case.id)
        await ctx.notify(CaseResolved(case))
    else:
        leader = await leader_of(ctx, case)
        if leader is None:
            ctx.reply("case.no_leader")
            return
        if not csvc.hand_to_leader(case, ctx.now):
            ctx.answer_callback()
            ctx.reply("case.already_with_leader", number=case.id, leader=leader.name)
            return
        ctx.audit("case.to_leader", "case", case.id, to=leader.id)
        ctx.answer_callback()
        ctx.reply("case.handed", number=case.id, leader=leader.name)
        await ctx.notify(HandedToLeader(case, leader, ctx.person.name if ctx.person else ""))
        await ctx.notify(CaseWithLeader(case, leader.name))


# --------------------------------------------------------------------------- /cases
@router.command("cases", roles=STAFF)
async def list_cases(ctx: Ctx) -> None:
    assert ctx.person is not None
    rules = ctx.core.services.rules
    cases = await csvc.open_cases_for(ctx.session, ctx.person.id, ctx.role, limit=LIST_LIMIT)
    questions = await csvc.waiting_questions(ctx.session, ctx.person.id, limit=LIST_LIMIT)
    lines: list[str] = []
    buttons: list[tuple[Button, ...]] = []
    if cases:
        lines.append(ctx.t("case.list_head", n=len(cases)))
    for case, villager in cases:
        late = case.first_reply_at is None and rules.calendar.add_working_days(
            case.created_at.astimezone(ctx.core.clock.tz).date(), rules.cases.first_reply_working_days
        ) < ctx.today
        lines.append(
            ctx.t(
                "case.list_line",
                mark="⚠️" if case.hardship else ("⏰" if late else "•"),
                number=case.id,
                villager=villager,
                kind=ctx.t(f"case.kind.{case.kind}"),
                status=ctx.t(f"case.status.{case.status}"),
                age=age_days(ctx, case),
            )
        )
        buttons.append((Button(ctx.t("case.btn_open", number=case.id, villager=villager), f"cs:open:{case.id}"),))
    if questions:
        lines.append(ctx.t("case.questions_head", n=len(questions)))
    for q, villager in questions:
        age = (ctx.today - q.created_at.astimezone(ctx.core.clock.tz).date()).days
        lines.append(ctx.t("case.question_line", villager=villager, text=_short(q.text), age=age))
        buttons.append((Button(ctx.t("case.btn_answer", villager=villager), f"pq:reply:{q.id}"),))
    if not lines:
        lines.append(ctx.t("case.none_open"))
    if ctx.role in (Role.LEADER, Role.TOWNSHIP, Role.ADMIN):
        lines.append("")
        lines.extend(await _topics_lines(ctx))
    ctx.reply_text("\n".join(lines), InlineKeyboard(tuple(buttons[:40])) if buttons else None)


async def _topics_lines(ctx: Ctx) -> list[str]:
    """The topics villagers asked most this month (what the knowledge base should grow next)."""
    assert ctx.person is not None
    teams = None if ctx.role is Role.ADMIN else await csvc.led_team_ids(ctx.session, ctx.person.id)
    since, until = csvc.month_bounds(ctx.today, ctx.core.clock.tz)
    rows = await csvc.top_topics(ctx.session, teams, since, until)
    if not rows:
        return [ctx.t("case.topics_none")]
    lines = [ctx.t("case.topics_head")]
    for topic, n, answered in rows:
        lines.append(ctx.t("case.topics_line", topic=topic_label(ctx, ctx.t, topic), n=n, answered=answered))
    return lines


def _short(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"
