"""Visits: seasonal windows, distance checks, idempotent saving, villager confirmation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler.rules import Rules
from bot.services.media import photo_row
from bot.services.privacy import stored_text
from bot.store.enums import SEASONAL_KINDS, LocationStatus, VisitKind
from bot.store.models import Household, Pairing, Visit

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Season:
    """A seasonal visit window (春耕 / 夏收 / 秋播) in one year, both ends included."""

    name: str  # "spring" | "summer" | "autumn" (the matching VisitKind value)
    start: date
    end: date


def current_season(rules: Rules, day: date) -> Season | None:
    """The seasonal window containing `day`, if any."""
    for name, window in rules.seasons.windows().items():
        start, end = window.dates(day.year)
        if start <= day <= end:
            return Season(name, start, end)
    return None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def locate(
    household: Household, lat: float | None, lon: float | None, far_m: float
) -> tuple[str, float | None]:
    """(LocationStatus, distance in metres) of a visit location against the household's point.

    No location: "none". A household without a recorded point cannot be checked, so the location is
    accepted as "ok" with no distance.
    """
    if lat is None or lon is None:
        return LocationStatus.NONE.value, None
    if household.lat is None or household.lon is None:
        return LocationStatus.OK.value, None
    d = haversine_m(lat, lon, household.lat, household.lon)
    return (LocationStatus.FAR.value if d > far_m else LocationStatus.OK.value), round(d, 1)


def valid_coordinates(lat: float, lon: float) -> bool:
    """Plausible WGS-84 coordinates (a client can send anything)."""
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and not (lat == 0.0 and lon == 0.0)


async def pairing_start(session: AsyncSession, cadre_id: int, household_id: int) -> date | None:
    """When the cadre's current pairing with the household began; None when not currently paired."""
    q = select(Pairing.start_date).where(
        Pairing.cadre_id == cadre_id, Pairing.household_id == household_id, Pairing.end_date.is_(None)
    )
    return (await session.execute(q.order_by(Pairing.start_date).limit(1))).scalar_one_or_none()


async def visit_by_key(session: AsyncSession, idem_key: str) -> Visit | None:
    return (await session.execute(select(Visit).where(Visit.idem_key == idem_key))).scalar_one_or_none()


@dataclass
class VisitInput:
    """Everything a cadre entered for one visit."""

    household_id: int
    visit_date: date
    kind: str  # the main kind (main_kind); stored in visits.kind for the seasonal counts
    done: str
    needs: str
    lat: float | None
    lon: float | None
    photos: list[dict[str, Any]]
    kinds: list[str] = field(default_factory=list)  # every kind chosen; [kind] when empty


async def save_visit(
    session: AsyncSession,
    idem_key: str,
    cadre_id: int,
    household: Household,
    v: VisitInput,
    far_m: float,
    now: datetime,
) -> tuple[Visit, bool]:
    """Insert the visit and its photos unless a visit with this idempotency key exists already.

    Returns (visit, created). A far-away location is kept and the visit flagged for the leader.
    """
    existing = await visit_by_key(session, idem_key)
    if existing is not None:
        return existing, False
    status, distance = locate(household, v.lat, v.lon, far_m)
    visit = Visit(
        idem_key=idem_key,
        household_id=household.id,
        cadre_id=cadre_id,
        visit_date=v.visit_date,
        kind=VisitKind(v.kind).value,
        kinds=normalize_kinds([v.kind, *v.kinds]),
        done=stored_text(v.done),
        needs=stored_text(v.needs),
        lat=v.lat,
        lon=v.lon,
        location_status=status,
        distance_m=distance,
        flagged=status == LocationStatus.FAR.value,
        created_at=now,
    )
    session.add(visit)
    await session.flush()
    for info in v.photos:
        session.add(photo_row(info, now, visit_id=visit.id))
    await session.flush()
    return visit, True


def normalize_kinds(kinds: Sequence[str]) -> list[str]:
    """Known visit kinds, each once, in the order of VisitKind (what the card and the ledger show)."""
    chosen = {VisitKind(k) for k in kinds}
    return [k.value for k in VisitKind if k in chosen]


def main_kind(kinds: Sequence[str], season: Season | None) -> str:
    """The kind stored in visits.kind: the current season's when chosen (so the visit counts for the
    window), else another seasonal one, else the first chosen."""
    ordered = normalize_kinds(kinds)
    if not ordered:
        return VisitKind.ROUTINE.value
    if season is not None and season.name in ordered:
        return season.name
    seasonal = [k for k in ordered if k in SEASONAL_KINDS]
    return seasonal[0] if seasonal else ordered[0]


def visit_kinds(visit: Visit) -> list[str]:
    """Every kind of a saved visit (older rows: their one kind)."""
    return list(visit.kinds or [visit.kind])


def record_confirmation(visit: Visit, confirmed: bool) -> bool:
    """Record the villager's answer once; a "no" flags the visit for the leader. False if already answered."""
    if visit.villager_confirmed is not None:
        return False
    visit.villager_confirmed = confirmed
    if not confirmed:
        visit.flagged = True
    return True


# Compound surnames, so 欧阳明 is 欧阳同志 and not 欧同志.
_COMPOUND = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯")


def surname(name: str) -> str:
    """The surname of a Chinese name (for "王同志"); a non-Chinese name is used whole."""
    name = name.strip()
    if not name or not ("\u4e00" <= name[0] <= "\u9fff"):
        return name
    for c in _COMPOUND:
        if name.startswith(c) and len(name) > len(c):
            return c
    return name[0]
