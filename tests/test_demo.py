"""The demo village is shaped like a real one and seeding it twice changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.core.bootstrap import App
from bot.demo import seed_demo
from bot.store.models import Household, Pairing, Person, Visit


async def test_demo_shape_and_idempotence(app: App) -> None:
    async with app.core.sessions() as s, s.begin():
        first = await seed_demo(s, app.core.clock.now().date())
    async with app.core.sessions() as s, s.begin():
        again = await seed_demo(s, app.core.clock.now().date())
        households = await s.scalar(select(func.count()).select_from(Household))
        pairings = await s.scalar(select(func.count()).select_from(Pairing).where(Pairing.end_date.is_(None)))
        cadres = await s.scalar(select(func.count()).select_from(Person).where(Person.role == "cadre"))
        visits = await s.scalar(select(func.count()).select_from(Visit))
    assert first.created and not again.created
    assert households == 400 and first.registered == 120
    assert pairings == 120 and 6 <= (cadres or 0) <= 10
    assert (visits or 0) > 120
    assert first.cadre[1] and first.leader[1]


async def test_demo_has_monitoring_cases_for_every_role(app: App) -> None:
    from bot.services import monitoring as mon
    from bot.store.enums import Role
    from bot.store.models import MonitorCase

    async with app.core.sessions() as s, s.begin():
        summary = await seed_demo(s, app.core.clock.now().date())
        assert summary.county[0] and summary.monitor_cases >= 5
        steps = {c.step for c in (await s.execute(select(MonitorCase))).scalars()}
        assert {"accept", "verify", "township", "county", "publicize", "follow_up"} <= steps
        for name in (summary.cadre[0], summary.leader[0], summary.township[0], summary.county[0]):
            person = (await s.execute(select(Person).where(Person.name == name))).scalars().first()
            assert person is not None
            cases = await mon.cases_in_scope(s, person)
            owned = [c for c in cases if Role(person.role) in mon.OWNERS.get(c.step, frozenset())]  # type: ignore[call-overload]
            assert owned, f"{person.role} has nothing to act on"
