"""Benchmark: the monitoring sweep and a department-list import on PostgreSQL (prints numbers).

    python bench/monitor_bench.py                    # 100,000 households, 10,000 open cases, 50,000-row list
    python bench/monitor_bench.py --households 20000 --cases 2000 --rows 10000

Generates a county (1,000 villages of 100 households in 10 townships, a team leader per village, a
cadre per 10 households, township and county officers, one chat account each), the households' keyed ID
hashes, and open cases at every step with due dates around today (plus closed ones), loads them with
COPY into a scratch database, then times: the daily sweep (due / overdue / escalation, rendered per
person), the monthly list per leader, the weekly summary to township and county — each as the tick runs
it — and `import_department` of a 50,000-row CSV of which a fifth are on the roster.
Targets: each sweep < 1 s; the import < 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scheduler_bench import PG_URL, Roster, _pg_admin, load_postgres, timed
from sqlalchemy.engine import make_url

from bot.i18n import Catalogs
from bot.io.monitor import import_department, read_rows
from bot.io.template import fake_id_number
from bot.scheduler import due, monitor_tick
from bot.scheduler.rules import load_rules
from bot.scheduler.tick import Context, Plan, load_recipients
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.idhash import id_hash
from bot.store.migrate import upgrade

KEY = "bench-key"
TODAY = date(2026, 12, 7)  # a Monday: the weekly summary day
NOW = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
STEPS = ["accept", "verify", "compare", "assess", "publicize", "township", "county", "announce", "measures",
         "follow_up", "follow_up", "follow_up"]


def generate(n_hh: int, n_cases: int, seed: int = 3) -> tuple[Roster, list[str]]:
    rng = random.Random(seed)
    n_villages = max(n_hh // 100, 1)
    villages = [(v, f"V{v:06d}", f"村{v}", f"镇{v % 10}", "示例县") for v in range(1, n_villages + 1)]
    people: list[tuple[Any, ...]] = []
    teams: list[tuple[Any, ...]] = []
    pid = 0
    for v in range(1, n_villages + 1):
        pid += 1
        people.append((pid, f"队长{v}", "leader", v, v))
        teams.append((v, f"工作队{v}", v, pid))
    n_cadres = max(n_hh // 10, 1)
    cadre0 = pid
    for c in range(n_cadres):
        pid += 1
        people.append((pid, f"干部{c}", "cadre", (c * 10 // 100) % n_villages + 1, (c * 10 // 100) % n_villages + 1))
    for tw in range(10):
        pid += 1
        people.append((pid, f"乡镇{tw}", "township", None, tw + 1))
    for _ in range(2):
        pid += 1
        people.append((pid, "县级", "county", None, 1))
    ids: list[str] = []
    households, pairings = [], []
    for h in range(1, n_hh + 1):
        number = fake_id_number(rng, date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50)))
        ids.append(number)
        v = (h - 1) // 100 + 1
        households.append((h, f"H{h:07d}", min(v, n_villages), rng.randint(1, 8), f"户主{h}", id_hash(number, KEY),
                           3))
        pairings.append((h, cadre0 + (h - 1) // 10 + 1, h, TODAY - timedelta(days=300), None))
    cases = []
    picked = rng.sample(range(1, n_hh + 1), n_cases + n_cases // 2)
    for i, h in enumerate(picked, 1):
        is_open = i <= n_cases
        step = rng.choice(STEPS) if is_open else "closed"
        due_on = TODAY + timedelta(days=rng.randint(-20, 20)) if is_open else None
        cases.append((i, h, (h - 1) // 100 + 1, "cadre_check", step, "identify", is_open, TODAY - timedelta(days=30),
                      due_on, TODAY - timedelta(days=15), 0, f"户主{h}", NOW - timedelta(days=rng.randint(0, 60)),
                      None if is_open else NOW - timedelta(days=rng.randint(0, 20))))
    accounts = [(p[0], "telegram", f"u{p[0]}", f"{p[0]}", p[0], "zh_CN", NOW) for p in people]
    tables = {
        "villages": (["id", "code", "name", "township", "county"], villages),
        "people": (["id", "name", "role", "team_id", "village_id"], people),
        "teams": (["id", "name", "village_id", "leader_id"], teams),
        "households": (["id", "code", "village_id", "group_no", "head_name", "head_id_hash", "members_count"],
                       households),
        "pairings": (["id", "cadre_id", "household_id", "start_date", "end_date"], pairings),
        "accounts": (["id", "channel", "external_id", "chat_id", "person_id", "language", "created_at"], accounts),
        "monitor_cases": (["id", "household_id", "village_id", "source", "step", "phase", "open", "step_started",
                           "step_due", "identify_due", "escalation_level", "head_name", "opened_at", "closed_at"],
                          cases),
    }
    return Roster(tables), ids


def department_csv(ids: list[str], rows: int, seed: int = 5) -> bytes:
    rng = random.Random(seed)
    on_roster = rng.sample(ids, min(rows // 5, len(ids)))
    lines = ["姓名,身份证号码,救助类别"]
    for i, number in enumerate(on_roster):
        lines.append(f"甲{i},{number},临时救助")
    for i in range(rows - len(on_roster)):
        lines.append(f"乙{i},{fake_id_number(rng, date(1960, 1, 1) + timedelta(days=i % 9000))},医疗救助")
    return ("\n".join(lines) + "\n").encode("utf-8")


async def measure(url: str, ids: list[str], n_rows: int) -> None:
    rules = load_rules()
    catalogs = Catalogs(Settings().locales_dir)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async def run(kind: str) -> int:
            async with sessions() as s:
                ctx = Context(NOW, TODAY, rules, catalogs, await load_recipients(s), await due.teams(s), {})
                plan = Plan()
                if kind == "daily":
                    await monitor_tick.daily(s, ctx, plan)
                elif kind == "monthly":
                    await monitor_tick.monthly(s, ctx, plan)
                else:
                    await monitor_tick.weekly(s, ctx, plan, "2026-W49")
                return len(plan.messages)

        for kind in ("daily", "monthly", "weekly"):
            first, median, n = await timed(lambda kind=kind: run(kind))
            print(f"  sweep {kind:8s} first {first:6.3f} s, median {median:6.3f} s, {n:,} messages")
        data = department_csv(ids, n_rows)
        t0 = time.perf_counter()
        table = read_rows(data, "dept.csv")
        async with sessions() as s, s.begin():
            res = await import_department(s, table, "民政", id_key=KEY, rules=rules, now=NOW, today=TODAY)
        took = time.perf_counter() - t0
        print(f"  import  {res.rows:,} rows in {took:6.2f} s: matched {res.matched:,}, opened {res.opened:,}, "
              f"already open {res.already_open:,}, unmatched {len(res.unmatched):,}")
        t0 = time.perf_counter()
        async with sessions() as s, s.begin():
            res = await import_department(s, read_rows(data, "dept.csv"), "民政", id_key=KEY, rules=rules, now=NOW,
                                          today=TODAY)
        print(f"  re-import in {time.perf_counter() - t0:6.2f} s: opened {res.opened:,} (nothing twice), "
              f"already open {res.already_open:,}")
    finally:
        await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=50_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    roster, ids = generate(args.households, args.cases)
    print(f"{args.households:,} households, {args.cases:,} open cases: generated in {time.perf_counter() - t0:.1f} s")
    name = f"bangfu_monbench_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        t0 = time.perf_counter()
        await load_postgres(url, roster)
        print(f"  postgres loaded in {time.perf_counter() - t0:.1f} s (database {name})")
        await measure(url, ids, args.rows)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
