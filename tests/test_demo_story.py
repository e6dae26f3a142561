"""The demo village hangs together: families with plausible ages and relations, seasonal visits inside
the rules' windows with notes about that season's work, a start-up banner naming one person of each
role (a villager too) with how to chat as them, and README examples naming people the demo has."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.cli import demo_banner, invite_link_text
from bot.core.bootstrap import App
from bot.demo import _DONE, seed_demo
from bot.runners.console import _find_household
from bot.scheduler.rules import load_rules
from bot.services.onboarding import find_person
from bot.settings import REPO_DIR
from bot.store.enums import SEASONAL_KINDS, VisitKind
from bot.store.models import Household, Pairing, Person, Visit

CHILD = {"长子", "长女", "次子", "次女", "三子", "三女"}
GRANDCHILD = {"孙子", "孙女"}
PARENT = {"父亲", "母亲"}


async def _seed(app: App) -> object:
    async with app.core.sessions() as s, s.begin():
        return await seed_demo(s, app.core.clock.now().date())


async def test_families_are_plausible(app: App) -> None:
    await _seed(app)
    year = app.core.clock.now().year
    async with app.core.sessions() as s:
        households = (await s.scalars(select(Household).options(selectinload(Household.members)))).all()
    assert len(households) == 400
    for h in households:
        rel = Counter(m.relation for m in h.members)
        born = {m.relation: m.birth_year for m in h.members}
        assert rel["户主"] == 1 and rel["配偶"] <= 1 and rel["父亲"] <= 1 and rel["母亲"] <= 1, h.code
        assert h.members_count == len(h.members)
        head = born["户主"]
        assert head is not None and 18 <= year - head <= 90
        for m in h.members:
            assert m.birth_year is not None and m.birth_year <= year, (h.code, m.relation)
            age = year - m.birth_year
            if m.relation == "配偶":
                assert age >= 20 and abs(m.birth_year - head) <= 10, (h.code, age)
            elif m.relation in CHILD:
                assert m.birth_year - head >= 18, (h.code, m.relation)
            elif m.relation in GRANDCHILD:
                assert m.birth_year - head >= 36 and rel.keys() & CHILD, (h.code, m.relation)
            elif m.relation in PARENT:
                assert head - m.birth_year >= 18 and age <= 100, (h.code, m.relation)
            if m.relation != "户主" and m.relation in CHILD | GRANDCHILD and age < 6:
                assert m.occupation != "务农"  # no toddler farmers


async def test_seasonal_visits_match_the_season(app: App) -> None:
    await _seed(app)
    rules = load_rules()
    async with app.core.sessions() as s:
        visits = (await s.execute(select(Visit.visit_date, Visit.kind, Visit.done))).all()
    kinds = Counter(k for _, k, _ in visits)
    assert all(kinds[k.value] > 0 for k in (VisitKind.ROUTINE, VisitKind.AUTUMN))  # seeded before 28 Nov
    season_words = {VisitKind.SPRING: "春", VisitKind.SUMMER: "夏", VisitKind.AUTUMN: "秋"}
    for day, kind, done in visits:
        k = VisitKind(kind)
        assert done in _DONE[k]
        if k in SEASONAL_KINDS:
            first, last = rules.seasons.windows()[k.value].dates(day.year)
            assert first <= day <= last, (day, kind)
            assert season_words[k] in done or "小麦" in done or "麦种" in done
        else:  # a routine visit's note talks about no season's farm work
            assert not any(w in done for w in ("春耕", "夏收", "秋播", "秋收", "春播"))


async def test_banner_names_one_person_of_each_role_and_how_to_try_them(app: App) -> None:
    summary = await _seed(app)
    text = demo_banner(summary)  # type: ignore[arg-type]
    for role in ("帮扶干部 / cadre", "工作队长 / team leader", "乡镇联系人 / township", "县级干部 / county",
                 "群众 / villager"):
        assert role in text
    refs = re.findall(r"bangfu chat --as (\S+)", text)
    assert len(refs) == 5
    async with app.core.sessions() as s:
        roles = []
        for ref in refs:
            people = await find_person(s, ref)
            if people:
                assert len(people) == 1
                roles.append(people[0].role)
            else:
                [household] = await _find_household(s, ref)
                cadre = await s.scalar(
                    select(Person.name).join(Pairing, Pairing.cadre_id == Person.id)
                    .where(Pairing.household_id == household.id, Pairing.end_date.is_(None))
                )
                assert cadre and cadre in text  # the banner names the villager's own cadre
                roles.append("villager")
    assert roles == ["cadre", "leader", "township", "county", "villager"]


async def test_readme_examples_name_people_the_demo_has(app: App) -> None:
    await _seed(app)
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    people = re.findall(r"bangfu (?:chat --as|invite --person) ([^\s`]+)", readme)
    households = re.findall(r"bangfu invite --household ([^\s`]+)", readme)
    named = re.findall(r"(?:cadre|team leader|township contact|villager) ([\u4e00-\u9fff]{2,4})", readme)
    assert people and named
    async with app.core.sessions() as s:
        for ref in [*people, *named]:
            matches = await find_person(s, ref) or await _find_household(s, ref)
            assert len(matches) == 1, ref
        for code in households:
            assert len(await _find_household(s, code)) == 1, code


def test_invite_without_a_bot_username_says_how_to_set_it() -> None:
    text = invite_link_text(None, "ABCD2345")
    assert "BANGFU_BOT_USERNAME" in text and "t.me" in text and "/start ABCD2345" in text
    assert "https://t.me/" not in text  # no placeholder link
    assert invite_link_text("@qingshi_bot", "ABCD2345") == "https://t.me/qingshi_bot?start=ABCD2345"


async def test_every_month_of_the_demo_has_village_days(app: App) -> None:
    """Last month's report is as full as this one's: check-ins go back to the pairings' start."""
    from bot.io.report import monthly_figures

    await _seed(app)
    today = app.core.clock.now().date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    async with app.core.sessions() as s:
        f = await monthly_figures(s, last_month, None, rules=load_rules(), today=today)
    done, target = f.days
    assert target and 0.6 <= done / target <= 1.4
    done, target = f.visits
    assert target and done / target >= 0.6
