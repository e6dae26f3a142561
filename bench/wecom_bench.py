"""Benchmark: the WeCom channel (prints numbers).

    python bench/wecom_bench.py                      # both parts
    python bench/wecom_bench.py --callbacks 3000 --rate 600
    python bench/wecom_bench.py --only sender --members 20 --per-member 45

1. Callbacks: N encrypted callbacks (a bound cadre's "/cancel", one short reply) POSTed at a steady rate (open loop) from
   another process (the fake WeCom and the load) to the real WeComRunner in this process; the runner verifies and decrypts each, answers 200 at once and handles it
   off the request (core, SQLite, message/send to the fake WeCom). Reported: callbacks/s handled end to
   end (first POST → last reply at the fake), and p50/p99 of the POST answer (signature check + AES
   decrypt + XML parse + queueing) and of callback → reply. Target: ≥ 500 callbacks/s, p99 < 50 ms.
2. Sender: members × per-member reminders in the outbox for channel "wecom", sent by the outbox sender
   through WeComTransport with the per-member windows scaled down by --scale (30 per 60/scale s, 1,000
   per 3600/scale s) and 2% injected rate-limit errcodes (45033). The fake WeCom timestamps every
   accepted message; reported: violations of the windows seen there, duplicates, lost, app rate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, TCPConnector
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.channels.wecom.api import WeComAPI
from bot.channels.wecom.crypto import parse
from bot.channels.wecom.inbound import to_incoming
from bot.channels.wecom.runner import WeComRunner
from bot.channels.wecom.token import DbTokenStore, TokenCache
from bot.channels.wecom.transport import WeComTransport
from bot.core.bootstrap import build_core, freeze_startup_heap
from bot.core.types import Reply
from bot.i18n import Catalogs
from bot.scheduler.member_limits import WindowLimiter
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.rules import load_rules
from bot.scheduler.sender import Sender, SenderConfig
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_async
from bot.store.models import Account, Outbox, Person
from tests.fakewecom import FakeWeCom

TZ = ZoneInfo("Asia/Shanghai")


class DaytimeClock:
    """Real-speed time starting at 10:00 Beijing, so quiet hours never pause a run."""

    def __init__(self) -> None:
        self.tz = TZ
        self._start = datetime(2026, 3, 9, 10, 0, tzinfo=TZ)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return (self._start + timedelta(seconds=time.monotonic() - self._t0)).astimezone(UTC)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def _load_side(conn: Any, n: int, rate: float) -> None:
    """The other process: the fake WeCom (API and callback sender) and the load, so the measured process
    does only the bot's work. Talks to the bench over a pipe."""
    asyncio.run(_load_async(conn, n, rate))


async def _load_async(conn: Any, n: int, rate: float) -> None:
    async with FakeWeCom() as wecom:
        conn.send({"url": wecom.url, "corp_id": wecom.corp_id, "agent_id": wecom.agent_id, "secret": wecom.secret,
                   "token": wecom.token, "aes_key": wecom.aes_key})
        users, wecom.callback_url = await asyncio.to_thread(conn.recv)
        bodies = [wecom.encrypt(wecom.text_xml(u, "/cancel")) for u in users]
        posted: dict[str, float] = {}
        post_lat: list[float] = []
        async with ClientSession(connector=TCPConnector(limit=0)) as http:
            async def one(u: str, body: str, params: dict[str, str]) -> None:
                t = time.monotonic()
                posted[u] = t
                async with http.post(wecom.callback_url, params=params, data=body.encode()) as resp:
                    await resp.read()
                    assert resp.status == 200
                post_lat.append(time.monotonic() - t)

            t0 = time.monotonic()
            tasks = []
            for i, (u, (b, p)) in enumerate(zip(users, bodies, strict=True)):
                # Open loop: callbacks arrive at `rate` a second whatever the bot does.
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(u, b, p)))
            await asyncio.gather(*tasks)
            while len({m.touser for m in wecom.sent}) < n and time.monotonic() - t0 < 120:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            got: dict[str, float] = {}
            for m in wecom.sent:  # receipt at the fake: the first message each user got
                got.setdefault(m.touser, m.at)
            last = max(got.values()) if got else t0
        e2e = [got[u] - posted[u] for u in users if u in got]
        conn.send({"handled": len(got), "wall": last - t0, "post_p50": pct(post_lat, .5), "post_p99": pct(post_lat, .99),
                   "e2e_p50": pct(e2e, .5), "e2e_p99": pct(e2e, .99), "gettoken": wecom.token_fetches})


