"""Benchmark: the scheduler's daily computations on a province-sized roster (prints numbers).

    python bench/scheduler_bench.py                       # 10k and 100k households, SQLite and PostgreSQL
    python bench/scheduler_bench.py --sizes 100000 --backends postgres

For each size it generates a roster (households, one cadre per 10 households, one team per 10 cadres,
a year of visits (~12 per household), village-day check-ins (~2 per cadre per week), some leave and
difficulties) with bulk inserts (sqlite3 executemany / asyncpg COPY) into a freshly migrated database,
then times the set-based computations the tick runs: the daily overdue list, last week's village-day
shortfall, a seasonal coverage check, late difficulties, and one whole daily tick (rendering and
writing the outbox). PostgreSQL databases are uniquely named scratch databases, dropped afterwards.
Target: each daily computation under 1 s at 100,000 households on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete
from sqlalchemy.engine import make_url

from bot.i18n import Catalogs
from bot.scheduler import due
from bot.scheduler.rules import load_rules
from bot.scheduler.tick import run_tick
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.store.models import Base, Outbox, SchedulerMark

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 24)  # a Tuesday
START = TODAY - timedelta(days=365)

Row = tuple[Any, ...]


@dataclass
class Roster:
    tables: dict[str, tuple[list[str], list[Row]]]

    def count(self, table: str) -> int:
        return len(self.tables[table][1])


def generate(n_households: int, seed: int = 1) -> Roster:
    """A deterministic roster of n households (10 per cadre, 10 cadres per team)."""
    rng = random.Random(seed)
    n_cadres = max(1, n_households // 10)
    n_teams = max(1, n_cadres // 10)
    created = datetime(2025, 1, 1, tzinfo=UTC)
    villages = [(i, f"V{i:06d}", f"村{i}") for i in range(1, n_teams + 1)]
    # People: leaders 1..T, township contacts T+1..2T (one per 10 teams reused), cadres after.
    people: list[Row] = []
    for t in range(1, n_teams + 1):
        people.append((t, f"队长{t}", "leader", t))
    town_base = n_teams
    n_town = max(1, n_teams // 10)
    for k in range(1, n_town + 1):
        people.append((town_base + k, f"镇联系人{k}", "township", None))
    cadre_base = town_base + n_town
    for c in range(1, n_cadres + 1):
        people.append((cadre_base + c, f"干部{c}", "cadre", (c - 1) // 10 + 1))
    teams = [(t, f"工作队{t}", t, t, town_base + (t - 1) % n_town + 1) for t in range(1, n_teams + 1)]
    households = [(h, f"H{h:07d}", (h - 1) // 100 + 1, f"户主{h}") for h in range(1, n_households + 1)]
    pairings: list[Row] = []
    pid = 0
    for h in range(1, n_households + 1):
        cadre = cadre_base + (h - 1) // 10 + 1
        if h % 20 == 0:  # some history: an ended pairing before the current one
            pid += 1
            pairings.append((pid, cadre_base + rng.randint(1, n_cadres), h, START - timedelta(days=400),
                             START - timedelta(days=30)))
        pid += 1
        pairings.append((pid, cadre, h, START - timedelta(days=30), None))
    visits: list[Row] = []
    vid = 0
    kinds = ("routine", "routine", "routine", "policy", "spring", "summer", "autumn")
    for h in range(1, n_households + 1):
        cadre = cadre_base + (h - 1) // 10 + 1
        d = START + timedelta(days=rng.randint(0, 20))
        stop = TODAY - timedelta(days=rng.randint(35, 90)) if rng.random() < 0.06 else TODAY
        while d < stop:
            vid += 1
            kind = rng.choice(kinds)
            visits.append((vid, f"b{vid}", h, cadre, d, kind, json.dumps([kind]),
                           datetime.combine(d, datetime.min.time(), tzinfo=TZ).astimezone(UTC)))
            d += timedelta(days=rng.randint(10, 45))
    checkins: list[Row] = []
    cid = 0
    monday0 = START - timedelta(days=START.isoweekday() - 1)
    weeks = (TODAY - monday0).days // 7 + 1
    for c in range(1, n_cadres + 1):
        cadre = cadre_base + c
        for w in range(weeks):
            for wd in rng.sample(range(7), rng.choice((0, 1, 2, 2, 2, 3, 3, 4))):
                day = monday0 + timedelta(days=7 * w + wd)
                if day > TODAY:
                    continue
                cid += 1
                checkins.append((cid, cadre, day, datetime.combine(day, datetime.min.time(), tzinfo=TZ)
                                 .astimezone(UTC) + timedelta(hours=9)))
    leaves = [
        (i, cadre_base + rng.randint(1, n_cadres), TODAY - timedelta(days=rng.randint(0, 10)),
         TODAY + timedelta(days=rng.randint(0, 10)), cadre_base + rng.randint(1, n_cadres))
        for i in range(1, max(2, n_cadres // 50))
    ]
    statuses = ("open", "acknowledged", "assigned", "resolved", "resolved")
    difficulties = []
    for i in range(1, max(2, n_households // 20)):
        c = rng.randint(1, n_cadres)
        at = datetime.combine(TODAY - timedelta(days=rng.randint(0, 120)), datetime.min.time(), tzinfo=TZ)
        difficulties.append((i, f"d{i}", cadre_base + c, (c - 1) // 10 + 1, rng.randint(1, n_households),
                             "housing", "房屋漏雨", rng.choice(statuses), at.astimezone(UTC)))
    accounts = [(p[0], "telegram", f"u{p[0]}", f"{p[0]}", p[0], "zh_CN", created) for p in people]
    return Roster({
        "villages": (["id", "code", "name"], villages),
        "people": (["id", "name", "role", "team_id"], people),
        "teams": (["id", "name", "village_id", "leader_id", "township_contact_id"], teams),
        "households": (["id", "code", "village_id", "head_name"], households),
        "pairings": (["id", "cadre_id", "household_id", "start_date", "end_date"], pairings),
        "visits": (["id", "idem_key", "household_id", "cadre_id", "visit_date", "kind", "kinds", "created_at"],
                   visits),
        "checkins": (["id", "cadre_id", "day", "at"], checkins),
        "leaves": (["id", "person_id", "start_date", "end_date", "covered_by_id"], leaves),
        "difficulties": (["id", "idem_key", "reporter_id", "team_id", "household_id", "category", "description",
                          "status", "created_at"], difficulties),
        "accounts": (["id", "channel", "external_id", "chat_id", "person_id", "language", "created_at"], accounts),
    })


def _defaults(table: str, given: list[str]) -> dict[str, Any]:
    """Values for the NOT NULL columns the generator leaves out (from the models' defaults), so the
    bench keeps working when a feature adds a column with a default."""
    out: dict[str, Any] = {}
    for col in Base.metadata.tables[table].columns:
        if col.name in given or col.nullable or col.primary_key or col.server_default is not None:
            continue
        d = col.default
        if d is None:
            raise SystemExit(f"bench: {table}.{col.name} is NOT NULL without a default; update the generator")
        arg = getattr(d, "arg", None)
        out[col.name] = arg(None) if callable(arg) else arg
    return out


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list | dict):
        return json.dumps(v)
    return v


def load_sqlite(path: Path, roster: Roster) -> None:
    """Bulk insert with sqlite3 executemany in one transaction (foreign keys off during the load)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")  # 400 MB: the indexes are maintained in memory during the load
    with con:
        for table, (cols, rows) in roster.tables.items():
            extra = _defaults(table, cols)
            all_cols = cols + list(extra)
            tail = tuple(_sqlite_value(v) for v in extra.values())
            sql = f"INSERT INTO {table} ({', '.join(all_cols)}) VALUES ({', '.join('?' * len(all_cols))})"
            con.executemany(sql, (tuple(_sqlite_value(v) for v in r) + tail for r in rows))
    con.execute("ANALYZE")
    con.close()


async def load_postgres(url: str, roster: Roster) -> None:
    """Bulk insert with asyncpg COPY, then reset sequences and ANALYZE."""
    import asyncpg

    u = make_url(url)
    con = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username, database=u.database)
    try:
        async with con.transaction():
            await con.execute("SET session_replication_role = replica")  # skip FK checks for the load
            for table, (cols, rows) in roster.tables.items():
                extra = _defaults(table, cols)
                tail = tuple(json.dumps(v) if isinstance(v, list | dict) else v for v in extra.values())
                await con.copy_records_to_table(table, records=[r + tail for r in rows], columns=cols + list(extra))
                await con.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        # VACUUM as autovacuum would soon do: sets the visibility map, so index-only scans stay index-only.
        await con.execute("VACUUM ANALYZE")
    finally:
        await con.close()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    u = make_url(PG_URL)
    con = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username, database=u.database)
    try:
        await con.execute(sql)
    finally:
        await con.close()


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int = 3) -> tuple[float, float, Any]:
    """(first run, median of the following runs) in seconds, and the last result."""
    t0 = time.perf_counter()
    result = await fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs), result


