"""Ledger export: contents read back with openpyxl, photos in the zip, and the households/pairings
round trip into a second database."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from io_helpers import roster_bytes
from sqlalchemy import select
from sqlalchemy.orm import aliased

from bot.io.export import export_workbook, export_zip
from bot.io.format import HOUSEHOLDS
from bot.io.roster import import_file
from bot.io.template import sample_rows
from bot.store.db import create_engine, session_factory
from bot.store.models import (
    CheckIn,
    Difficulty,
    Household,
    HouseholdMember,
    Pairing,
    Person,
    Photo,
    Team,
    Village,
    Visit,
)

H = {c.key: i for i, c in enumerate(HOUSEHOLDS.columns)}
NOV1, NOV30 = date(2026, 11, 1), date(2026, 11, 30)


async def _load_sample(sessions: Any, clock: Any, rows: dict[str, Any] | None = None) -> None:
    async with sessions() as s:
        result = await import_file(s, roster_bytes(rows or sample_rows()), "r.xlsx", clock=clock)
        assert result.applied, [(p.key, p.args) for p in result.problems]
        await s.commit()


async def _current_pairing(s: Any, team_name: str) -> tuple[Team, Person, Household]:
    team = (await s.execute(select(Team).where(Team.name == team_name))).scalar_one()
    cadre, hh = (
        await s.execute(
            select(Person, Household)
            .join(Pairing, Pairing.cadre_id == Person.id)
            .join(Household, Pairing.household_id == Household.id)
            .where(Person.team_id == team.id, Pairing.end_date.is_(None))
            .order_by(Household.code)
            .limit(1)
        )
    ).one()
    return team, cadre, hh


async def _seed_activity(sessions: Any, media: Path) -> dict[str, Any]:
    """Visits, a difficulty, check-ins and photos (files in media), as the chat would have stored them."""
    async with sessions() as s:
        team1, cadre1, hh1 = await _current_pairing(s, "石桥村驻村工作队")
        _team2, cadre2, hh2 = await _current_pairing(s, "青山村驻村工作队")
        at = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
        v1 = Visit(
            idem_key="v1",
            household_id=hh1.id,
            cadre_id=cadre1.id,
            visit_date=date(2026, 11, 5),
            kind="autumn",
            done="送去秋播种子，讲解医保报销",
            needs="想学养蜂",
            location_status="ok",
            distance_m=42.4,
            villager_confirmed=True,
            created_at=at,
        )
        v2 = Visit(
            idem_key="v2",
            household_id=hh2.id,
            cadre_id=cadre2.id,
            visit_date=date(2026, 11, 6),
            kind="routine",
            created_at=at,
        )
        v3 = Visit(
            idem_key="v3",
            household_id=hh1.id,
            cadre_id=cadre1.id,
            visit_date=date(2026, 10, 1),
            kind="routine",
            created_at=at,
        )
        d1 = Difficulty(
            idem_key="d1",
            reporter_id=cadre1.id,
            team_id=team1.id,
            household_id=hh1.id,
            category="water",
            description="饮水管道冻裂",
            urgency="high",
            status="resolved",
            resolution_note="水务站已修复",
            created_at=datetime(2026, 11, 3, 2, 0, tzinfo=UTC),
            resolved_at=datetime(2026, 11, 10, 8, 0, tzinfo=UTC),
        )
        s.add_all([v1, v2, v3, d1])
        await s.flush()
        s.add_all(
            [
                Photo(visit_id=v1.id, file_id="f1", local_path="v1.jpg", created_at=at),
                Photo(visit_id=v1.id, file_id="f2", local_path=str(media / "gone.jpg"), created_at=at),
                Photo(difficulty_id=d1.id, file_id="f3", local_path=str(media / "d1.jpg"), created_at=at),
                CheckIn(
                    cadre_id=cadre1.id,
                    day=date(2026, 11, 2),
                    at=datetime(2026, 11, 2, 1, 30, tzinfo=UTC),
                    lat=25.04,
                    lon=102.71,
                ),
                CheckIn(
                    cadre_id=cadre2.id, day=date(2026, 11, 2), at=datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
                ),
            ]
        )
        await s.commit()
        return {
            "team1": team1.id,
            "cadre1": cadre1.name,
            "hh1": (hh1.code, hh1.head_name),
            "v1": v1.id,
            "d1": d1.id,
        }


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """The photo folder with two of the three photos the seeded rows mention."""
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "v1.jpg").write_bytes(b"\xff\xd8\xff fake jpeg one")
    (folder / "d1.jpg").write_bytes(b"\xff\xd8\xff fake jpeg two")
    return folder


def _sheet(data: bytes, title: str) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data))[title]


def _rows_as_dicts(ws: Any) -> list[dict[str, Any]]:
    header = [c.value for c in ws[1]]
    return [dict(zip(header, [c.value for c in row], strict=True)) for row in ws.iter_rows(min_row=2)]


async def test_ledgers_read_back(sessions: Any, io_clock: Any, media: Path) -> None:
    await _load_sample(sessions, io_clock)
    seeded = await _seed_activity(sessions, media)
    async with sessions() as s:
        data = await export_workbook(
            s, ["visits", "difficulties", "villagedays"], NOV1, NOV30, seeded["team1"]
        )
        everyone = await export_workbook(s, "visits", NOV1, NOV30)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["走访记录", "问题台账", "驻村打卡"]
    visits = wb["走访记录"]
    assert visits.freeze_panes == "A2"
    assert visits.column_dimensions["L"].width == 36
    (v,) = _rows_as_dicts(visits)  # the other team's visit and October's are not in it
    assert v["走访日期"] == datetime(2026, 11, 5)
    assert visits["B2"].is_date and visits["B2"].number_format == "yyyy-mm-dd"
    assert (v["户编号"], v["户主姓名"]) == seeded["hh1"]
    assert v["帮扶责任人"] == seeded["cadre1"]
    assert (v["走访类型"], v["帮扶内容"], v["群众诉求"]) == (
        "秋播走访",
        "送去秋播种子，讲解医保报销",
        "想学养蜂",
    )
    assert (v["定位"], v["距离（米）"], v["群众确认"]) == ("已定位", 42, "已确认")
    assert v["照片"].startswith(f"photos/visit-{seeded['v1']}-") and "、" in v["照片"]
    assert v["登记时间"] == datetime(2026, 11, 5, 10, 0)  # Beijing time
    (d,) = _rows_as_dicts(wb["问题台账"])
    assert (d["登记日期"], d["问题类别"], d["紧急程度"], d["办理状态"]) == (
        datetime(2026, 11, 3),
        "饮水安全",
        "紧急",
        "已办结",
    )
    assert (d["办结时间"], d["办理天数"], d["办理结果"]) == (datetime(2026, 11, 10, 16, 0), 7, "水务站已修复")
    assert d["村"] == "石桥村"  # from the household when the difficulty names no village
    (c,) = _rows_as_dicts(wb["驻村打卡"])
    assert (c["日期"], c["打卡时间"], c["姓名"]) == (
        datetime(2026, 11, 2),
        datetime(2026, 11, 2, 9, 30),
        seeded["cadre1"],
    )
    assert len(_rows_as_dicts(_sheet(everyone, "走访记录"))) == 2


async def test_with_photos_zip(sqlite_sessions: Any, io_clock: Any, media: Path) -> None:
    await _load_sample(sqlite_sessions, io_clock)
    seeded = await _seed_activity(sqlite_sessions, media)
    async with sqlite_sessions() as s:
        data = await export_zip(
            s, ["visits", "difficulties"], NOV1, NOV30, None, workbook_name="台账.xlsx", media_dir=media
        )
    z = zipfile.ZipFile(io.BytesIO(data))
    names = set(z.namelist())
    ws = openpyxl.load_workbook(io.BytesIO(z.read("台账.xlsx")))["走访记录"]
    referenced = next(r["照片"] for r in _rows_as_dicts(ws) if r["户编号"] == seeded["hh1"][0]).split("、")
    present, missing = referenced
    assert z.read(present) == (media / "v1.jpg").read_bytes()
    assert missing not in names and missing in z.read("photos/missing.txt").decode()
    assert f"photos/difficulty-{seeded['d1']}-" in " ".join(names)


async def _snapshot(s: Any) -> dict[str, Any]:
    """The roster as plain values, independent of database ids."""
    leader, contact = aliased(Person), aliased(Person)
    tv = aliased(Village)
    teams = (
        await s.execute(
            select(Team.name, tv.code, leader.phone, contact.phone)
            .outerjoin(tv, Team.village_id == tv.id)
            .outerjoin(leader, Team.leader_id == leader.id)
            .outerjoin(contact, Team.township_contact_id == contact.id)
        )
    ).all()
    villages = (
        await s.execute(
            select(
                Village.code,
                Village.name,
                Village.township,
                Village.county,
                Village.county_code,
                Village.groups_count,
                Village.lat,
                Village.lon,
            )
        )
    ).all()
    people = (
        await s.execute(
            select(
                Person.phone, Person.name, Person.role, Team.name, Person.work_unit, Person.active
            ).outerjoin(Team, Person.team_id == Team.id)
        )
    ).all()
    households = [
        (
            h.code,
            code,
            h.group_no,
            h.head_name,
            h.head_id_number,
            h.members_count,
            h.phone,
            h.address,
            h.lat,
            h.lon,
            h.poverty_causes,
            h.status,
            h.registered_poor,
            str(h.income_per_head),
            h.income_year,
            h.plan,
        )
        for h, code in (await s.execute(select(Household, Village.code).join(Village))).all()
    ]
    members = (
        await s.execute(
            select(
                Household.code,
                HouseholdMember.name,
                HouseholdMember.relation,
                HouseholdMember.gender,
                HouseholdMember.birth_year,
                HouseholdMember.health,
                HouseholdMember.education,
                HouseholdMember.occupation,
            )
            .join(Household)
            .order_by(Household.code, HouseholdMember.id)
        )
    ).all()
    pairings = (
        await s.execute(
            select(Household.code, Person.phone, Pairing.start_date, Pairing.end_date, Pairing.note)
            .join(Household, Pairing.household_id == Household.id)
            .join(Person, Pairing.cadre_id == Person.id)
        )
    ).all()
    return {
        "villages": sorted(map(tuple, villages)),
        "teams": sorted(map(tuple, teams)),
        "people": sorted(map(tuple, people)),
        "households": sorted(households, key=lambda h: h[0]),
        "members": [tuple(m) for m in members],
        "pairings": sorted(map(tuple, pairings)),
    }


async def test_households_export_reimports_into_another_database(
    sessions: Any, new_sqlite_url: Callable[[], str], io_clock: Any
) -> None:
    rows = sample_rows()
    await _load_sample(sessions, io_clock, rows)
    # A hand-over first, so pairing history has to travel too.
    other = next(
        p
        for p in rows["people"]
        if p[3] == rows["people"][0][3] and p[1] != rows["households"][0][H["cadre_phone"]]
    )
    rows["households"][0][H["cadre_name"]], rows["households"][0][H["cadre_phone"]] = other[0], other[1]
    rows["households"][0][H["pairing_start"]] = "2026-11-01"
    await _load_sample(sessions, io_clock, rows)
    async with sessions() as s:
        exported = await export_workbook(s, "households", NOV1, NOV30)
        pairings = await export_workbook(s, "pairings", date(2020, 1, 1), NOV30)
        source = await _snapshot(s)
    engine = create_engine(new_sqlite_url())
    try:
        target = session_factory(engine)
        async with target() as s:
            result = await import_file(s, exported, "households.xlsx", clock=io_clock)
            assert result.applied, [(p.key, p.args, p.row) for p in result.problems]
            await s.commit()
        async with target() as s:
            assert await _snapshot(s) == source
            again = await import_file(s, pairings, "pairings.xlsx", clock=io_clock)
            assert again.applied
            assert dict(again.counts["pairings"]) == {"unchanged": len(source["pairings"])}
    finally:
        await engine.dispose()


async def test_team_households_export_carries_what_it_refers_to(
    sqlite_sessions: Any, new_sqlite_url: Callable[[], str], io_clock: Any
) -> None:
    rows = sample_rows()
    # A household of 石桥村 looked after by a cadre of the other team.
    outsider = next(p for p in rows["people"] if p[3] == "青山村驻村工作队" and p[1].startswith("1"))
    first = rows["households"][0]
    first[H["cadre_name"]], first[H["cadre_phone"]] = outsider[0], outsider[1]
    await _load_sample(sqlite_sessions, io_clock, rows)
    async with sqlite_sessions() as s:
        team = await s.scalar(select(Team.id).where(Team.name == "石桥村驻村工作队"))
        exported = await export_workbook(s, "households", NOV1, NOV30, team)
    engine = create_engine(new_sqlite_url())
    try:
        async with session_factory(engine)() as s:
            result = await import_file(s, exported, "team.xlsx", clock=io_clock)
            assert result.applied, [(p.key, p.args, p.row) for p in result.problems]
            codes = set((await s.scalars(select(Household.code))).all())
            assert codes == {
                h[H["code"]] for h in rows["households"] if h[H["village_code"]] == "999999101201"
            }
            assert await s.scalar(select(Person.team_id).where(Person.phone == outsider[1])) is not None
    finally:
        await engine.dispose()