async def callbacks(n: int, rate: float, tmp: Path) -> bool:
    url = f"sqlite+aiosqlite:///{tmp / 'cb.sqlite3'}"
    await upgrade_async(url)
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    child = ctx.Process(target=_load_side, args=(there, n, rate), daemon=True)
    child.start()
    fake = await asyncio.to_thread(here.recv)
    settings = Settings(
        database_url=url, media_dir=tmp / "media", wecom_corp_id=fake["corp_id"], wecom_agent_id=fake["agent_id"],
        wecom_secret=SecretStr(fake["secret"]), wecom_token=SecretStr(fake["token"]),
        wecom_aes_key=SecretStr(fake["aes_key"]), wecom_api_url=fake["url"], wecom_listen="127.0.0.1:0",
    )
    app = build_core(settings, DaytimeClock())  # type: ignore[arg-type]
    now = datetime.now(UTC)
    users = [f"u{i:05d}" for i in range(n)]
    async with app.core.sessions() as s, s.begin():
        people = [Person(name=f"干部{i}", role="cadre") for i in range(n)]
        s.add_all(people)
        await s.flush()
        s.add_all([Account(channel="wecom", external_id=u, chat_id=u, person_id=p.id, created_at=now,
                           bound_at=now, commands_scope="cadre:zh_CN") for u, p in zip(users, people, strict=True)])
    runner = WeComRunner(app, settings)
    await runner.start()
    freeze_startup_heap()
    cpu0 = time.process_time()
    prof = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    try:
        here.send((users, runner.url))
        r = await asyncio.to_thread(here.recv)
    finally:
        cpu = time.process_time() - cpu0
        if prof is not None:
            prof.disable()
            prof.dump_stats(os.environ["BENCH_PROFILE"])
        await runner.stop()
        await app.close()
        child.join(10)
    handled = r["handled"]
    achieved = handled / r["wall"] if r["wall"] else float("nan")
    ok = handled == n and achieved >= 0.95 * rate and rate >= 500 and r["post_p99"] * 1000 < 50
    print(f"callbacks {n} at {rate:g}/s (open loop, from another process), each a bound cadre's /cancel: "
          "verified, decrypted, handled by the core, replied through message/send")
    print(f"  handled end to end {handled} in {r['wall']:.2f} s -> {achieved:.0f} callbacks/s (target >= 500); "
          f"bot process CPU {cpu / max(handled, 1) * 1000:.2f} ms per callback")
    print(f"  POST answered (signature + decrypt + parse + queue): p50 {r['post_p50'] * 1000:.1f} ms, "
          f"p99 {r['post_p99'] * 1000:.1f} ms (target < 50); callback -> reply p50 {r['e2e_p50'] * 1000:.1f} ms, "
          f"p99 {r['e2e_p99'] * 1000:.1f} ms")
    print(f"  refused {runner.refused}; gettoken calls {r['gettoken']}")
    # The callback's own cost, alone: signature check, AES decrypt, XML parse, translation.
    crypto = runner.crypto
    from tests.fakewecom import FakeWeCom as _F

    sample = _F.__new__(_F)
    sample.corp_id, sample.agent_id, sample._msg_ids = fake["corp_id"], fake["agent_id"], iter(range(1, 10**9))
    body, sig, ts = crypto.encrypt(sample.text_xml("u00001", "/cancel"), "nonce1")
    k = 5000
    t = time.process_time()
    for _ in range(k):
        to_incoming(parse(crypto.decrypt(body, sig, ts, "nonce1")))
    per = (time.process_time() - t) / k * 1e6
    print(f"  decrypt + parse + translate alone: {per:.0f} us CPU per callback ({1e6 / per:.0f}/s on one core)")
    return ok