async def measure(url: str, label: str) -> dict[str, tuple[float, float, int]]:
    rules = load_rules()
    catalogs = Catalogs(Settings().locales_dir)
    engine = create_engine(url)
    sessions = session_factory(engine)
    out: dict[str, tuple[float, float, int]] = {}
    last_monday, _ = due.iso_week_bounds(TODAY - timedelta(days=7))
    autumn_first, autumn_last = rules.seasons.autumn.dates(TODAY.year)

    async def q(fn: Callable[[Any], Awaitable[list[Any]]]) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            async with sessions() as s:
                return len(await fn(s))
        return run

    cases: list[tuple[str, Callable[[Any], Awaitable[list[Any]]]]] = [
        ("daily overdue list", lambda s: due.overdue_households(s, TODAY, rules.visits.cadence_days)),
        ("weekly village-day shortfall", lambda s: due.cadre_weeks(s, last_monday, below=rules.village_days.target)),
        ("seasonal coverage (autumn)", lambda s: due.season_missing(s, autumn_first, autumn_last, TODAY)),
        ("late difficulties", lambda s: due.late_difficulties(s, TODAY, rules)),
    ]
    try:
        for name, fn in cases:
            first, med, n = await timed(await q(fn))
            out[name] = (first, med, n)
            print(f"  {label:<9} {name:<30} first {first * 1000:8.1f} ms   warm {med * 1000:8.1f} ms   rows {n}")

        # One whole daily tick (Tuesday 09:00: cadre reminders, leader alerts, difficulties): computing,
        # rendering every message and writing the outbox. Run once: a second run would find it done,
        # so an earlier run's outbox and marks are cleared first (for --url).
        async with sessions() as s, s.begin():
            await s.execute(delete(Outbox))
            await s.execute(delete(SchedulerMark))
        t0 = time.perf_counter()
        res = await run_tick(sessions, rules, catalogs, datetime.combine(TODAY, datetime.min.time(), tzinfo=TZ)
                             + timedelta(hours=9))
        dt = time.perf_counter() - t0
        out["whole daily tick"] = (dt, dt, res.written)
        print(f"  {label:<9} {'whole daily tick (+outbox)':<30} once  {dt * 1000:8.1f} ms   "
              f"outbox rows {res.written} ({', '.join(res.ran)})")
    finally:
        await engine.dispose()
    return out


