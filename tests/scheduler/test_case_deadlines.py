"""Villagers' cases past their deadlines ([cases] in the rules file), on a real database: no first reply
within 3 working days reminds the cadre and alerts the leader once; unresolved after 20 working days
escalates to the township contact. A replied case is not reminded; a resolved one is left alone."""

from __future__ import annotations

from sched_helpers import Team1, local, seed_team
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.scheduler.rules import Rules
from bot.scheduler.tick import run_tick
from bot.store.models import Case, Outbox

Sessions = async_sessionmaker[AsyncSession]


async def _add_case(sessions: Sessions, w: Team1, key: str, household: str, cadre: int, text: str,
                    **extra: object) -> int:
    created = local(2026, 3, 6, 10)  # Friday
    async with sessions() as s, s.begin():
        values: dict[str, object] = {"status": "open", **extra}
        case = Case(idem_key=key, household_id=w.hh[household], cadre_id=cadre, team_id=w.team_id, kind="case",
                    hardship=False, topic="none", text=text, escalation_level=0, reply_text="",
                    resolution_note="", created_at=created, updated_at=created, **values)
        s.add(case)
        await s.flush()
        return case.id


async def _outbox(sessions: Sessions, rule: str) -> list[Outbox]:
    async with sessions() as s:
        return list((await s.scalars(select(Outbox).where(Outbox.rule == rule).order_by(Outbox.id))).all())


async def test_case_deadlines_remind_alert_and_escalate(sessions: Sessions, rules: Rules, catalogs: Catalogs) -> None:
    w = await seed_team(sessions)
    late = await _add_case(sessions, w, "q1", "H1", w.a, "低保三个月没到账")
    await _add_case(sessions, w, "q2", "H3", w.b, "补贴卡没发", first_reply_at=local(2026, 3, 9, 10),
                    status="replied")
    await _add_case(sessions, w, "q3", "H2", w.a, "已经办好的事", status="resolved",
                    resolved_at=local(2026, 3, 7, 10))

    async def tick(at: object) -> list[str]:
        return (await run_tick(sessions, rules, catalogs, at)).ran  # type: ignore[arg-type]

    # Wednesday 11 March: 3 working days (Mon 9, Tue 10, Wed 11) are not over yet.
    assert "cases" in await tick(local(2026, 3, 11, 9, 0))
    assert await _outbox(sessions, "case.reply") == []
    # Thursday 12 March: past the first-reply deadline; the cadre and the leader are told, once.
    await tick(local(2026, 3, 12, 9, 0))
    reply = await _outbox(sessions, "case.reply")
    assert sorted(r.chat_id for r in reply) == sorted([w.chat[w.a], w.chat[w.leader]])
    assert all(f"编号 {late}" in r.payload["text"] and "没到账" in r.payload["text"] for r in reply)
    await tick(local(2026, 3, 13, 9, 0))
    assert len(await _outbox(sessions, "case.reply")) == 2
    # Past 20 working days (3 April) unresolved, replied or not: the township contact and the leader, for
    # each of the two open cases; escalated once.
    await tick(local(2026, 4, 4, 9, 0))
    await tick(local(2026, 4, 5, 9, 0))
    resolve = await _outbox(sessions, "case.resolve")
    assert sorted(r.chat_id for r in resolve) == sorted([w.chat[w.township], w.chat[w.leader]] * 2)
    async with sessions() as s:
        levels = dict((await s.execute(select(Case.idem_key, Case.escalation_level))).all())
    assert levels == {"q1": 1, "q2": 1, "q3": 0}
