"""Ledger export: 走访记录, 问题台账, 驻村打卡, 农户花名册 and 结对 as an xlsx workbook laid out for inspections.

One sheet per ledger, Chinese headers, frozen header row, column widths, dates as real dates. Photos
are referenced by the file name they get inside the zip that `export_zip` packs beside the workbook.
The households and pairings exports use the roster import format, so they re-import elsewhere.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.io.cells import append_row
from bot.io.format import HOUSEHOLDS, MEMBERS, PAIRINGS, PEOPLE, TEAMS, VILLAGES, Sheet
from bot.io.labels import (
    CATEGORY_ZH,
    DIFFICULTY_STATUS_ZH,
    ESCALATION_ZH,
    LOCATION_ZH,
    VISIT_KIND_ZH,
    label,
    urgency_label,
)
from bot.io.template import style_header
from bot.io.validate import ROLE_ZH
from bot.store.enums import HOUSEHOLD_STATUS_LABEL_ZH, POVERTY_CAUSE_ZH, HouseholdStatus, PovertyCause
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

KINDS = ("visits", "difficulties", "villagedays", "households", "pairings")
DATE_FMT = "yyyy-mm-dd"
DATETIME_FMT = "yyyy-mm-dd hh:mm"


class ExportError(ValueError):
    """A request the exporter cannot serve; key is an io.po message id."""

    def __init__(self, key: str, **args: object) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


@dataclass
class PhotoRef:
    """A photo as the workbook names it and where its file is on disk."""

    name: str
    path: Path | None


@dataclass
class Ledger:
    """One sheet: title, (header, width) columns and rows of cell values."""

    title: str
    columns: list[tuple[str, int]]
    rows: list[list[Any]]


def _local(ts: datetime | None, tz: ZoneInfo) -> datetime | None:
    """An aware UTC timestamp as naive local time: Excel has no time zones."""
    if ts is None:
        return None
    if ts.tzinfo is None:  # SQLite hands back naive UTC
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(tz).replace(tzinfo=None)


def _utc_bounds(date_from: date, date_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(date_from, time.min, tz).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tz).astimezone(UTC)
    return start, end


def _causes(values: list[Any] | None) -> str:
    out = []
    for c in values or []:
        out.append(POVERTY_CAUSE_ZH[PovertyCause(c)] if c in PovertyCause._value2member_map_ else str(c))
    return "、".join(out)


async def _photos(
    session: AsyncSession, column: Any, ids: Sequence[int], prefix: str, media_dir: Path | None
) -> dict[int, list[PhotoRef]]:
    out: dict[int, list[PhotoRef]] = defaultdict(list)
    for i in range(0, len(ids), 500):
        res = await session.execute(select(Photo).where(column.in_(ids[i : i + 500])).order_by(Photo.id))
        for p in res.scalars():
            owner = int(getattr(p, column.key))
            path = Path(p.local_path) if p.local_path else None
            if path is not None and not path.is_absolute() and media_dir is not None:
                path = media_dir / path
            suffix = path.suffix if path is not None and path.suffix else ".jpg"
            out[owner].append(PhotoRef(f"photos/{prefix}{owner}-{p.id}{suffix}", path))
    return out


async def _visits(
    session: AsyncSession,
    date_from: date,
    date_to: date,
    team_id: int | None,
    tz: ZoneInfo,
    media_dir: Path | None,
) -> tuple[Ledger, list[PhotoRef]]:
    q = (
        select(Visit, Household, Village, Person, Team.name)
        .join(Household, Visit.household_id == Household.id)
        .join(Village, Household.village_id == Village.id)
        .join(Person, Visit.cadre_id == Person.id)
        .outerjoin(Team, Person.team_id == Team.id)
        .where(Visit.visit_date >= date_from, Visit.visit_date <= date_to)
        .order_by(Visit.visit_date, Village.code, Household.code, Visit.id)
    )
    if team_id is not None:
        q = q.where(Person.team_id == team_id)
    rows = (await session.execute(q)).all()
    photos = await _photos(session, Photo.visit_id, [r[0].id for r in rows], "visit-", media_dir)
    out, refs = [], []
    for n, (visit, hh, village, cadre, team) in enumerate(rows, start=1):
        pics = photos.get(visit.id, [])
        refs += pics
        out.append(
            [
                n,
                visit.visit_date,
                village.township,
                village.name,
                hh.group_no,
                hh.code,
                hh.head_name,
                cadre.name,
                cadre.phone,
                team or "",
                "、".join(label(VISIT_KIND_ZH, k) for k in visit.kinds or [visit.kind]),
                visit.done,
                visit.needs,
                label(LOCATION_ZH, visit.location_status),
                round(visit.distance_m) if visit.distance_m is not None else None,
                "是" if visit.flagged else "",
                {True: "已确认", False: "有异议", None: ""}[visit.villager_confirmed],
                "、".join(p.name for p in pics),
                _local(visit.created_at, tz),
            ]
        )
    cols = [
        ("序号", 6),
        ("走访日期", 12),
        ("乡镇", 10),
        ("村", 10),
        ("村民小组", 8),
        ("户编号", 18),
        ("户主姓名", 10),
        ("帮扶责任人", 10),
        ("责任人电话", 13),
        ("工作队", 18),
        ("走访类型", 10),
        ("帮扶内容", 36),
        ("群众诉求", 30),
        ("定位", 10),
        ("距离（米）", 10),
        ("存疑", 6),
        ("群众确认", 8),
        ("照片", 30),
        ("登记时间", 17),
    ]
    return Ledger("走访记录", cols, out), refs


async def _difficulties(
    session: AsyncSession,
    date_from: date,
    date_to: date,
    team_id: int | None,
    tz: ZoneInfo,
    media_dir: Path | None,
) -> tuple[Ledger, list[PhotoRef]]:
    reporter, assignee = aliased(Person), aliased(Person)
    start, end = _utc_bounds(date_from, date_to, tz)
    q = (
        select(
            Difficulty,
            Team.name,
            Village.name,
            Household.code,
            Household.head_name,
            reporter.name,
            assignee.name,
        )
        .join(reporter, Difficulty.reporter_id == reporter.id)
        .outerjoin(assignee, Difficulty.assigned_to_id == assignee.id)
        .outerjoin(Team, Difficulty.team_id == Team.id)
        .outerjoin(Household, Difficulty.household_id == Household.id)
        .outerjoin(Village, Village.id == func.coalesce(Difficulty.village_id, Household.village_id))
        .where(Difficulty.created_at >= start, Difficulty.created_at < end)
        .order_by(Difficulty.created_at, Difficulty.id)
    )
    if team_id is not None:
        q = q.where(Difficulty.team_id == team_id)
    rows = (await session.execute(q)).all()
    photos = await _photos(session, Photo.difficulty_id, [r[0].id for r in rows], "difficulty-", media_dir)
    out, refs = [], []
    for n, (d, team, village, code, head, rep, ass) in enumerate(rows, start=1):
        pics = photos.get(d.id, [])
        refs += pics
        created = _local(d.created_at, tz)
        resolved = _local(d.resolved_at, tz)
        out.append(
            [
                n,
                created.date() if created else None,
                team or "",
                village or "",
                code or "",
                head or "",
                rep,
                label(CATEGORY_ZH, d.category),
                d.description,
                urgency_label(d.urgency),
                label(DIFFICULTY_STATUS_ZH, d.status),
                ass or "",
                d.resolution_note,
                ESCALATION_ZH.get(d.escalation_level, str(d.escalation_level)),
                _local(d.acknowledged_at, tz),
                resolved,
                (resolved.date() - created.date()).days if created and resolved else None,
                "、".join(p.name for p in pics),
            ]
        )
    cols = [
        ("序号", 6),
        ("登记日期", 12),
        ("工作队", 18),
        ("村", 10),
        ("户编号", 18),
        ("户主姓名", 10),
        ("反映人", 10),
        ("问题类别", 10),
        ("问题描述", 40),
        ("紧急程度", 8),
        ("办理状态", 8),
        ("承办人", 10),
        ("办理结果", 30),
        ("上报层级", 8),
        ("受理时间", 17),
        ("办结时间", 17),
        ("办理天数", 8),
        ("照片", 30),
    ]
    return Ledger("问题台账", cols, out), refs


async def _villagedays(
    session: AsyncSession, date_from: date, date_to: date, team_id: int | None, tz: ZoneInfo
) -> Ledger:
    q = (
        select(CheckIn, Person, Team.name, Village.name)
        .join(Person, CheckIn.cadre_id == Person.id)
        .outerjoin(Team, Person.team_id == Team.id)
        .outerjoin(Village, CheckIn.village_id == Village.id)
        .where(CheckIn.day >= date_from, CheckIn.day <= date_to)
        .order_by(CheckIn.day, Person.name, CheckIn.id)
    )
    if team_id is not None:
        q = q.where(Person.team_id == team_id)
    rows = (await session.execute(q)).all()
    out = [
        [n, c.day, p.name, p.phone, team or "", village or "", _local(c.at, tz), c.lat, c.lon]
        for n, (c, p, team, village) in enumerate(rows, start=1)
    ]
    cols = [
        ("序号", 6),
        ("日期", 12),
        ("姓名", 10),
        ("手机号", 13),
        ("工作队", 18),
        ("村", 10),
        ("打卡时间", 17),
        ("纬度", 11),
        ("经度", 11),
    ]
    return Ledger("驻村打卡", cols, out)


def _roster_ledger(sheet: Sheet, rows: list[list[Any]]) -> Ledger:
    return Ledger(sheet.title, [(c.header, max(c.width, len(c.header) * 2 + 2)) for c in sheet.columns], rows)


async def _household_ids(session: AsyncSession, team_id: int | None, on: date) -> list[int] | None:
    """The households a team looks after: in its village or paired to one of its people."""
    if team_id is None:
        return None
    team = await session.get(Team, team_id)
    if team is None:
        raise ExportError("io.export.bad_team", team=team_id)
    paired = (
        select(Pairing.household_id)
        .join(Person, Pairing.cadre_id == Person.id)
        .where(
            Person.team_id == team_id,
            Pairing.start_date <= on,
            or_(Pairing.end_date.is_(None), Pairing.end_date >= on),
        )
    )
    q = select(Household.id).where(or_(Household.id.in_(paired), Household.village_id == team.village_id))
    return list((await session.scalars(q)).all())


async def _pairing_rows(
    session: AsyncSession, household_ids: list[int] | None, date_from: date | None, date_to: date | None
) -> list[tuple[Pairing, Household, Person]]:
    q = (
        select(Pairing, Household, Person)
        .join(Household, Pairing.household_id == Household.id)
        .join(Person, Pairing.cadre_id == Person.id)
        .order_by(Household.code, Pairing.start_date, Pairing.id)
    )
    if date_to is not None:
        q = q.where(Pairing.start_date <= date_to)
    if date_from is not None:
        q = q.where(or_(Pairing.end_date.is_(None), Pairing.end_date >= date_from))
    rows = (await session.execute(q)).all()
    if household_ids is not None:
        keep = set(household_ids)
        rows = [r for r in rows if r[1].id in keep]
    return [(p, h, c) for p, h, c in rows]


def _pairing_sheet_rows(rows: list[tuple[Pairing, Household, Person]]) -> list[list[Any]]:
    return [[h.code, h.head_name, c.name, c.phone, p.start_date, p.end_date, p.note] for p, h, c in rows]


async def _households(session: AsyncSession, team_id: int | None, today: date) -> list[Ledger]:
    """The roster itself, in the import format: villages, teams, cadres, households, members, pairings."""
    ids = await _household_ids(session, team_id, today)
    q = (
        select(Household, Village.code)
        .join(Village, Household.village_id == Village.id)
        .order_by(Household.code)
    )
    hh_rows = (await session.execute(q)).all()
    if ids is not None:
        keep = set(ids)
        hh_rows = [r for r in hh_rows if r[0].id in keep]
    pairings = await _pairing_rows(session, ids, None, None)
    current: dict[int, Person] = {}
    for p, h, c in pairings:
        if p.end_date is None:
            current.setdefault(h.id, c)
    current_start = {h.id: p.start_date for p, h, _c in pairings if p.end_date is None}

    cadre_ids = {c.id for _p, _h, c in pairings}
    people_q = (
        select(Person, Village.code)
        .outerjoin(Village, Person.village_id == Village.id)
        .where(Person.phone.is_not(None), Person.role.in_(list(ROLE_ZH)))
        .order_by(Person.team_id, Person.id)
    )
    people = [
        (p, vcode)
        for p, vcode in (await session.execute(people_q)).all()
        if team_id is None or p.team_id == team_id or p.id in cadre_ids
    ]
    # Everything the exported rows refer to goes along, so the file imports into an empty database.
    teams_q = select(Team, Village.code).outerjoin(Village, Team.village_id == Village.id).order_by(Team.name)
    if team_id is not None:
        wanted = {team_id} | {p.team_id for p, _ in people if p.team_id is not None}
        teams_q = teams_q.where(Team.id.in_(wanted))
    teams = (await session.execute(teams_q)).all()
    village_ids = {h.village_id for h, _ in hh_rows}
    village_ids |= {t.village_id for t, _ in teams if t.village_id}
    village_ids |= {p.village_id for p, _ in people if p.village_id}
    villages = [
        v
        for v in (await session.scalars(select(Village).order_by(Village.code))).all()
        if v.id in village_ids
    ]
    all_team_names = {t.id: t.name for t in (await session.scalars(select(Team))).all()}
    members: dict[int, list[HouseholdMember]] = defaultdict(list)
    for m in (await session.scalars(select(HouseholdMember).order_by(HouseholdMember.id))).all():
        members[m.household_id].append(m)

    village_rows = [
        [v.code, v.name, v.township, v.county, v.county_code, v.groups_count, v.lat, v.lon] for v in villages
    ]
    team_rows = [[t.name, vcode] for t, vcode in teams]
    people_rows = [
        [
            p.name,
            p.phone,
            ROLE_ZH.get(p.role, p.role),
            all_team_names.get(p.team_id or 0, ""),
            p.work_unit,
            vcode,
            "是" if p.active else "否",
        ]
        for p, vcode in people
    ]
    household_rows, member_rows = [], []
    for h, vcode in hh_rows:
        cadre = current.get(h.id)
        household_rows.append(
            [
                h.code,
                vcode,
                None,
                None,
                None,
                h.group_no,
                h.head_name,
                h.head_id_number,
                h.members_count,
                h.phone,
                h.address,
                h.lat,
                h.lon,
                _causes(h.poverty_causes),
                HOUSEHOLD_STATUS_LABEL_ZH.get(HouseholdStatus(h.status), h.status)
                if h.status in HouseholdStatus._value2member_map_
                else h.status,
                "是" if h.registered_poor else "否",
                h.income_per_head,
                h.income_year,
                h.plan,
                cadre.name if cadre else None,
                cadre.phone if cadre else None,
                current_start.get(h.id),
            ]
        )
        for m in members.get(h.id, []):
            member_rows.append(
                [h.code, m.name, m.relation, m.gender, m.birth_year, m.health, m.education, m.occupation]
            )
    return [
        _roster_ledger(VILLAGES, village_rows),
        _roster_ledger(TEAMS, team_rows),
        _roster_ledger(PEOPLE, people_rows),
        _roster_ledger(HOUSEHOLDS, household_rows),
        _roster_ledger(MEMBERS, member_rows),
        _roster_ledger(PAIRINGS, _pairing_sheet_rows(pairings)),
    ]


async def _pairings(session: AsyncSession, date_from: date, date_to: date, team_id: int | None) -> Ledger:
    ids = await _household_ids(session, team_id, date_to)
    rows = await _pairing_rows(session, ids, date_from, date_to)
    return _roster_ledger(PAIRINGS, _pairing_sheet_rows(rows))


def _write(ledgers: list[Ledger]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for ledger in ledgers:
        ws = wb.create_sheet(ledger.title[:31])
        ws.append([h for h, _ in ledger.columns])
        for row in ledger.rows:
            append_row(ws, row)  # user text stays text: no formula runs in the leader's Excel
        style_header(ws, (w for _, w in ledger.columns))
        # Dates as real Excel dates with a readable format, not text.
        for col in ws.iter_cols(min_row=2):
            for cell in col:
                if isinstance(cell.value, datetime):
                    cell.number_format = DATETIME_FMT
                elif isinstance(cell.value, date):
                    cell.number_format = DATE_FMT
        if ledger.rows:
            ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def build_ledgers(
    session: AsyncSession,
    kinds: str | Sequence[str],
    date_from: date,
    date_to: date,
    team_id: int | None = None,
    *,
    tz: str = "Asia/Shanghai",
    media_dir: Path | None = None,
) -> tuple[list[Ledger], list[PhotoRef]]:
    """The ledgers of the given kinds and the photos they reference."""
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    for k in kinds:
        if k not in KINDS:
            raise ExportError("io.export.bad_kind", kind=k)
    if date_from > date_to:
        raise ExportError("io.export.bad_dates")
    if team_id is not None and await session.get(Team, team_id) is None:
        raise ExportError("io.export.bad_team", team=team_id)
    zone = ZoneInfo(tz)
    ledgers: list[Ledger] = []
    refs: list[PhotoRef] = []
    for k in kinds:
        if k == "visits":
            ledger, pics = await _visits(session, date_from, date_to, team_id, zone, media_dir)
            ledgers.append(ledger)
            refs += pics
        elif k == "difficulties":
            ledger, pics = await _difficulties(session, date_from, date_to, team_id, zone, media_dir)
            ledgers.append(ledger)
            refs += pics
        elif k == "villagedays":
            ledgers.append(await _villagedays(session, date_from, date_to, team_id, zone))
        elif k == "households":
            ledgers += await _households(session, team_id, date_to)
        elif k == "pairings" and "households" not in kinds:
            ledgers.append(await _pairings(session, date_from, date_to, team_id))
    return ledgers, refs


async def export_workbook(
    session: AsyncSession,
    kind: str | Sequence[str],
    date_from: date,
    date_to: date,
    team_id: int | None = None,
    *,
    tz: str = "Asia/Shanghai",
) -> bytes:
    """The xlsx bytes of one ledger kind (or several, one sheet each) for the period and team."""
    ledgers, _ = await build_ledgers(session, kind, date_from, date_to, team_id, tz=tz)
    # Writing a large workbook takes seconds: keep it off the event loop that serves the chat.
    return await asyncio.to_thread(_write, ledgers)


async def export_zip(
    session: AsyncSession,
    kind: str | Sequence[str],
    date_from: date,
    date_to: date,
    team_id: int | None = None,
    *,
    workbook_name: str = "ledger.xlsx",
    tz: str = "Asia/Shanghai",
    media_dir: Path | None = None,
) -> bytes:
    """A zip with the workbook and, under photos/, every referenced photo found on disk.

    Photos whose file is gone are listed in photos/missing.txt rather than failing the export.
    """
    ledgers, refs = await build_ledgers(
        session, kind, date_from, date_to, team_id, tz=tz, media_dir=media_dir
    )
    return await asyncio.to_thread(_pack, ledgers, refs, workbook_name)


def _pack(ledgers: list[Ledger], refs: list[PhotoRef], workbook_name: str) -> bytes:
    buf = io.BytesIO()
    missing: list[str] = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(workbook_name, _write(ledgers))
        for ref in refs:
            if ref.path is not None and ref.path.is_file():
                z.write(ref.path, ref.name, compress_type=zipfile.ZIP_STORED)  # JPEGs do not shrink
            else:
                missing.append(ref.name)
        if missing:
            z.writestr("photos/missing.txt", "\n".join(missing) + "\n")
    return buf.getvalue()
