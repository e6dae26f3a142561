"""Benchmark: the outbox sender's throughput against a fake Bot API server (prints numbers).

    python bench/sender_bench.py                     # 900 messages to 300 chats, 30 msg/s, 10% 429s
    python bench/sender_bench.py --messages 1800 --rate 30 --fault-429 0.1 --retry-after 1

Messages are written to a real SQLite outbox, then sent over HTTP to the fake server
(tests/scheduler/fake_botapi_lite.py), which answers a seeded share of requests with 429
(retry_after) and watches the limits (messages in any one second overall; one per second per chat).
Target: delivered messages per second within 5% of the configured limit, none lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "scheduler"))

from fake_botapi_lite import FakeBotAPI  # a test helper, importable once on the path
from sqlalchemy import func, select

from bot.core.types import Reply
from bot.i18n import Catalogs
from bot.runners.http_transport import HttpTransport
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.rules import load_rules
from bot.scheduler.sender import Sender, SenderConfig
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.store.models import Outbox

TZ = ZoneInfo("Asia/Shanghai")


class DaytimeClock:
    """Real-speed time starting at 10:00 Beijing, so quiet hours never pause a run whenever it starts."""

    def __init__(self) -> None:
        self.tz = TZ
        self._start = datetime(2026, 3, 9, 10, 0, tzinfo=TZ)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return (self._start + timedelta(seconds=time.monotonic() - self._t0)).astimezone(UTC)


async def run(n: int, chats: int, rate: float, fault_429: float, retry_after: float) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="bangfu_sender_"))
    url = f"sqlite+aiosqlite:///{tmp / 'outbox.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    rules = load_rules()
    catalogs = Catalogs(Settings().locales_dir)
    clock = DaytimeClock()
    try:
        msgs = [OutMessage(dedup_key=f"b:{i}", rule="bench", reply=Reply(chat_id=f"{1000 + i % chats}",
                                                                          text=f"提醒 {i}", channel="telegram"))
                for i in range(n)]
        async with sessions() as s, s.begin():
            await enqueue(s, msgs, now=clock.now())
        api = FakeBotAPI(rate_429=fault_429, retry_after=retry_after, overall_limit=int(rate), chat_gap=0.95)
        cfg = SenderConfig(rate_per_s=rate, per_chat_interval_s=1.0)
        async with api, HttpTransport(api.token, api.url) as transport:
            sender = Sender(sessions, transport, clock, rules, catalogs, cfg)
            stop = asyncio.Event()
            t0 = time.perf_counter()
            task = asyncio.create_task(sender.run(stop))
            while len(api.accepted) < n and time.perf_counter() - t0 < n / rate * 3 + 30:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            wall = time.perf_counter() - t0
            stop.set()
            await task
        async with sessions() as s:
            status = dict((await s.execute(select(Outbox.status, func.count()).group_by(Outbox.status))).all())
    finally:
        await engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)

    delivered = Counter(api.texts())
    expected = {f"提醒 {i}" for i in range(n)}
    lost = len(expected - set(delivered))
    dup = sum(c - 1 for c in delivered.values() if c > 1)
    span = api.accepted[-1].at - api.accepted[0].at if len(api.accepted) > 1 else float("nan")
    throughput = (len(api.accepted) - 1) / span if span else float("nan")
    within = abs(throughput - rate) / rate <= 0.05
    # The same, leaving out the first and last 10% of messages (start-up and the retry tail).
    k = len(api.accepted) // 10
    mid = api.accepted[k:-k] if k else api.accepted
    steady = (len(mid) - 1) / (mid[-1].at - mid[0].at) if len(mid) > 1 else float("nan")
    print(f"messages {n} to {chats} chats, limit {rate:g} msg/s overall and 1 msg/s per chat, "
          f"{fault_429:.0%} injected 429 (retry_after {retry_after:g} s)")
    print(f"  requests {api.requests}, 429 answered {api.faults['429']}, accepted {len(api.accepted)}")
    print(f"  delivered throughput {throughput:.2f} msg/s over {span:.1f} s (wall {wall:.1f} s) -> "
          f"{'within' if within else 'NOT within'} 5% of {rate:g}; steady state {steady:.2f} msg/s")
    print(f"  lost {lost}, duplicated {dup}, limit violations seen by the server {len(api.violations)}")
    print(f"  outbox rows by status {status}; sender stats {sender.stats}")
    if api.violations:
        print(f"  first violations: {api.violations[:5]}")
    return within and lost == 0 and dup == 0 and not api.violations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=900)
    ap.add_argument("--chats", type=int, default=300)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--fault-429", type=float, default=0.10)
    ap.add_argument("--retry-after", type=float, default=1.0)
    a = ap.parse_args()
    ok = asyncio.run(run(a.messages, a.chats, a.rate, a.fault_429, a.retry_after))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
