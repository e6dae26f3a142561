"""A leader's WeCom alert nobody acted on goes by SMS after N hours, once; one acted on does not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels.sms.alerts import escalate_unanswered
from bot.channels.sms.sender import SmsSender
from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.store.models import Account, AuditLog, Outbox
from tests.conftest import World
from tests.fakesms import FakeSms


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_unanswered_alert_escalates_once(app: App, world: World, sms: SmsSender, fakesms: FakeSms,
                                               clock: FixedClock) -> None:
    now = clock.now()
    async with app.core.sessions() as s, s.begin():
        leader = Account(channel="wecom", external_id="zhaoduizhang", chat_id="zhaoduizhang", person_id=world.leader_id,
                         created_at=now)
        cadre = Account(channel="wecom", external_id="wangjianguo", chat_id="wangjianguo",
                        person_id=world.cadre_ids[0], created_at=now)
        s.add_all([leader, cadre])
        await s.flush()
        for acc, rule in ((leader, "visit.leader"), (cadre, "diff.ack"), (leader, "vd.plan")):
            s.add(Outbox(dedup_key=f"{rule}:x:{acc.id}", account_id=acc.id, channel="wecom", chat_id=acc.chat_id,
                         rule=rule, payload={}, status="sent", not_before=now, created_at=now, sent_at=now))
        # The cadre pressed a button an hour after the alert.
        s.add(AuditLog(at=now + timedelta(hours=1), account_id=cadre.id, action="difficulty.ack"))
    t = app.core.catalogs.get("zh_CN")
    clock.advance(hours=2)
    assert (await escalate_unanswered(app.core.sessions, sms, clock, t, 4.0))["sms"] == 0  # too early
    clock.advance(hours=3)
    counts = await escalate_unanswered(app.core.sessions, sms, clock, t, 4.0)
    assert counts["sms"] == 1 and counts["acted"] == 1
    [m] = fakesms.sent
    assert m.phone == "13900000000" and m.params["name"] == "赵队长" and m.params["hours"] == "4"
    assert "逾期" in m.params["what"]
    clock.advance(hours=1)
    assert (await escalate_unanswered(app.core.sessions, sms, clock, t, 4.0))["sms"] == 0
    assert len(fakesms.sent) == 1 and fakesms.violations == []
    async with app.core.sessions() as s:
        assert len((await s.execute(select(Outbox))).all()) == 3