async def sender(members: int, per_member: int, scale: float, fault: float, tmp: Path) -> bool:
    url = f"sqlite+aiosqlite:///{tmp / 'out.sqlite3'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = DaytimeClock()
    windows = ((30, 60.0 / scale), (1000, 3600.0 / scale))
    n = members * per_member
    msgs = [OutMessage(dedup_key=f"b:{i}", rule="bench",
                       reply=Reply(chat_id=f"m{i % members:03d}", text=f"提醒 {i}", channel="wecom"))
            for i in range(n)]
    async with sessions() as s, s.begin():
        await enqueue(s, msgs, now=clock.now())
        await enqueue(s, msgs[:50], now=clock.now())  # written twice (a re-run tick): still once in the outbox
    try:
        async with FakeWeCom() as wecom:
            api = WeComAPI(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id)
            api.tokens = TokenCache(DbTokenStore(sessions), api.token_key, api.fetch_token)
            wecom.fail_next("message/send", errcode=45033, times=max(1, int(n * fault)))
            limiter = WindowLimiter(windows=windows, rate_per_s=200, avoid_marks=False)
            cfg = SenderConfig(max_inline_retry_after_s=120, backoff_base_s=0.05, poll_interval_s=0.1)
            snd = Sender(sessions, WeComTransport(api), clock, load_rules(), Catalogs(Settings().locales_dir), cfg,
                         limiters={"wecom": limiter})
            stop = asyncio.Event()
            t0 = time.perf_counter()
            task = asyncio.create_task(snd.run(stop))
            deadline = t0 + per_member / 30 * windows[0][1] * 2 + 60
            while len(wecom.sent) < n and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            wall = time.perf_counter() - t0
            stop.set()
            await task
            await api.close()
        async with sessions() as s:
            status = dict((await s.execute(select(Outbox.status, func.count()).group_by(Outbox.status))).all())
    finally:
        await engine.dispose()
    texts = Counter(m.text for m in wecom.sent)
    dup = sum(c - 1 for c in texts.values() if c > 1)
    lost = len({f"提醒 {i}" for i in range(n)} - set(texts))
    violations = 0
    by_member: dict[str, list[float]] = {}
    for m in wecom.sent:
        by_member.setdefault(m.touser, []).append(m.at)
    for stamps in by_member.values():
        for limit, window in windows:
            violations += sum(1 for i in range(len(stamps) - limit) if stamps[i + limit] - stamps[i] < window)
    print(f"sender: {n} reminders to {members} members ({per_member} each), windows {windows[0][0]} per "
          f"{windows[0][1]:g} s and {windows[1][0]} per {windows[1][1]:g} s (1/{scale:g} of WeCom's minute and hour), "
          f"injected {max(1, int(n * fault))} errcode 45033 (WeCom's concurrency limit: retry after 1 s)")
    print(f"  delivered {len(wecom.sent)} in {wall:.1f} s; window violations seen by WeCom {violations}, "
          f"duplicated {dup}, lost {lost}; outbox {status}; sender {snd.stats}")
    return violations == 0 and dup == 0 and lost == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("callbacks", "sender"))
    ap.add_argument("--callbacks", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=500.0, help="callbacks a second the load side sends")
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--per-member", type=int, default=45)
    ap.add_argument("--scale", type=float, default=20.0)
    ap.add_argument("--fault", type=float, default=0.02)
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bangfu_wecom_"))
    ok = True
    try:
        if a.only in (None, "callbacks"):
            ok &= asyncio.run(callbacks(a.callbacks, a.rate, tmp))
        if a.only in (None, "sender"):
            ok &= asyncio.run(sender(a.members, a.per_member, a.scale, a.fault, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