async def bench_size(n: int, backends: Iterable[str], keep: bool) -> dict[str, dict[str, tuple[float, float, int]]]:
    t0 = time.perf_counter()
    roster = generate(n)
    print(f"\n{n:,} households: generated {roster.count('people'):,} people, {roster.count('visits'):,} visits, "
          f"{roster.count('checkins'):,} check-ins in {time.perf_counter() - t0:.1f} s")
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    for backend in backends:
        if backend == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="bangfu_bench_"))
            path = tmp / f"bench_{n}.sqlite3"
            url = f"sqlite+aiosqlite:///{path}"
            await asyncio.to_thread(upgrade, url)
            t0 = time.perf_counter()
            await asyncio.to_thread(load_sqlite, path, roster)
            print(f"  sqlite    loaded in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
            try:
                results["sqlite"] = await measure(url, "sqlite")
            finally:
                if not keep:
                    await asyncio.to_thread(shutil.rmtree, tmp)
        elif backend == "postgres":
            name = f"bangfu_bench_{uuid.uuid4().hex[:8]}"
            try:
                await _pg_admin(f'CREATE DATABASE "{name}"')
            except OSError as e:
                print(f"  postgres  not reachable ({e}); skipped")
                continue
            url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
            try:
                await asyncio.to_thread(upgrade, url)
                t0 = time.perf_counter()
                await load_postgres(url, roster)
                print(f"  postgres  loaded in {time.perf_counter() - t0:.1f} s (database {name})")
                results["postgres"] = await measure(url, "postgres")
            finally:
                if not keep:
                    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="household counts, comma-separated")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--keep", action="store_true", help="keep the generated databases")
    ap.add_argument("--url", help="only measure an existing database generated earlier with --keep")
    args = ap.parse_args()
    if args.url:
        await measure(args.url, make_url(args.url).get_backend_name())
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    all_results = {n: await bench_size(n, backends, args.keep) for n in sizes}
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print(f"\ngrowth {lo:,} -> {hi:,} households (x{hi / lo:.0f}), warm times:")
        for backend in backends:
            a, b = all_results[lo].get(backend), all_results[hi].get(backend)
            if not a or not b:
                continue
            for name in a:
                ta, tb = a[name][1], b[name][1]
                print(f"  {backend:<9} {name:<30} {ta * 1000:8.1f} ms -> {tb * 1000:8.1f} ms  (x{tb / ta:.1f})")
    pg = all_results[sizes[-1]].get("postgres")
    if pg:
        worst = max(v[1] for k, v in pg.items() if k != "whole daily tick")
        verdict = "meets" if worst < 1.0 else "MISSES"
        print(f"\ntarget: each daily computation < 1 s at {sizes[-1]:,} households on PostgreSQL: "
              f"slowest warm {worst * 1000:.0f} ms -> {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
