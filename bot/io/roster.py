"""Roster import: check every row of a roster file, then write it to the database in bulk.

All or nothing by default: one wrong row and nothing is written, every problem is reported with its
sheet, row and column. With skip_bad the good rows are written and the bad ones returned (rows that
depend on a bad row, such as the pairing of a bad household, count as bad too).

Re-importing updates in place, matched on stable keys: village 村编码, team name, person 手机号,
household 户编号. Only columns present in the file are updated, so a thinner file never blanks data.
A new 帮扶责任人 for a household is a hand-over: the old pairing gets an end date and a new one starts.
The caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock, local_today
from bot.i18n import Safe, Translator
from bot.io import validate as v
from bot.io.cells import FORMULA_START, append_row, formula_like
from bot.io.format import HOUSEHOLDS, PAIRINGS, PEOPLE, SHEET_BY_KEY, VILLAGES
from bot.io.reader import RawSheet, Roster, RosterError, read_roster
from bot.store.enums import POVERTY_CAUSE_ZH, HouseholdStatus, PovertyCause, Role
from bot.store.idhash import id_hash
from bot.store.models import Household, HouseholdMember, Pairing, Person, Team, Village

Progress = Callable[[str, int, int], None]
CHUNK = 2000
STAFF_ROLES = (Role.CADRE.value, Role.LEADER.value, Role.TOWNSHIP.value, Role.COUNTY.value, Role.ADMIN.value)


@dataclass
class Problem:
    """Something wrong in the file: a message key and where it is (sheet, row, column)."""

    key: str
    args: dict[str, object] = field(default_factory=dict)
    sheet: str | None = None
    row: int | None = None
    column: str | None = None

    def render(self, t: Translator, *, html: bool = False) -> str:
        """The problem in the translator's language; plain text unless html (then values escaped)."""

        def wrap(x: object) -> object:
            return x if html else Safe(str(x))

        what = t(self.key, **{k: wrap(a) for k, a in self.args.items()})
        where = {"sheet": wrap(self.sheet or ""), "row": self.row or 0, "column": wrap(self.column or "")}
        if self.sheet is None:
            return what
        if self.row is None:
            return t("io.at.sheet", problem=Safe(what), **where)
        if self.column is None:
            return t("io.at.row", problem=Safe(what), **where)
        return t("io.at.cell", problem=Safe(what), **where)


@dataclass
class Row:
    """One data row: where it came from, its parsed values and its problems."""

    raw: RawSheet
    number: int
    cells: list[Any]
    values: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)

    def fail(self, key: str, column: str | None = None, **args: object) -> None:
        header = self.raw.header_of(column) if column else None
        self.problems.append(Problem(key, args, self.raw.title, self.number, header))

    @property
    def bad(self) -> bool:
        return bool(self.problems)

    def has(self, key: str) -> bool:
        return self.raw.has(key)


@dataclass
class Change:
    """One thing the import changed, for the summary printed afterwards."""

    entity: str
    kind: str  # created, updated, handover, ended
    key: str
    name: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # header, old, new


@dataclass
class ImportResult:
    """What an import found and did. applied is False when nothing was written."""

    problems: list[Problem] = field(default_factory=list)
    applied: bool = False
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    changes: list[Change] = field(default_factory=list)
    bad_rows: list[Row] = field(default_factory=list)
    rows_total: int = 0
    ignored_sheets: list[str] = field(default_factory=list)
    ignored_columns: list[tuple[str, str]] = field(default_factory=list)  # sheet, header
    # Cells per sheet whose text could run as a formula, stored with a leading apostrophe.
    neutralised: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.applied


# ---------------------------------------------------------------------------------------------------
# What the database already holds


@dataclass
class _Existing:
    villages: dict[str, dict[str, Any]]  # code → row
    village_names: dict[str, list[str]]
    teams: dict[str, dict[str, Any]]  # name → row
    people: dict[str, dict[str, Any]]  # phone → row
    people_names: dict[str, list[str]]  # name → phones
    households: dict[str, dict[str, Any]]  # code → row
    pairings: dict[int, list[dict[str, Any]]]  # household id → pairings
    person_by_id: dict[int, dict[str, Any]]


async def _rows(session: AsyncSession, table: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in (await session.execute(select(table))).mappings()]


