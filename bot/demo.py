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

from bot.scheduler.rules import Rules, load_rules
from bot.store.enums import HouseholdStatus, PovertyCause, VisitKind
from bot.store.models import (
    CheckIn,
    Household,
    HouseholdMember,
    MonitorCase,
    MonitorMeasure,
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
_HEALTH = ["健康", "健康", "健康", "长期慢性病", "残疾", "大病"]
_ELDER_EDU = ["小学", "初中", "文盲或半文盲", "小学"]
_ADULT_EDU = ["初中", "高中", "中专", "大专", "初中"]
_PLANS = [
    "发展林下养鸡，协调小额信贷5万元；安排一人就近务工。",
    "落实慢病签约服务和医疗救助；扶持种植柑橘3亩。",
    "两名子女享受教育资助；户主参加电工技能培训。",
    "危房改造已完成；申请公益性岗位（护林员）。",
    "入股合作社分红；帮助联系大棚蔬菜销路。",
]
# What was done on a visit, by kind: a seasonal visit talks about that season's farm work.
_DONE: dict[VisitKind, list[str]] = {
    VisitKind.ROUTINE: [
        "了解家庭近况，宣讲医保缴费政策",
        "帮助联系务工信息",
        "核对收入台账",
        "看望病人，了解报销情况",
    ],
    VisitKind.SPRING: ["查看春耕备耕情况，送去化肥两袋", "帮助联系春播种子和农资", "了解春耕用工，协调农机"],
    VisitKind.SUMMER: ["查看夏收进度，帮忙联系收割机", "了解夏粮收成，提醒汛期防范", "帮助抢收小麦"],
    VisitKind.AUTUMN: ["查看秋播准备情况，宣讲种粮补贴", "了解秋收收成，帮助联系玉米销路", "帮助秋播，送去麦种"],
}
_NEEDS = ["希望解决孩子上学交通问题", "需要养殖技术指导", "", "房屋漏雨需要维修", "想找附近的务工机会"]


# The people the README and the start-up banner name: fixed, so the examples always work.
LEADER = ("赵志刚", "19900000000")
CADRE = ("王建国", "19900000001")
TOWNSHIP = ("孙立平", "19900000099")
COUNTY = ("钱文华", "19900000098")  # 县级干部: reviews the monitoring cases
VILLAGER = ("张秀英", "18800000000")  # head of household DEMO0001, paired to CADRE


@dataclass
class DemoSummary:
    village: str
    households: int
    registered: int
    cadre: tuple[str, str]  # (name, phone)
    leader: tuple[str, str]
    created: bool
    township: tuple[str, str] = ("", "")
    county: tuple[str, str] = ("", "")
    monitor_cases: int = 0
    villager: tuple[str, str, str] = ("", "", "")  # (head's name, household phone, household code)
    villager_cadre: str = ""


async def _county_of(session: AsyncSession, village_id: int) -> tuple[str, str]:
    p = (await session.execute(select(Person).where(Person.role == "county", Person.village_id == village_id)
                               .order_by(Person.id))).scalars().first()
    return (p.name, p.phone or "") if p is not None else ("", "")


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, rng.choice((1, 2))))


async def seed_demo(session: AsyncSession, today: date, seed: int = 7, rules: Rules | None = None) -> DemoSummary:
    """Create the demo village once (idempotent) and return who to try it as.

    rules gives the seasonal windows the visits fall in (the shipped defaults when not given)."""
    existing = (
        await session.execute(select(Village).where(Village.code == DEMO_VILLAGE_CODE))
    ).scalar_one_or_none()
    if existing is None:
        await _create(session, today, random.Random(seed), rules or load_rules())
        created = True
    else:
        created = False
    village = (await session.execute(select(Village).where(Village.code == DEMO_VILLAGE_CODE))).scalar_one()
    team = (await session.execute(select(Team).where(Team.village_id == village.id))).scalar_one()
    leader = await session.get(Person, team.leader_id)
    township = await session.get(Person, team.township_contact_id) if team.township_contact_id else None
    cadre = (
        (
            await session.execute(
                select(Person).where(Person.team_id == team.id, Person.role == "cadre").order_by(Person.id)
            )
        )
        .scalars()
        .first()
    )
    villager = (
        await session.execute(
            select(Household, Person.name)
            .join(Pairing, (Pairing.household_id == Household.id) & Pairing.end_date.is_(None))
            .join(Person, Person.id == Pairing.cadre_id)
            .where(Household.village_id == village.id, Household.phone.is_not(None))
            .order_by(Household.code)
            .limit(1)
        )
    ).first()
    total = await session.scalar(
        select(func.count()).select_from(Household).where(Household.village_id == village.id)
    )
    registered = await session.scalar(
        select(func.count())
        .select_from(Household)
        .where(Household.village_id == village.id, Household.registered_poor.is_(True))
    )
    assert leader is not None and cadre is not None
    hh, hh_cadre = villager if villager is not None else (None, "")
    return DemoSummary(
        village.name,
        int(total or 0),
        int(registered or 0),
        (cadre.name, cadre.phone or ""),
        (leader.name, leader.phone or ""),
        created,
        township=(township.name, township.phone or "") if township else ("", ""),
        county=await _county_of(session, village.id),
        monitor_cases=int(await session.scalar(
            select(func.count()).select_from(MonitorCase).where(MonitorCase.village_id == village.id)) or 0),
        villager=(hh.head_name, hh.phone or "", hh.code) if hh is not None else ("", "", ""),
        villager_cadre=hh_cadre,
    )


