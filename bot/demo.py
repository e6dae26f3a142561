"""`bangfu demo`: a fictional village shaped like a real one, with invented names only.

10 villager groups, ~400 households of which ~120 are registered (建档立卡), a work team of
8 cadres and a leader, pairings, a few months of visits and village-day check-ins.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.enums import HouseholdStatus, PovertyCause, VisitKind
from bot.store.models import (
    CheckIn,
    Household,
    HouseholdMember,
    Pairing,
    Person,
    Team,
    Village,
    Visit,
)

DEMO_VILLAGE_CODE = "DEMO-001"

# Invented combinations of common surnames and given-name characters.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁谢宋唐韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程魏苏吕丁沈任姚卢"
)
_GIVEN = "建国红梅秀英志强桂兰玉华明亮春生海燕文军丽娟德福金花永平小龙冬梅俊峰淑芬立新翠萍家宝喜凤长林月娥"
_RELATIONS = ["配偶", "长子", "长女", "次子", "次女", "父亲", "母亲", "孙子", "孙女"]
# Birth year relative to the head of household, by relation.
_RELATION_AGE_GAP = {
    "配偶": 0,
    "长子": 24,
    "长女": 23,
    "次子": 28,
    "次女": 27,
    "父亲": -26,
    "母亲": -24,
    "孙子": 48,
    "孙女": 47,
}
_HEALTH = ["健康", "健康", "健康", "长期慢性病", "残疾", "大病"]
_EDU = ["小学", "初中", "高中", "文盲或半文盲", "中专", "大专"]
_PLANS = [
    "发展林下养鸡，协调小额信贷5万元；安排一人就近务工。",
    "落实慢病签约服务和医疗救助；扶持种植柑橘3亩。",
    "两名子女享受教育资助；户主参加电工技能培训。",
    "危房改造已完成；申请公益性岗位（护林员）。",
    "入股合作社分红；帮助联系大棚蔬菜销路。",
]
_DONE = [
    "了解家庭近况，宣讲医保缴费政策",
    "查看春耕备耕情况，送去化肥两袋",
    "帮助联系务工信息",
    "核对收入台账",
    "看望病人，了解报销情况",
]
_NEEDS = ["希望解决孩子上学交通问题", "需要养殖技术指导", "", "房屋漏雨需要维修", "想找附近的务工机会"]


@dataclass
class DemoSummary:
    village: str
    households: int
    registered: int
    cadre: tuple[str, str]
    leader: tuple[str, str]
    created: bool


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, rng.choice((1, 2))))


async def seed_demo(session: AsyncSession, today: date, seed: int = 7) -> DemoSummary:
    """Create the demo village once (idempotent) and return who to try it as."""
    existing = (
        await session.execute(select(Village).where(Village.code == DEMO_VILLAGE_CODE))
    ).scalar_one_or_none()
    if existing is None:
        await _create(session, today, random.Random(seed))
        created = True
    else:
        created = False
    village = (await session.execute(select(Village).where(Village.code == DEMO_VILLAGE_CODE))).scalar_one()
    team = (await session.execute(select(Team).where(Team.village_id == village.id))).scalar_one()
    leader = await session.get(Person, team.leader_id)
    cadre = (
        (
            await session.execute(
                select(Person).where(Person.team_id == team.id, Person.role == "cadre").order_by(Person.id)
            )
        )
        .scalars()
        .first()
    )
    total = await session.scalar(
        select(func.count()).select_from(Household).where(Household.village_id == village.id)
    )
    registered = await session.scalar(
        select(func.count())
        .select_from(Household)
        .where(Household.village_id == village.id, Household.registered_poor.is_(True))
    )
    assert leader is not None and cadre is not None
    return DemoSummary(
        village.name,
        int(total or 0),
        int(registered or 0),
        (cadre.name, cadre.phone or ""),
        (leader.name, leader.phone or ""),
        created,
    )


async def _create(session: AsyncSession, today: date, rng: random.Random) -> None:
    utc = UTC
    village = Village(
        code=DEMO_VILLAGE_CODE,
        name="青石村（演示）",
        township="平安镇（演示）",
        county="示例县",
        county_code="EX0001",
        groups_count=10,
        lat=25.8500,
        lon=116.2200,
    )
    session.add(village)
    await session.flush()
    team = Team(name="青石村驻村工作队（演示）", village_id=village.id)
    session.add(team)
    await session.flush()
    used: set[str] = set()

    def unique_name() -> str:
        while True:
            n = _name(rng)
            if n not in used:
                used.add(n)
                return n

    leader = Person(
        name=unique_name(),
        phone="19900000000",
        role="leader",
        team_id=team.id,
        village_id=village.id,
        work_unit="示例县农业农村局",
    )
    township = Person(name=unique_name(), phone="19900000099", role="township", village_id=village.id)
    cadres = [
        Person(
            name=unique_name(),
            phone=f"1990000{i:04d}",
            role="cadre",
            team_id=team.id,
            village_id=village.id,
            work_unit=rng.choice(
                ["示例县教育局", "示例县卫健局", "示例县交通局", "平安镇政府", "示例县供电所"]
            ),
        )
        for i in range(1, 9)
    ]
    session.add_all([leader, township, *cadres])
    await session.flush()
    team.leader_id = leader.id
    team.township_contact_id = township.id

    causes = list(PovertyCause)
    households: list[Household] = []
    for i in range(400):
        group = i % 10 + 1
        registered = i % 10 < 3  # 120 of 400
        status = rng.choice(
            [HouseholdStatus.LIFTED] * 7 + [HouseholdStatus.MONITORED] * 2
        )
        h = Household(
            code=f"DEMO{i + 1:04d}",
            village_id=village.id,
            group_no=group,
            head_name=unique_name(),
            members_count=rng.randint(1, 7),
            phone=f"1880000{i:04d}" if rng.random() < 0.7 else None,
            address=f"青石村{group}组{rng.randint(1, 60)}号",
            lat=village.lat + rng.uniform(-0.01, 0.01) if village.lat else None,
            lon=village.lon + rng.uniform(-0.01, 0.01) if village.lon else None,
            poverty_causes=[c.value for c in rng.sample(causes, rng.choice((1, 1, 2)))] if registered else [],
            status=status.value if registered else HouseholdStatus.GENERAL.value,
            registered_poor=registered,
            income_per_head=Decimal(rng.randint(5200, 16000)),
            income_year=today.year - 1,
            plan=rng.choice(_PLANS) if registered else "",
        )
        head_born = rng.randint(1950, 1990)
        h.members = [
            HouseholdMember(
                name=h.head_name,
                relation="户主",
                birth_year=head_born,
                health=rng.choice(_HEALTH),
                education=rng.choice(_EDU),
                occupation="务农",
            )
        ]
        for _ in range(h.members_count - 1):
            relation = rng.choice(_RELATIONS)
            born = head_born + _RELATION_AGE_GAP[relation] + rng.randint(-3, 3)
            h.members.append(
                HouseholdMember(
                    name=h.head_name[0] + rng.choice(_GIVEN) + rng.choice(_GIVEN)
                    if relation not in ("配偶", "母亲")
                    else _name(rng),
                    relation=relation,
                    birth_year=min(born, today.year),
                    health=rng.choice(_HEALTH),
                    education=rng.choice(_EDU),
                )
            )
        households.append(h)
    session.add_all(households)
    await session.flush()

    registered_hh = [h for h in households if h.registered_poor]
    start = date(today.year, 1, 1) if today.month > 3 else date(today.year - 1, 1, 1)
    for n, h in enumerate(registered_hh):
        cadre = cadres[n % len(cadres)]
        session.add(Pairing(cadre_id=cadre.id, household_id=h.id, start_date=start))
        # Months of visits, counted back from the latest: most households were seen within the
        # 30-day cadence, about one in five is overdue so /overdue has something to show.
        gap = rng.randint(1, 28) if rng.random() < 0.8 else rng.randint(31, 75)
        day = today - timedelta(days=gap)
        while day >= start:
            kind = _season_kind(day) if rng.random() < 0.6 else VisitKind.ROUTINE
            session.add(
                Visit(
                    idem_key=f"demo-{h.id}-{day.isoformat()}",
                    household_id=h.id,
                    cadre_id=cadre.id,
                    visit_date=day,
                    kind=kind.value,
                    done=rng.choice(_DONE),
                    needs=rng.choice(_NEEDS),
                    lat=h.lat,
                    lon=h.lon,
                    location_status="ok" if h.lat else "none",
                    created_at=datetime.combine(day, time(15, 0), tzinfo=utc),
                )
            )
            day -= timedelta(days=rng.randint(20, 35))
    # Village days: the last four weeks, most cadres twice a week, some short.
    for cadre in cadres:
        per_week = rng.choice((1, 2, 2, 3))
        for w in range(4):
            monday = today - timedelta(days=today.weekday() + 7 * (w + 1))
            for d in rng.sample(range(5), per_week):
                day = monday + timedelta(days=d)
                session.add(
                    CheckIn(
                        cadre_id=cadre.id,
                        day=day,
                        at=datetime.combine(day, time(9, 0), tzinfo=utc),
                        lat=village.lat,
                        lon=village.lon,
                        village_id=village.id,
                    )
                )
    await session.flush()


def _season_kind(day: date) -> VisitKind:
    if 3 <= day.month <= 4:
        return VisitKind.SPRING
    if 5 <= day.month <= 7:
        return VisitKind.SUMMER
    if 9 <= day.month <= 10:
        return VisitKind.AUTUMN
    return VisitKind.ROUTINE
