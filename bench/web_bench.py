"""Benchmark: the web dashboard on a county of 100,000 households on PostgreSQL (prints numbers).

    python bench/web_bench.py                          # 100,000 households, 60 s of 50 users
    python bench/web_bench.py --households 20000 --seconds 20

Generates the roster of bench/scheduler_bench.py (households, cadres, teams, a year of visits and
check-ins, difficulties) into a scratch PostgreSQL database, starts `bangfu web` on it in a subprocess,
signs people in through real one-time links, then
1. server time (the Server-Timing header) of the overview and the list pages, per role (a team leader,
   a township officer over 10 teams, the county admin): the first (cold) request and p50/p99 of the rest;
2. 50 concurrent users (leaders of different teams, townships, the admin) clicking through the pages for
   --seconds: client-side p50/p99 and errors.
Targets: server time p99 < 300 ms; under load p99 < 1 s, no errors.

With `--baseline DIR` (a source tree of main, e.g. `git archive main | tar -x -C /tmp/base`) the same
measurements run first against a server started from DIR on the same database, and a summary prints both.
This tree's server is measured once the county's figures are precomputed (the scheduler's tick or the web's
own refresher does that in production; the time it took is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from sqlalchemy.engine import make_url

from bench.scheduler_bench import PG_URL, _pg_admin, generate, load_postgres
from bot.clock import SystemClock, local_today
from bot.services.weblinks import create_link
from bot.store.db import create_engine, session_factory
from bot.store.models import Person

ROOT = str(Path(__file__).resolve().parents[1])
PAGES = ["/", "/households", "/households?overdue=1", "/households?q=1", "/difficulties", "/cadres"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


async def links(url: str, person_ids: list[int]) -> list[str]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            out = []
            for pid in person_ids:
                person = await s.get(Person, pid)
                assert person is not None
                out.append(await create_link(s, person, SystemClock().now()))
            return out
    finally:
        await engine.dispose()


async def add_admin(url: str) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            admin = Person(name="县管理员", role="admin", active=True)
            s.add(admin)
            await s.flush()
            return admin.id
    finally:
        await engine.dispose()


async def signed_in(base: str, token: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(f"{base}/login/{token}", allow_redirects=False) as r:
        assert r.status == 303, r.status
    return session


def server_ms(r: aiohttp.ClientResponse) -> float:
    return float(r.headers["Server-Timing"].split("dur=")[1])


async def per_page(base: str, label: str, session: aiohttp.ClientSession,
                   repeat: int) -> tuple[list[float], list[float]]:
    worst: list[float] = []
    colds: list[float] = []
    for page in PAGES:
        times = []
        for _ in range(repeat + 1):
            async with session.get(base + page) as r:
                await r.read()
                assert r.status == 200, (page, r.status)
                times.append(server_ms(r))
        rest = times[1:]
        worst += rest
        colds.append(times[0])
        print(f"  {label:9} {page:24} cold {times[0]:7.1f} ms   p50 {statistics.median(rest):6.1f}   "
              f"p99 {pct(rest, 0.99):6.1f} ms")
    return worst, colds


async def load(base: str, sessions: list[aiohttp.ClientSession], seconds: float) -> dict[str, float]:
    lat: list[float] = []
    srv: list[float] = []
    errors = 0
    end = time.monotonic() + seconds

    async def user(session: aiohttp.ClientSession, rng: random.Random) -> None:
        nonlocal errors
        while time.monotonic() < end:
            page = rng.choice(PAGES)
            t0 = time.perf_counter()
            try:
                async with session.get(base + page) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                    else:
                        srv.append(server_ms(r))
            except aiohttp.ClientError:
                errors += 1
            lat.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(rng.uniform(0.2, 1.0))  # a person reads before the next click

    await asyncio.gather(*(user(s, random.Random(i)) for i, s in enumerate(sessions)))
    print(f"  {len(sessions)} users, {seconds:.0f} s: {len(lat)} requests ({len(lat) / seconds:.1f}/s), "
          f"errors {errors}; client p50 {pct(lat, 0.5):.0f} ms, p99 {pct(lat, 0.99):.0f} ms; "
          f"server p99 {pct(srv, 0.99):.0f} ms")
    return {"load_p50": pct(lat, 0.5), "load_p99": pct(lat, 0.99), "errors": float(errors),
            "rate": len(lat) / seconds}


async def figures_ready(url: str, n_teams: int, limit_s: float = 600) -> float:
    """Seconds until every team has this week's and the trend weeks' figures (the scheduler's / web's job)."""
    from sqlalchemy import func, select

    from bot.scheduler.figures import TABLE, trend_mondays

    engine = create_engine(url)
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < limit_s:
            async with session_factory(engine)() as s:
                weeks = trend_mondays(local_today(SystemClock()))
                n = await s.scalar(select(func.count(func.distinct(TABLE.c.week))).where(
                    TABLE.c.week.in_(weeks), TABLE.c.name == "overdue"))
                teams = await s.scalar(select(func.count(func.distinct(TABLE.c.team_id))).where(
                    TABLE.c.week == weeks[-1], TABLE.c.name == "overdue"))
            if n == len(weeks) and teams == n_teams:
                return time.perf_counter() - t0
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    return float("nan")


async def measure(label: str, root: str, precomputes: bool, url: str, args: argparse.Namespace, n_teams: int,
                  admin: int) -> dict[str, float]:
    """Start `bangfu web` from the source tree `root` on the database and measure it; returns the summary."""
    people = [1, n_teams + 1, admin]
    users = [1 + (i % n_teams) for i in range(args.users - 5)] + [n_teams + 1 + i for i in range(4)] + [admin]
    env = {**os.environ, "BANGFU_DATABASE_URL": url, "BANGFU_WEB_LISTEN": f"127.0.0.1:{args.port}",
           "PYTHONPATH": root}
    print(f"=== {label}: {root} (load average {os.getloadavg()[0]:.2f})")
    proc = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "bot", "web"], env=env, stdout=subprocess.DEVNULL, cwd=root)
    out: dict[str, float] = {}
    try:
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"bangfu web from {root} exited with {proc.returncode}")
            try:
                async with aiohttp.ClientSession() as c, c.get(base + "/signed-out") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        if precomputes:
            ready = await figures_ready(url, n_teams)
            print(f"0. county figures precomputed (as the scheduler tick / the web's refresher does): {ready:.1f} s")
            out["figures_s"] = ready
        tokens = await links(url, people)
        print("1. server time per page (Server-Timing), sequential:")
        worst: list[float] = []
        colds: list[float] = []
        for who, token in zip(("leader", "township", "county"), tokens, strict=True):
            s = await signed_in(base, token)
            try:
                w, c = await per_page(base, who, s, args.repeat)
                worst += w
                colds += c
            finally:
                await s.close()
        out["warm_p99"] = pct(worst, 0.99)
        out["cold_max"] = max(colds)
        print(f"  all pages, warm: p99 {out['warm_p99']:.1f} ms (target < 300 ms); first request max "
              f"{out['cold_max']:.1f} ms")
        print(f"2. {args.users} concurrent users:")
        sessions = [await signed_in(base, t) for t in await links(url, users)]
        try:
            firsts = []
            for s in sessions:
                async with s.get(base + "/") as r:
                    await r.read()
                    firsts.append(server_ms(r))
            out["first_p99"] = pct(firsts, 0.99)
            print(f"  first overview per user: p50 {pct(firsts, 0.5):.0f} ms, p99 {out['first_p99']:.0f} ms")
            out.update(await load(base, sessions, args.seconds))
        finally:
            for s in sessions:
                await s.close()
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
    return out


def trees(args: argparse.Namespace) -> list[tuple[str, str, bool]]:
    """(label, source tree, does it precompute figures) to measure: the baseline first, then this tree."""
    out = [("baseline", os.path.abspath(args.baseline))] if args.baseline else []
    out.append(("this tree", ROOT))
    return [(label, root, os.path.exists(os.path.join(root, "bot", "scheduler", "figures.py")))
            for label, root in out]


def cli() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--port", type=int, default=8193)
    ap.add_argument("--baseline", metavar="DIR",
                    help="another source tree (e.g. `git archive main`) measured first on the same database")
    args = ap.parse_args()
    args.trees = trees(args)
    return args


async def main(args: argparse.Namespace) -> None:
    roster = generate(args.households)
    n_teams = roster.count("teams")
    name = f"bangfu_webbench_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        # Migrated by the first tree measured (main's migrations for a baseline); this tree's `bangfu web`
        # applies its own revisions when it starts.
        first = args.trees[0][1]
        await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "db", "upgrade"], check=True,
                                env={**os.environ, "BANGFU_DATABASE_URL": url, "PYTHONPATH": first}, cwd=first)
        t0 = time.perf_counter()
        await load_postgres(url, roster)
        print(f"{args.households:,} households, {n_teams} teams: loaded in {time.perf_counter() - t0:.0f} s; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        admin = await add_admin(url)
        results = {}
        for label, root, precomputes in args.trees:
            results[label] = await measure(label, root, precomputes, url, args, n_teams, admin)
        print("\nsummary (ms)            warm p99   first overview p99   load p50   load p99   errors   req/s")
        for label, r in results.items():
            print(f"  {label:20} {r['warm_p99']:9.1f}   {r['first_p99']:18.0f}   {r['load_p50']:8.0f}   "
                  f"{r['load_p99']:8.0f}   {r['errors']:6.0f}   {r['rate']:5.1f}")
        print("  targets: warm p99 < 300 ms; under load p99 < 1000 ms, no errors")
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main(cli()))
