"""Escalate WeCom alerts nobody acted on to SMS.

WeCom gives no read receipt for app messages, so "not read" is: the alert (an outbox row of channel
"wecom" for one of the leaders' alert rules) was sent more than N hours ago (BANGFU_SMS_ALERT_AFTER_HOURS)
and the recipient's account has done nothing since — no button pressed, no reply, no dialog step (no
audit-log row and no dialog-state change by that account after the alert). Each alert is escalated at
most once (a scheduler_marks row "sms:<outbox id>"), only within three days of being sent, and only to a
person with a phone; a send our per-number limits refuse is tried again on the next run.
Run it from cron or a timer: `bangfu sms escalate` (every 15 minutes is plenty).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.sms.sender import Limited, Sent, SmsSender
from bot.clock import Clock
from bot.i18n import Translator
from bot.store.models import Account, AuditLog, DialogState, Outbox, Person, SchedulerMark

ALERT_RULES = ("visit.leader", "vd.shortfall", "diff.ack", "diff.decide")
ALERT_PREFIX = "season.close."
KEEP = timedelta(days=3)


def what(t: Translator, rule: str) -> str:
    key = "sms.what.season" if rule.startswith(ALERT_PREFIX) else f"sms.what.{rule}"
    return t(key)


async def escalate_unanswered(sessions: async_sessionmaker[AsyncSession], sms: SmsSender, clock: Clock,
                              t: Translator, after_hours: float) -> dict[str, int]:
    now = clock.now()
    counts = {"sms": 0, "acted": 0, "no_phone": 0, "limited": 0, "failed": 0}
    async with sessions() as s:
        rows = (await s.execute(
            select(Outbox.id, Outbox.rule, Outbox.sent_at, Person.name, Person.phone, Account.id)
            .join(Account, Account.id == Outbox.account_id)
            .join(Person, Person.id == Account.person_id)
            .where(Outbox.channel == "wecom", Outbox.status == "sent",
                   Outbox.sent_at < now - timedelta(hours=after_hours), Outbox.sent_at > now - KEEP,
                   or_(Outbox.rule.in_(ALERT_RULES), Outbox.rule.like(ALERT_PREFIX + "%")),
                   ~exists().where(SchedulerMark.key == "sms:" + Outbox.id.cast(SchedulerMark.key.type)))
            .order_by(Outbox.sent_at)
        )).all()
    for row_id, rule, sent_at, name, phone, account_id in rows:
        async with sessions() as s:
            acted = (await s.execute(select(
                exists().where(AuditLog.account_id == account_id, AuditLog.at > sent_at)
                | exists().where(DialogState.account_id == account_id, DialogState.updated_at > sent_at)
            ))).scalar_one()
        outcome = "acted" if acted else "no_phone" if not phone else ""
        if not outcome and phone:
            out = await sms.send(phone, "alert_unanswered", name=name[:10], what=what(t, rule),
                                 hours=str(int(after_hours)))
            outcome = "sms" if isinstance(out, Sent) else "limited" if isinstance(out, Limited) else "failed"
        counts[outcome] += 1
        if outcome != "limited":
            async with sessions() as s, s.begin():
                s.add(SchedulerMark(key=f"sms:{row_id}", value=outcome, updated_at=now))
    return counts