async def _load_existing(session: AsyncSession) -> _Existing:
    villages = {r["code"]: r for r in await _rows(session, Village.__table__)}
    vnames: dict[str, list[str]] = defaultdict(list)
    for code, r in villages.items():
        vnames[r["name"]].append(code)
    teams = {r["name"]: r for r in await _rows(session, Team.__table__)}
    people_rows = await _rows(session, Person.__table__)
    people = {r["phone"]: r for r in people_rows if r["phone"]}
    pnames: dict[str, list[str]] = defaultdict(list)
    for phone, r in people.items():
        if r["role"] in STAFF_ROLES:
            pnames[r["name"]].append(phone)
    households = {r["code"]: r for r in await _rows(session, Household.__table__)}
    pairings: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in await _rows(session, Pairing.__table__):
        pairings[r["household_id"]].append(r)
    return _Existing(
        villages, vnames, teams, people, pnames, households, pairings, {r["id"]: r for r in people_rows}
    )


# ---------------------------------------------------------------------------------------------------
# Checking


def _parse_rows(raw: RawSheet, full_id: bool, neutralised: Counter[str] | None = None,
                id_key: str = "") -> Iterator[Row]:
    """Each data row parsed; text that a spreadsheet could run as a formula is stored inert (a leading
    apostrophe, `bot.io.cells.inert`) and counted in neutralised."""
    columns = list(raw.columns.items())
    # What an empty cell parses to, per column: most cells of a roster are empty or optional.
    blank = {col.key: (None if col.key in ID_COLUMNS else col.parse(None)) for _, col in columns}
    for number, cells in raw.rows:
        row = Row(raw, number, cells, {})
        width = len(cells)
        for i, col in columns:
            cell = cells[i] if i < width else None
            if cell is None and not col.required:
                empty = blank[col.key]
                row.values[col.key] = [] if isinstance(empty, list) else empty  # never share a list
                continue
            if col.key in ID_COLUMNS and id_key and cell is not None:
                keyed = id_hash(str(cell), id_key)  # before masking: the keyed hash matches department lists
                if keyed:
                    row.values[ID_COLUMNS[col.key]] = keyed
            try:
                if col.key == "head_id_number":
                    value = v.id_number(cell, full=True)
                    if value and not value.startswith("*"):
                        row.values["_id_full"] = value  # for the duplicate check, never written
                        value = value if full_id else v.mask_id(value)
                elif col.key == "id_number":  # a member's: only ever stored masked
                    value = v.id_number(cell)
                else:
                    value = col.parse(cell)
            except v.BadValue as e:
                row.fail(e.key, col.key, **e.args_)
                continue
            if col.required and (value is None or value == ""):
                row.fail("io.err.required", col.key)
                continue
            if type(value) is str and value and value[0] in FORMULA_START and formula_like(value):
                value = "'" + value
                if neutralised is not None:
                    neutralised[raw.title] += 1
            row.values[col.key] = value
        yield row


def _sheet_problems(roster: Roster) -> list[Problem]:
    out: list[Problem] = []
    for raw in roster.sheets:
        for col in raw.sheet.columns:
            if col.required and not raw.has(col.key):
                out.append(Problem("io.err.missing_column", {"column": col.header}, raw.title))
        if raw.sheet is HOUSEHOLDS and not (raw.has("village_code") or raw.has("village_name")):
            out.append(Problem("io.err.missing_column", {"column": "村编码／村名称"}, raw.title))
        if raw.sheet is PAIRINGS and not (raw.has("cadre_name") or raw.has("cadre_phone")):
            out.append(Problem("io.err.missing_column", {"column": "帮扶责任人／责任人电话"}, raw.title))
    return out