def _members(rng: random.Random, head: str, count: int, today: date) -> list[HouseholdMember]:
    """A household that could be real: a head of 40 to 75, a spouse of about the same age, children born
    when the parents were 22 to 34, grandchildren only when a child is grown, parents only of a younger
    head. At most `count` people (fewer when the family drawn is smaller)."""
    year = today.year
    head_born = rng.randint(year - 75, year - 40)
    head_male = rng.random() < 0.75
    people = [
        HouseholdMember(
            name=head,
            relation="户主",
            gender="男" if head_male else "女",
            birth_year=head_born,
            health=rng.choice(_HEALTH),
            education=rng.choice(_ELDER_EDU if head_born < year - 60 else _ADULT_EDU),
            occupation="务农",
        )
    ]
    surname = head[0]

    def add(relation: str, gender: str, born: int, given_surname: bool = True) -> None:
        name = surname + rng.choice(_GIVEN) + rng.choice(_GIVEN) if given_surname else _name(rng)
        age = year - born
        people.append(
            HouseholdMember(
                name=name,
                relation=relation,
                gender=gender,
                birth_year=born,
                health=rng.choice(_HEALTH) if age >= 18 else "健康",
                education=("学龄前" if age < 6 else "在校生") if age < 18 else rng.choice(
                    _ELDER_EDU if age > 60 else _ADULT_EDU),
                occupation="学生" if 6 <= age < 18 else ("" if age < 6 else rng.choice(["务农", "务工", "务农"])),
            )
        )

    if len(people) < count and rng.random() < 0.9:
        add("配偶", "女" if head_male else "男", head_born + rng.randint(-4, 4), given_surname=False)
    sons = daughters = 0
    child_born = eldest = head_born + rng.randint(22, 30)
    while len(people) < count and child_born <= year and sons + daughters < 3:
        male = rng.random() < 0.5
        if male:
            sons += 1
            relation = ("长子", "次子", "三子")[sons - 1]
        else:
            daughters += 1
            relation = ("长女", "次女", "三女")[daughters - 1]
        add(relation, "男" if male else "女", child_born)
        child_born += rng.randint(2, 5)
        if child_born > head_born + 40:
            break
    if sons + daughters and len(people) < count and year - eldest >= 24:
        born = eldest + rng.randint(22, 30)
        for _ in range(count - len(people)):
            if born > year:
                break
            male = rng.random() < 0.5
            add("孙子" if male else "孙女", "男" if male else "女", born)
            born += rng.randint(2, 4)
    if len(people) < count and head_born >= year - 55:
        parent_born = head_born - rng.randint(24, 32)
        add("母亲", "女", parent_born, given_surname=False)
        if len(people) < count and rng.random() < 0.6:
            add("父亲", "男", parent_born - rng.randint(0, 4))
    return people


def _in_window(day: date, rules: Rules) -> VisitKind | None:
    for name, window in rules.seasons.windows().items():
        first, last = window.dates(day.year)
        if first <= day <= last:
            return VisitKind(name)
    return None


