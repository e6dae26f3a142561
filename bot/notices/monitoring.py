"""Notices of the monitoring workflow: a step waiting for someone, an overdue step, the reporter told.
`card` and `actions` are also the officers' own view of a case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.buttons import (
    MON_APPROVE,
    MON_CLOSE,
    MON_FOLLOW_UP,
    MON_MEASURE,
    MON_NOTICE,
    MON_REJECT,
    MON_SCREEN,
    MON_SEND_BACK,
)
from bot.core.context import Ctx, Rendered
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Safe, Translator
from bot.services import monitoring as mon
from bot.services.households import household_accounts, reachable_accounts
from bot.store.enums import MonitorStep, Role
from bot.store.models import Account, MonitorCase, Village

TOPICS = (
    "medical.assistance", "medical.serious_illness", "welfare.dibao", "welfare.temporary", "welfare.tekun",
    "welfare.disability", "welfare.pension", "employment.support", "industry.support", "education.student_aid",
    "education.rain_dew", "finance.microcredit", "subsidy.housing",
)


async def card(ctx: Ctx, t: Translator, case: MonitorCase, *, history: bool = False) -> str:
    """The case as one message: who, where, type, step and due date, measures (no ID, phone or health)."""
    village = await ctx.session.get(Village, case.village_id)
    lines = [
        t("mon.card.head", id=case.id, name=case.head_name or "-", village=village.name if village else ""),
        t("mon.card.step", phase=t(f"mon.phase.{case.phase}"), step=t(f"mon.step.{case.step}"),
          due=case.step_due.isoformat() if case.step_due else "-"),
        t("mon.card.kind", kind=t(f"mon.kind.{case.kind}") if case.kind else t("mon.kind.none"),
          source=t(f"mon.source.{case.source}"),
          risks="、".join(t(f"mon.risk.{r}") for r in case.risks) or "-"),
    ]
    if case.id_masked:
        lines.append(t("mon.card.id", id=case.id_masked))
    if case.description:
        lines.append(t("mon.card.description", text=case.description))
    if case.income_per_head is not None:
        lines.append(t("mon.card.income", amount=f"{case.income_per_head}"))
    measures = await mon.measures_of(ctx.session, case.id)
    for m in measures:
        lines.append(t("mon.card.measure", topic=t(f"mon.topic.{m.topic}"), note=m.note, on=m.started_on.isoformat()))
    if history:
        for e in await mon.history(ctx.session, case.id):
            lines.append(t("mon.card.event", at=e.at.astimezone(ctx.core.clock.tz).strftime("%m-%d %H:%M"),
                           step=t(f"mon.step.{e.step}"), action=t(f"mon.action.{e.action}"), result=e.result))
    return "\n".join(lines)


def actions(t: Translator, case: MonitorCase, role: Role) -> InlineKeyboard | None:
    """The buttons for a role on the case's current step (none when the role does not own it)."""
    if not case.open:
        return None
    step = MonitorStep(case.step)
    if role not in mon.OWNERS.get(step, frozenset()):
        return None
    rows: list[tuple[Button, ...]] = []
    if step is MonitorStep.PUBLICIZE:
        rows.append((Button(t("mon.btn.notice"), MON_NOTICE.pack(case.id)),))
    if step is MonitorStep.VERIFY:
        rows.append((Button(t("mon.btn.screen"), MON_SCREEN.pack(case.id)),))
    if step in (MonitorStep.MEASURES, MonitorStep.FOLLOW_UP):
        rows.append((Button(t("mon.btn.measure"), MON_MEASURE.pack(case.id)),))
    if step is MonitorStep.FOLLOW_UP:
        rows.append((Button(t("mon.btn.follow_up"), MON_FOLLOW_UP.pack(case.id)),
                     Button(t("mon.btn.close"), MON_CLOSE.pack(case.id))))
    else:
        rows.append((Button(t(f"mon.btn.approve.{step.value}"), MON_APPROVE.pack(case.id, step.value)),))
    if step in mon.REVIEW_STEPS:
        review: list[Button] = []
        if step is not MonitorStep.ACCEPT:
            review.append(Button(t("mon.btn.send_back"), MON_SEND_BACK.pack(case.id, step.value)))
        review.append(Button(t("mon.btn.reject"), MON_REJECT.pack(case.id, step.value)))
        rows.append(tuple(review))
    return InlineKeyboard(tuple(rows))


async def _accounts(ctx: Ctx, people: Sequence[object]) -> list[Account]:
    out: list[Account] = []
    for p in people:
        if ctx.person is not None and getattr(p, "id", None) == ctx.person.id:
            continue
        out += await reachable_accounts(ctx.session, p.id)  # type: ignore[attr-defined]
    return out


@dataclass(frozen=True)
class StepWaiting:
    """The case moved to a step: the people who own it are told, with its buttons."""

    case: MonitorCase

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        return await _accounts(ctx, await mon.responsible(ctx.session, self.case))

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        role = mon.PRIMARY.get(MonitorStep(self.case.step), Role.LEADER)
        text = t("mon.notice.waiting") + "\n" + await card(ctx, t, self.case)
        return Rendered(t("cadre.raw", text=Safe(text)), actions(t, self.case, role))


@dataclass(frozen=True)
class ReporterTold:
    """A self-reporting household is told what became of its report (accepted, rejected, identified…)."""

    case: MonitorCase
    key: str
    reason: str = ""

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        if self.case.reporter_account_id is not None:
            acc = await ctx.session.get(Account, self.case.reporter_account_id)
            return [acc] if acc is not None and not acc.unreachable else []
        if self.case.household_id is not None and self.case.source == "self_report":
            return await household_accounts(ctx.session, self.case.household_id)
        return []

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        return Rendered(t(self.key, id=self.case.id, reason=self.reason), None)