class _Checker:
    """Cross-row checks: duplicates and references between sheets and to the database."""

    def __init__(self, roster: Roster, existing: _Existing, today: date) -> None:
        self.roster = roster
        self.db = existing
        self.today = today
        self.villages: dict[str, Row] = {}
        self.auto_villages: dict[str, dict[str, Any]] = {}
        self.teams: dict[str, Row] = {}
        self.people: dict[str, Row] = {}
        self.households: dict[str, Row] = {}
        self.members: list[Row] = []
        self.pairings: list[dict[str, Any]] = []
        # Keys that appear in the file on a bad row, so dependents can say why they are refused.
        self.bad: dict[str, set[str]] = defaultdict(set)
        self.has_village_sheet = bool(roster.of("villages"))

    # -- references
    def village_code(self, row: Row, code: str, name: str, *, col: str, may_create: bool) -> str | None:
        if code:
            if code in self.villages or code in self.db.villages or code in self.auto_villages:
                return code
            if code in self.bad["villages"]:
                row.fail("io.err.ref_bad_village", col, value=code)
                return None
            if may_create:
                return code
            # Teams name the village in one column: a name there is fine too.
            name = name or code
            code = ""
        if name:
            codes = {c for c, r in self.villages.items() if r.values.get("name") == name}
            codes |= set(self.db.village_names.get(name, ()))
            codes |= {c for c, r in self.auto_villages.items() if r["name"] == name}
            if len(codes) == 1:
                return codes.pop()
            if len(codes) > 1:
                row.fail("io.err.ambiguous_village", col, value=name)
                return None
            if may_create:
                return name
        row.fail("io.err.unknown_village", col, value=name or code)
        return None

    def cadre_phone(self, row: Row) -> str | None:
        phone = row.values.get("cadre_phone")
        name = row.values.get("cadre_name") or ""
        if phone:
            if phone in self.people or self.db.people.get(phone, {}).get("role") in STAFF_ROLES:
                return str(phone)
            if phone in self.bad["people"]:
                row.fail("io.err.ref_bad_person", "cadre_phone", value=phone)
            else:
                row.fail("io.err.unknown_cadre", "cadre_phone", value=f"{name} {phone}".strip())
            return None
        if not name:
            return None
        phones = {p for p, r in self.people.items() if r.values.get("name") == name}
        # A phone listed in the file with another name wins over the database's name for it.
        phones |= {p for p in self.db.people_names.get(name, ()) if p not in self.people}
        if len(phones) == 1:
            return phones.pop()
        if len(phones) > 1:
            row.fail("io.err.ambiguous_cadre", "cadre_name", value=name)
        else:
            row.fail("io.err.unknown_cadre", "cadre_name", value=name)
        return None

    # -- sheets, in dependency order
    def check(self, rows: dict[str, list[Row]]) -> None:
        self._unique(rows["villages"], "code", self.villages, "villages")
        for row in rows["teams"]:
            if not row.bad and row.values.get("village"):
                ref = str(row.values["village"])
                code = self.village_code(row, ref, ref, col="village", may_create=False)
                row.values["village"] = code
        self._unique(rows["teams"], "name", self.teams, "teams")
        for row in rows["people"]:
            if row.bad:
                continue
            team = row.values.get("team")
            if team and team not in self.teams and team not in self.db.teams:
                key = "io.err.ref_bad_team" if team in self.bad["teams"] else "io.err.unknown_team"
                row.fail(key, "team", value=team)
            if row.values.get("village"):
                ref = str(row.values["village"])
                row.values["village"] = self.village_code(row, ref, ref, col="village", may_create=False)
        self._unique(rows["people"], "phone", self.people, "people")
        for row in rows["households"]:
            if row.bad:
                continue
            code = row.values.get("village_code") or ""
            name = row.values.get("village_name") or ""
            if not code and not name:
                row.fail("io.err.required", "village_name" if row.has("village_name") else "village_code")
                continue
            col = "village_code" if code else "village_name"
            resolved = self.village_code(row, code, name, col=col, may_create=not self.has_village_sheet)
            if resolved is None:
                continue
            row.values["village"] = resolved
            if resolved not in self.villages and resolved not in self.db.villages:
                self.auto_villages.setdefault(
                    resolved,
                    {
                        "code": resolved,
                        "name": name or resolved,
                        "township": row.values.get("township") or "",
                        "county": row.values.get("county") or "",
                    },
                )
            if row.values.get("cadre_name") or row.values.get("cadre_phone"):
                # The household's own 帮扶责任人 column: a wrong cadre makes the household row bad.
                row.values["_phone"] = self.cadre_phone(row)
        self._unique_ids(rows["households"])
        self._unique(rows["households"], "code", self.households, "households")
        for row in rows["members"]:
            if not row.bad:
                self._household_ref(row, str(row.values["household"]))
        self.members = [r for r in rows["members"] if not r.bad]
        current: dict[str, Row] = {}
        for row in [*self.households.values(), *rows["pairings"]]:
            if row.bad:
                continue
            if row.raw.sheet is HOUSEHOLDS:
                phone = row.values.get("_phone")
                if not phone:
                    continue
                hh = str(row.values["code"])
                start, end, start_col = row.values.get("pairing_start"), None, "pairing_start"
            else:
                hh = str(row.values["household"])
                if not self._household_ref(row, hh):
                    continue
                phone = self.cadre_phone(row)
                if phone is None:
                    if not row.bad:
                        row.fail("io.err.required", "cadre_name")
                    continue
                start, end, start_col = row.values.get("start"), row.values.get("end"), "start"
            if start and end and end < start:
                row.fail("io.err.end_before_start", "end", start=start.isoformat(), end=end.isoformat())
                continue
            if end is None:
                if start and start > self.today:
                    row.fail("io.err.future_date", start_col, value=start.isoformat())
                    continue
                first = current.get(hh)
                if first is not None and first.values.get("_cadre") == phone:
                    continue  # the same pairing in the 农户 sheet and the 结对 sheet
                if first is not None:
                    row.fail(
                        "io.err.two_current_pairings",
                        None,
                        code=hh,
                        first=f"{first.raw.title} {first.number}",
                    )
                    continue
                current[hh] = row
                row.values["_cadre"] = phone
            elif start is None and not self._db_current_with(hh, phone):
                row.fail("io.err.start_missing", "start")
                continue
            pairing = {
                "household": hh,
                "phone": phone,
                "start": start,
                "end": end,
                "note": row.values.get("note") or "",
            }
            self.pairings.append(pairing)

    def _db_current_with(self, hh: str, phone: str) -> bool:
        h = self.db.households.get(hh)
        p = self.db.people.get(phone)
        if h is None or p is None:
            return False
        return any(
            x["cadre_id"] == p["id"] and x["end_date"] is None for x in self.db.pairings.get(h["id"], ())
        )

    def _household_ref(self, row: Row, code: str) -> bool:
        if code in self.households or code in self.db.households:
            return True
        key = "io.err.ref_bad_household" if code in self.bad["households"] else "io.err.unknown_household"
        row.fail(key, "household", value=code)
        return False

    def _unique_ids(self, rows: Sequence[Row]) -> None:
        """One person heads one household: an ID number on two household rows refuses both (like a
        duplicate 户编号), and one already stored in full for another household refuses the row.
        Masked numbers (our own exports) are not compared: the last four digits tell no one apart."""
        stored = {
            r["head_id_number"]: code
            for code, r in self.db.households.items()
            if r.get("head_id_number") and not str(r["head_id_number"]).startswith("*")
        }
        seen: dict[str, Row] = {}
        for row in rows:
            full = row.values.get("_id_full")
            if not full:
                continue
            shown = v.mask_id(full)
            first = seen.get(full)
            if first is not None:
                row.fail("io.err.duplicate_id", "head_id_number", value=shown, first=first.number)
                if not any(p.key == "io.err.duplicate_id" for p in first.problems):
                    first.fail("io.err.duplicate_id", "head_id_number", value=shown, first=row.number)
                continue
            seen[full] = row
            other = stored.get(full)
            if other is not None and other != str(row.values.get("code")):
                row.fail("io.err.duplicate_id_db", "head_id_number", value=shown, code=other)

    def _unique(self, rows: Sequence[Row], key: str, into: dict[str, Row], entity: str) -> None:
        for row in rows:
            k = row.values.get(key)
            if k is None or k == "":
                if row.bad:
                    continue
                row.fail("io.err.required", key)
                continue
            k = str(k)
            first = into.get(k)
            if first is not None:
                row.fail("io.err.duplicate", key, value=k, first=first.number)
                first_bad = first
                # Both copies are suspect: keep neither rather than guess which one is right.
                if not first_bad.bad:
                    first_bad.fail("io.err.duplicate", key, value=k, first=row.number)
                self.bad[entity].add(k)
                continue
            if row.bad:
                self.bad[entity].add(k)
                continue
            into[k] = row
        for k in self.bad[entity]:
            into.pop(k, None)