async def _create(session: AsyncSession, today: date, rng: random.Random, rules: Rules) -> None:
    utc, local = UTC, rules.tz
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
    used: set[str] = {LEADER[0], CADRE[0], TOWNSHIP[0], VILLAGER[0]}

    def unique_name() -> str:
        while True:
            n = _name(rng)
            if n not in used:
                used.add(n)
                return n

    leader = Person(
        name=LEADER[0],
        phone=LEADER[1],
        role="leader",
        team_id=team.id,
        village_id=village.id,
        work_unit="示例县农业农村局",
    )
    township = Person(name=TOWNSHIP[0], phone=TOWNSHIP[1], role="township", village_id=village.id)
    cadres = [
        Person(
            name=CADRE[0] if i == 1 else unique_name(),
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
        status = rng.choice([HouseholdStatus.LIFTED] * 6 + [HouseholdStatus.MONITORED] * 3)
        head = VILLAGER[0] if i == 0 else unique_name()
        phone = VILLAGER[1] if i == 0 else (f"1880000{i:04d}" if rng.random() < 0.7 else None)
        h = Household(
            code=f"DEMO{i + 1:04d}",
            village_id=village.id,
            group_no=group,
            head_name=head,
            phone=phone,
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
        h.members = _members(rng, head, rng.randint(1, 7), today)
        h.members_count = len(h.members)
        households.append(h)
    session.add_all(households)
    await session.flush()

    registered_hh = [h for h in households if h.registered_poor]
    start = date(today.year, 1, 1) if today.month > 3 else date(today.year - 1, 1, 1)
    for n, h in enumerate(registered_hh):
        cadre = cadres[n % len(cadres)]
        session.add(Pairing(cadre_id=cadre.id, household_id=h.id, start_date=start))
        # Months of visits, counted back from the latest: most households were seen within the
        # cadence, about one in five is overdue so /overdue has something to show. A visit inside a
        # seasonal window is usually that season's visit, and its note is about that season's work.
        gap = rng.randint(1, 28) if rng.random() < 0.8 else rng.randint(31, 75)
        day = today - timedelta(days=gap)
        while day >= start:
            season = _in_window(day, rules)
            kind = season if season is not None and rng.random() < 0.8 else VisitKind.ROUTINE
            session.add(
                Visit(
                    idem_key=f"demo-{h.id}-{day.isoformat()}",
                    household_id=h.id,
                    cadre_id=cadre.id,
                    visit_date=day,
                    kind=kind.value,
                    done=rng.choice(_DONE[kind]),
                    needs=rng.choice(_NEEDS),
                    lat=h.lat,
                    lon=h.lon,
                    location_status="ok" if h.lat else "none",
                    created_at=datetime.combine(day, time(15, 0), tzinfo=local).astimezone(utc),
                )
            )
            day -= timedelta(days=rng.randint(20, 35))
    # Village days since the pairings began (so every month's report has them): most cadres twice a
    # week, some often short; the days of this week so far too.
    weeks = (today - start).days // 7 + 1
    for cadre in cadres:
        habit = rng.choice(((2, 2, 2, 3), (2, 2, 1, 3), (1, 2, 1, 2), (2, 3, 2, 2)))
        for w in range(weeks):
            monday = today - timedelta(days=today.weekday() + 7 * w)
            days = [d for d in rng.sample(range(5), rng.choice(habit)) if start <= monday + timedelta(days=d) < today]
            for d in days:
                day = monday + timedelta(days=d)
                session.add(
                    CheckIn(
                        cadre_id=cadre.id,
                        day=day,
                        at=datetime.combine(day, time(9, 0), tzinfo=local).astimezone(utc),
                        lat=village.lat,
                        lon=village.lon,
                        village_id=village.id,
                    )
                )
    await session.flush()
    await _monitoring_cases(session, today, village, cadres[0], households, rules)


async def _monitoring_cases(session: AsyncSession, today: date, village: Village, cadre: Person,
                            households: list[Household], rules: Rules) -> None:
    """A county officer and a few monitoring cases at different steps, so every role has one to act on
    (issue 14): a self-report waiting for the township, a home check for the cadre, one at the township
    and county reviews, one in public notice, and a monitored household with a measure."""
    from bot.services import monitoring as mon
    from bot.store.enums import MonitorKind, MonitorSource, MonitorStep

    session.add(Person(name=COUNTY[0], phone=COUNTY[1], role="county", village_id=village.id))
    paired = list((await session.execute(
        select(Household).join(Pairing, Pairing.household_id == Household.id)
        .where(Pairing.cadre_id == cadre.id, Pairing.end_date.is_(None)).order_by(Household.code))).scalars())
    now = datetime.combine(today, time(9, 0), tzinfo=rules.tz).astimezone(UTC)
    plan = [
        (MonitorStep.ACCEPT, MonitorSource.SELF_REPORT, "老伴住院，自付医疗费很多"),
        (MonitorStep.VERIFY, MonitorSource.CADRE_CHECK, "走访发现家中主要劳力受伤"),
        (MonitorStep.TOWNSHIP, MonitorSource.DEPARTMENT, "医保部门预警：自付费用较高"),
        (MonitorStep.COUNTY, MonitorSource.CADRE_CHECK, "房屋受灾"),
        (MonitorStep.PUBLICIZE, MonitorSource.CADRE_CHECK, "孩子上大学，教育支出大"),
        (MonitorStep.FOLLOW_UP, MonitorSource.CADRE_CHECK, "务工收入骤减"),
    ]
    for (step, source, text), h in zip(plan, paired[1:], strict=False):
        case = await mon.open_case(session, rules, now, today, village_id=village.id, household_id=h.id,
                                   source=source, actor=cadre, head_name=h.head_name, phone=h.phone,
                                   risks=["illness"], description=text,
                                   department="医保" if source is MonitorSource.DEPARTMENT else "")
        if step is not MonitorStep.ACCEPT and step is not MonitorStep.VERIFY:
            case.kind = MonitorKind.SUDDEN.value
        case.step = step.value
        case.step_due = mon.step_due(rules, case, step, today)
        if step is MonitorStep.FOLLOW_UP:
            case.identified_on = today - timedelta(days=40)
            case.last_follow_up = today - timedelta(days=25)
            case.step_due = mon.step_due(rules, case, step, today)
            session.add(MonitorMeasure(case_id=case.id, topic="employment.support", note="公益岗位",
                                       started_on=today - timedelta(days=35), actor_person_id=cadre.id,
                                       created_at=now))
            h.status = HouseholdStatus.MONITORED.value
    await session.flush()
