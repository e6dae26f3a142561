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
from bot.clock import SystemClock
from bot.services.weblinks import create_link
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
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


async def per_page(base: str, label: str, session: aiohttp.ClientSession, repeat: int) -> list[float]:
    worst: list[float] = []
    for page in PAGES:
        times = []
        for _ in range(repeat + 1):
            async with session.get(base + page) as r:
                await r.read()
                assert r.status == 200, (page, r.status)
                times.append(server_ms(r))
        rest = times[1:]
        worst += rest
        print(f"  {label:9} {page:24} cold {times[0]:7.1f} ms   p50 {statistics.median(rest):6.1f}   "
              f"p99 {pct(rest, 0.99):6.1f} ms")
    return worst


async def load(base: str, sessions: list[aiohttp.ClientSession], seconds: float) -> None:
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


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--port", type=int, default=8193)
    args = ap.parse_args()
    roster = generate(args.households)
    n_teams = roster.count("teams")
    name = f"bangfu_webbench_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    proc = None
    try:
        await asyncio.to_thread(upgrade, url)
        t0 = time.perf_counter()
        await load_postgres(url, roster)
        print(f"{args.households:,} households, {n_teams} teams: loaded in {time.perf_counter() - t0:.0f} s")
        admin = await add_admin(url)
        # people: leaders 1..T (team t), township contacts T+1.. (10 teams each)
        people = [1, n_teams + 1, admin]
        users = [1 + (i % n_teams) for i in range(args.users - 5)] + [n_teams + 1 + i for i in range(4)] + [admin]
        env = {**os.environ, "BANGFU_DATABASE_URL": url, "BANGFU_WEB_LISTEN": f"127.0.0.1:{args.port}",
               "PYTHONPATH": ROOT}
        proc = await asyncio.to_thread(
            subprocess.Popen, [sys.executable, "-m", "bot", "web"], env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                async with aiohttp.ClientSession() as c, c.get(base + "/signed-out") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        tokens = await links(url, people)
        print("1. server time per page (Server-Timing), sequential:")
        worst: list[float] = []
        for label, token in zip(("leader", "township", "county"), tokens, strict=True):
            s = await signed_in(base, token)
            try:
                worst += await per_page(base, label, s, args.repeat)
            finally:
                await s.close()
        print(f"  all pages, warm: p99 {pct(worst, 0.99):.1f} ms (target < 300 ms)")
        print(f"2. {args.users} concurrent users:")
        sessions = [await signed_in(base, t) for t in await links(url, users)]
        try:
            # Each user's first overview of the day computes the six-week trends of their scope (cached
            # for 10 minutes per scope after that): timed here, one after another.
            firsts = []
            for s in sessions:
                async with s.get(base + "/") as r:
                    await r.read()
                    firsts.append(server_ms(r))
            print(f"  first overview per user (cold trends): p50 {pct(firsts, 0.5):.0f} ms, "
                  f"p99 {pct(firsts, 0.99):.0f} ms")
            await load(base, sessions, args.seconds)
        finally:
            for s in sessions:
                await s.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