# ---------------------------------------------------------------------------------------------------
# Writing


def _chunks(items: Sequence[Any], n: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(
            POVERTY_CAUSE_ZH[PovertyCause(c)] if c in PovertyCause._value2member_map_ else str(c)
            for c in value
        )
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _same(old: Any, new: Any) -> bool:
    if (
        isinstance(old, Decimal | float | int)
        and isinstance(new, Decimal | float | int)
        and not isinstance(old, bool)
    ):
        return Decimal(str(old)) == Decimal(str(new))
    if old in (None, "") and new in (None, ""):
        return True
    return bool(old == new)


class _Writer:
    def __init__(
        self, session: AsyncSession, result: ImportResult, progress: Progress | None, total: int
    ) -> None:
        self.s = session
        self.result = result
        self.progress = progress
        self.total = total
        self.done = 0

    def tick(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress("write", self.done, self.total)

    async def insert(self, model: Any, rows: list[dict[str, Any]], key: str | None) -> dict[str, int]:
        ids: dict[str, int] = {}
        for chunk in _chunks(rows):
            if key is None:
                await self.s.execute(insert(model), list(chunk))
            else:
                res = await self.s.execute(
                    insert(model).returning(model.id, getattr(model, key)), list(chunk)
                )
                ids.update({str(k): int(i) for i, k in res.all()})
            self.tick(len(chunk))
        return ids

    async def update(self, model: Any, rows: list[dict[str, Any]]) -> None:
        # Bulk UPDATE by primary key groups rows by their key set; keep the sets few.
        by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_keys[tuple(sorted(r))].append(r)
        for group in by_keys.values():
            for chunk in _chunks(group):
                await self.s.execute(update(model), list(chunk))
                self.tick(len(chunk))

    def diff(
        self,
        entity: str,
        key: str,
        name: str,
        old: dict[str, Any],
        new: dict[str, Any],
        headers: dict[str, str],
    ) -> dict[str, Any] | None:
        """The changed fields of new against old (with id), recording a Change; None when equal."""
        changed = {f: val for f, val in new.items() if not _same(old.get(f), val)}
        if not changed:
            self.result.counts[entity]["unchanged"] += 1
            return None
        self.result.counts[entity]["updated"] += 1
        self.result.changes.append(
            Change(
                entity,
                "updated",
                key,
                name,
                [(headers.get(f, f), _show(old.get(f)), _show(val)) for f, val in changed.items()],
            )
        )
        return {"id": old["id"], **changed}

    def created(self, entity: str, key: str, name: str) -> None:
        self.result.counts[entity]["created"] += 1
        self.result.changes.append(Change(entity, "created", key, name))


def _present(row: Row, fields: Iterable[str]) -> dict[str, Any]:
    """The values of the columns this row's sheet has; missing columns are left alone on update."""
    return {f: row.values.get(f) for f in fields if row.has(f)}


def _headers(sheet: Any) -> dict[str, str]:
    return {c.key: c.header for c in sheet.columns}


VILLAGE_FIELDS = ("name", "township", "county", "county_code", "groups_count", "lat", "lon")
HOUSEHOLD_FIELDS = (
    "group_no",
    "head_name",
    "head_id_number",
    "members_count",
    "phone",
    "address",
    "lat",
    "lon",
    "poverty_causes",
    "status",
    "registered_poor",
    "income_per_head",
    "income_year",
    "plan",
)
HOUSEHOLD_DEFAULTS: dict[str, Any] = {
    "members_count": 1,
    "address": "",
    "poverty_causes": [],
    "status": HouseholdStatus.LIFTED.value,
    "registered_poor": True,
    "plan": "",
}
MEMBER_FIELDS = ("name", "relation", "gender", "birth_year", "health", "education", "occupation", "id_number",
                 "id_hash")
# ID number columns and where their keyed hash goes (department lists are matched by it).
ID_COLUMNS = {"head_id_number": "head_id_hash", "id_number": "id_hash"}


def _with_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: (defaults[k] if val is None and k in defaults else val) for k, val in values.items()}


async def _write(
    session: AsyncSession,
    chk: _Checker,
    db: _Existing,
    result: ImportResult,
    clock: Clock,
    progress: Progress | None,
) -> None:
    now = clock.now()
    today = local_today(clock)
    total = (
        len(chk.villages)
        + len(chk.auto_villages)
        + len(chk.teams)
        + len(chk.people)
        + len(chk.households)
        + len(chk.members)
        + len(chk.pairings)
    )
    w = _Writer(session, result, progress, total)

    # Villages
    village_ids = {code: r["id"] for code, r in db.villages.items()}
    new_rows: list[dict[str, Any]] = []
    upd: list[dict[str, Any]] = []
    vals: dict[str, Any]
    for code, row in chk.villages.items():
        vals = _with_defaults(
            _present(row, VILLAGE_FIELDS), {"township": "", "county": "", "groups_count": 0}
        )
        if code in db.villages:
            d = w.diff(
                "villages", code, vals.get("name") or code, db.villages[code], vals, _headers(VILLAGES)
            )
            if d:
                upd.append(d)
        else:
            new_rows.append({"township": "", "county": "", "groups_count": 0, **vals, "code": code})
            w.created("villages", code, str(vals.get("name")))
    for code, vals in chk.auto_villages.items():
        if code not in db.villages and code not in chk.villages:
            new_rows.append({**vals, "groups_count": 0})
            w.created("villages", code, vals["name"])
    village_ids.update(await w.insert(Village, new_rows, "code"))
    await w.update(Village, upd)

    # Teams (leaders are set once people exist)
    team_ids = {name: r["id"] for name, r in db.teams.items()}
    new_rows, upd = [], []
    for name, row in chk.teams.items():
        vals = {}
        if row.has("village"):
            ref = row.values.get("village")
            vals["village_id"] = village_ids[ref] if ref else None
        if name in db.teams:
            d = w.diff("teams", name, name, db.teams[name], vals, {"village_id": "驻村村编码"})
            if d:
                upd.append(d)
        else:
            new_rows.append({"village_id": None, **vals, "name": name})
            w.created("teams", name, name)
    team_ids.update(await w.insert(Team, new_rows, "name"))
    await w.update(Team, upd)

    # People
    person_ids = {phone: r["id"] for phone, r in db.people.items()}
    new_rows, upd = [], []
    people_headers = {**_headers(PEOPLE), "team_id": "所属工作队", "village_id": "所在村编码"}
    for phone, row in chk.people.items():
        vals = _present(row, ("name", "role", "work_unit", "active"))
        if "role" in vals and not vals["role"]:
            vals["role"] = Role.CADRE.value
        if "active" in vals and vals["active"] is None:
            vals["active"] = True
        if "work_unit" in vals and vals["work_unit"] is None:
            vals["work_unit"] = ""
        if row.has("team"):
            vals["team_id"] = team_ids[row.values["team"]] if row.values.get("team") else None
        if row.has("village"):
            vals["village_id"] = village_ids[row.values["village"]] if row.values.get("village") else None
        if phone in db.people:
            d = w.diff("people", phone, str(vals.get("name", phone)), db.people[phone], vals, people_headers)
            if d:
                upd.append(d)
        else:
            new_rows.append(
                {
                    "role": Role.CADRE.value,
                    "work_unit": "",
                    "active": True,
                    **vals,
                    "phone": phone,
                    "created_at": now,
                }
            )
            w.created("people", phone, str(vals.get("name")))
    person_ids.update(await w.insert(Person, new_rows, "phone"))
    await w.update(Person, upd)

    # Team leaders and township contacts come from the people's roles.
    lead: dict[str, dict[str, Any]] = defaultdict(dict)
    for phone, row in chk.people.items():
        team, role = row.values.get("team"), row.values.get("role")
        if team and role == Role.LEADER.value:
            lead[team]["leader_id"] = person_ids[phone]
        elif team and role == Role.TOWNSHIP.value:
            lead[team]["township_contact_id"] = person_ids[phone]
    upd = []
    for team, vals in lead.items():
        old = db.teams.get(team, {"id": team_ids[team]})
        changed = {k: x for k, x in vals.items() if old.get(k) != x}
        if changed:
            upd.append({"id": team_ids[team], **changed})
    await w.update(Team, upd)

    # Households
    hh_headers = {**_headers(HOUSEHOLDS), "village_id": "村编码"}
    household_ids = {code: r["id"] for code, r in db.households.items()}
    members_by_hh: dict[str, list[Row]] = defaultdict(list)
    for row in chk.members:
        members_by_hh[str(row.values["household"])].append(row)
    new_rows, upd = [], []
    for code, row in chk.households.items():
        vals = _with_defaults(_present(row, HOUSEHOLD_FIELDS), HOUSEHOLD_DEFAULTS)
        vals["village_id"] = village_ids[row.values["village"]]
        old_row = db.households.get(code)
        if old_row is not None:
            old = old_row
            new_id = vals.get("head_id_number")
            old_id = old.get("head_id_number")
            # A masked number never replaces the full one stored with --full-id.
            if (
                new_id
                and old_id
                and new_id.startswith("*")
                and not old_id.startswith("*")
                and old_id[-4:] == new_id[-4:]
            ):
                vals["head_id_number"] = old_id
            d = w.diff(
                "households", code, str(vals.get("head_name", old["head_name"])), old, vals, hh_headers
            )
            if d:
                upd.append({**d, "updated_at": now})
        else:
            if not row.has("members_count") or row.values.get("members_count") is None:
                vals["members_count"] = max(1, len(members_by_hh.get(code, ())))
            new_rows.append({**HOUSEHOLD_DEFAULTS, **vals, "code": code, "updated_at": now})
            w.created("households", code, str(vals["head_name"]))
    household_ids.update(await w.insert(Household, new_rows, "code"))
    await w.update(Household, upd)

    # Members: a household's members are replaced together when they differ.
    if members_by_hh:
        existing_ids = [household_ids[c] for c in members_by_hh if c in db.households]
        old_members: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for chunk in _chunks(existing_ids, 500):
            res = await session.execute(
                select(HouseholdMember)
                .where(HouseholdMember.household_id.in_(chunk))
                .order_by(HouseholdMember.id)
            )
            for m in res.scalars():
                old_members[m.household_id].append(tuple(getattr(m, f) or None for f in MEMBER_FIELDS))
        replace: list[int] = []
        new_rows = []
        for code, rows in members_by_hh.items():
            hid = household_ids[code]
            new = [tuple(r.values.get(f) or None for f in MEMBER_FIELDS) for r in rows]
            if old_members.get(hid) == new:
                result.counts["members"]["unchanged"] += len(new)
                continue
            if hid in old_members:
                replace.append(hid)
                result.counts["members"]["replaced"] += len(new)
            else:
                result.counts["members"]["created"] += len(new)
            for r in rows:
                new_rows.append(
                    {
                        "household_id": hid,
                        **{f: r.values.get(f) or "" for f in MEMBER_FIELDS},
                        "gender": r.values.get("gender"),
                        "birth_year": r.values.get("birth_year"),
                        "id_number": r.values.get("id_number"),
                        "id_hash": r.values.get("id_hash"),
                    }
                )
        for chunk in _chunks(replace, 500):
            await session.execute(delete(HouseholdMember).where(HouseholdMember.household_id.in_(chunk)))
        await w.insert(HouseholdMember, new_rows, None)

    # Pairings
    await _write_pairings(w, chk, db, household_ids, person_ids, today)


async def _write_pairings(
    w: _Writer,
    chk: _Checker,
    db: _Existing,
    household_ids: dict[str, int],
    person_ids: dict[str, int],
    today: date,
) -> None:
    result = w.result
    names = {pid: r["name"] for pid, r in db.person_by_id.items()}
    for phone, row in chk.people.items():
        names[person_ids[phone]] = str(row.values.get("name"))
    head = {code: str(r.values.get("head_name")) for code, r in chk.households.items()}
    # The database's pairings, updated in memory as rows are applied, so a file is applied in order.
    pairs: dict[int, list[dict[str, Any]]] = {hid: [dict(p) for p in ps] for hid, ps in db.pairings.items()}
    new_rows: list[dict[str, Any]] = []
    ends: dict[int, date] = {}
    for p in chk.pairings:
        hid, cid = household_ids[p["household"]], person_ids[p["phone"]]
        hh_pairs = pairs.setdefault(hid, [])
        hname = head.get(p["household"]) or db.households.get(p["household"], {}).get("head_name", "")
        if p["end"] is None:
            current = [x for x in hh_pairs if x["end_date"] is None]
            if any(x["cadre_id"] == cid for x in current):
                result.counts["pairings"]["unchanged"] += 1
                continue
            start = p["start"] or today
            for old in current:
                end = max(old["start_date"], start - timedelta(days=1))
                old["end_date"] = end
                if "id" in old:
                    ends[old["id"]] = end
                result.counts["pairings"]["handover"] += 1
                result.changes.append(
                    Change(
                        "pairings",
                        "handover",
                        p["household"],
                        hname,
                        [
                            ("帮扶责任人", names.get(old["cadre_id"], ""), names.get(cid, "")),
                            ("交接日期", "", start.isoformat()),
                        ],
                    )
                )
            if not current:
                result.counts["pairings"]["created"] += 1
                result.changes.append(
                    Change(
                        "pairings", "created", p["household"], hname, [("帮扶责任人", "", names.get(cid, ""))]
                    )
                )
            new = {
                "household_id": hid,
                "cadre_id": cid,
                "start_date": start,
                "end_date": None,
                "note": p["note"],
            }
            hh_pairs.append(new)
            new_rows.append(new)
            continue
        # A row with an end date: history, or the end of a current pairing.
        match = next(
            (
                x
                for x in hh_pairs
                if x["cadre_id"] == cid
                and (x["start_date"] == p["start"] or (p["start"] is None and x["end_date"] is None))
            ),
            None,
        )
        if match is None:
            new = {
                "household_id": hid,
                "cadre_id": cid,
                "start_date": p["start"],
                "end_date": p["end"],
                "note": p["note"],
            }
            hh_pairs.append(new)
            new_rows.append(new)
            result.counts["pairings"]["history"] += 1
        elif match["end_date"] == p["end"]:
            result.counts["pairings"]["unchanged"] += 1
        else:
            was_open = match["end_date"] is None
            match["end_date"] = p["end"]
            if "id" in match:
                ends[match["id"]] = p["end"]
            result.counts["pairings"]["ended" if was_open else "updated"] += 1
            result.changes.append(
                Change(
                    "pairings",
                    "ended",
                    p["household"],
                    hname,
                    [("帮扶责任人", names.get(cid, ""), ""), ("结束日期", "", p["end"].isoformat())],
                )
            )
    await w.update(Pairing, [{"id": i, "end_date": e} for i, e in ends.items()])
    await w.insert(Pairing, new_rows, None)


# ---------------------------------------------------------------------------------------------------
# Entry points


async def import_roster(
    session: AsyncSession,
    roster: Roster,
    *,
    clock: Clock,
    full_id: bool = False,
    skip_bad: bool = False,
    progress: Progress | None = None,
    id_key: str = "",
) -> ImportResult:
    """Check every row of roster, then write it (all or nothing; good rows only with skip_bad).

    Never commits: the caller commits when result.applied, or rolls back.
    """
    result = ImportResult(rows_total=roster.row_count, ignored_sheets=list(roster.ignored_sheets))
    for raw in roster.sheets:
        result.ignored_columns += [(raw.title, h) for h in raw.ignored_headers]
    result.problems = _sheet_problems(roster)
    if result.problems:
        return result
    db = await _load_existing(session)
    rows: dict[str, list[Row]] = {k: [] for k in SHEET_BY_KEY}
    done = 0
    for raw in roster.sheets:
        for row in _parse_rows(raw, full_id, result.neutralised, id_key):
            rows[raw.sheet.key].append(row)
            done += 1
            if progress and done % 1000 == 0:
                progress("check", done, result.rows_total)
    if progress:
        progress("check", result.rows_total, result.rows_total)
    chk = _Checker(roster, db, local_today(clock))
    chk.check(rows)
    all_rows = [
        r for k in ("villages", "teams", "people", "households", "members", "pairings") for r in rows[k]
    ]
    bad = [r for r in all_rows if r.bad]
    result.bad_rows = bad
    result.problems = [p for r in bad for p in r.problems]
    if bad and not skip_bad:
        return result
    await _write(session, chk, db, result, clock, progress)
    await session.flush()
    await _write_id_hashes(session, chk)
    result.applied = True
    return result


async def _write_id_hashes(session: AsyncSession, chk: _Checker) -> None:
    """The keyed hash of each household head's full ID number (Settings.id_hash_key; branch "monitoring"),
    so department lists match without the number being kept. A masked cell leaves the hash alone."""
    pairs = [{"c": code, "h": row.values["head_id_hash"]} for code, row in chk.households.items()
             if not row.bad and row.values.get("head_id_hash")]
    if pairs:
        table = cast(Table, Household.__table__)
        stmt = update(table).where(table.c.code == bindparam("c")).values(head_id_hash=bindparam("h"))
        await session.execute(stmt, pairs)


async def import_file(
    session: AsyncSession,
    content: bytes,
    filename: str,
    *,
    clock: Clock,
    full_id: bool = False,
    skip_bad: bool = False,
    progress: Progress | None = None,
    id_key: str = "",
) -> ImportResult:
    """Read and import a roster file's bytes (xlsx or csv); an unreadable file is a problem, not a crash."""
    try:
        roster = await asyncio.to_thread(read_roster, content, filename)
    except RosterError as e:
        return ImportResult(problems=[Problem(e.key, e.args_)])
    return await import_roster(
        session, roster, clock=clock, full_id=full_id, skip_bad=skip_bad, progress=progress, id_key=id_key
    )


def bad_rows_workbook(result: ImportResult, t: Translator) -> bytes:
    """The refused rows as they were written, each sheet with a last column saying what is wrong."""
    import openpyxl
    from openpyxl.styles import Font, PatternFill

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    by_sheet: dict[str, list[Row]] = defaultdict(list)
    raws: dict[str, RawSheet] = {}
    for row in result.bad_rows:
        by_sheet[row.raw.title].append(row)
        raws[row.raw.title] = row.raw
    reason = t("io.bad.reason_header")
    for title, rows in by_sheet.items():
        ws = wb.create_sheet(title[:31])
        raw = raws[title]
        append_row(ws, [t("io.bad.row_header"), *raw.headers, reason])  # the file's own headers: user text
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in sorted(rows, key=lambda r: r.number):
            cells = [v.text(c) for c in row.cells] + [""] * (len(raw.headers) - len(row.cells))
            append_row(ws, [row.number, *cells[: len(raw.headers)], "；".join(p.render(t) for p in row.problems)])
            ws.cell(ws.max_row, len(raw.headers) + 2).fill = PatternFill("solid", fgColor="FFF2CC")
        ws.freeze_panes = "B2"
        ws.column_dimensions[ws.cell(1, len(raw.headers) + 2).column_letter].width = 60
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
