"""Benchmark: 微信客服 pulls and SMS limits (prints numbers).

    python bench/kf_bench.py                       # both parts
    python bench/kf_bench.py --villagers 50 --messages 20 --page 100

1. Sync: V bound villagers each send M texts (a policy question each); ONE kf_msg_or_event callback, then
   the real KfRunner pulls everything with kf/sync_msg (pages of --page) from the fake WeCom/kf server and
   handles each message through the core (SQLite) and answers within the window. Halfway through, the
   sync is killed (a crash) and a fresh runner resumes from the saved cursor. Reported: messages/s end to
   end, lost and duplicated messages (each question must be in policy_questions exactly once), window
   violations seen by the fake.
2. SMS: P phones × K concurrent sends every simulated minute for two simulated days against the fake
   Aliyun gateway (which applies 1/min, 5/h, 10/day itself). Reported: sent, refused by our limits,
   violations seen by the gateway (must be 0), sends/s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from bot.channels.sms.aliyun import AliyunSms
from bot.channels.sms.sender import Limited, Sent, SmsSender
from bot.channels.sms.templates import load_templates
from bot.channels.wechat_kf.runner import KfRunner
from bot.clock import FixedClock
from bot.core.bootstrap import build_core
from bot.services.onboarding import create_invite
from bot.settings import Settings
from bot.store.migrate import upgrade_async
from bot.store.models import Household, PolicyQuestion
from tests.conftest import seed_world
from tests.fakekf import FakeKf
from tests.fakesms import FakeSms

TZ = ZoneInfo("Asia/Shanghai")


async def sync_part(args: argparse.Namespace, tmp: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp / 'kf.sqlite3'}"
    await upgrade_async(url)
    clock = FixedClock(datetime(2026, 11, 30, 10, 0, tzinfo=TZ))
    base = Settings(database_url=url, media_dir=tmp / "media", telegram_token=None)
    app = build_core(base, clock)
    world = await seed_world(app)
    async with FakeKf(now=clock.now) as kf:
        settings = kf.settings(base, wechat_kf_open_kfid=kf.open_kfid)
        runner = KfRunner(app, settings, sms=None)
        runner.kf.page_limit = args.page
        await runner.start()
        kf.callback_url = runner.url
        hh = world.households["张大山"]
        for v in range(args.villagers):  # bind each villager with an invite code
            async with app.core.sessions() as s, s.begin():
                code = (await create_invite(s, clock.now(), household=await s.get(Household, hh))).code
            kf.add(f"wmV{v:05d}", "text", {"content": f"/start {code}"})
        await kf.notify()
        await runner.kf.wait_idle()
        questions = [f"村民{v}第{i}问：医保住院报销比例是多少" for i in range(args.messages) for v in range(args.villagers)]
        for n, q in enumerate(questions):
            kf.add(f"wmV{n % args.villagers:05d}", "text", {"content": q})
        t0 = time.perf_counter()
        await kf.notify()
        half = len(questions) // 2
        first = runner
        await kf.wait_for(lambda: True if first.kf.handled >= args.villagers + half else None, timeout=600)
        await runner.kf.abort()  # crash mid-sync
        await runner.stop()
        runner = KfRunner(app, settings, sms=None)
        runner.kf.page_limit = args.page
        await runner.start()
        kf.callback_url = runner.url
        await kf.notify()
        await runner.kf.wait_idle()
        elapsed = time.perf_counter() - t0
        await runner.stop()
        async with app.core.sessions() as s:
            got = list((await s.execute(select(PolicyQuestion.text))).scalars())
            n_rows = (await s.execute(select(func.count()).select_from(PolicyQuestion))).scalar_one()
        lost = len(set(questions) - set(got))
        dup = n_rows - len(set(got))
        print(f"sync: {len(questions)} messages from {args.villagers} villagers, pages of {args.page}, killed after "
              f"{half} and resumed: {len(questions) / elapsed:.0f} messages/s end to end ({elapsed:.2f} s); "
              f"lost {lost}, duplicated {dup}; sync_msg calls {kf.sync_calls}; kf/send_msg {len(kf.kf_sent)}; "
              f"window violations {len(kf.window_violations)}; answers held for the next window {first.kf.transport.held + runner.kf.transport.held}")
    await app.close()


async def sms_part(args: argparse.Namespace, tmp: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp / 'sms.sqlite3'}"
    await upgrade_async(url)
    clock = FixedClock(datetime(2026, 11, 30, 0, 0, tzinfo=TZ))
    app = build_core(Settings(database_url=url, media_dir=tmp / "media", telegram_token=None), clock)
    tpls = load_templates()
    async with FakeSms({t.code: list(t.params) for t in tpls.values()}, now=clock.now) as gw:
        sms = SmsSender(app.core.sessions, AliyunSms(gw.url, gw.key_id, gw.secret, gw.sign_name), clock)
        phones = [f"138{n:08d}" for n in range(args.phones)]
        sent = limited = 0
        t0 = time.perf_counter()
        for _ in range(2 * 24 * 60 // args.step):
            outs = await asyncio.gather(*(sms.send(p, "cadre_reminder", name="王建国", what="本周走访未完成")
                                          for p in phones for _ in range(args.concurrent)))
            sent += sum(isinstance(o, Sent) for o in outs)
            limited += sum(isinstance(o, Limited) for o in outs)
            clock.advance(minutes=args.step)
        elapsed = time.perf_counter() - t0
        await sms.close()
        print(f"sms: {args.phones} phones × {args.concurrent} concurrent sends every {args.step} simulated min for "
              f"2 days: sent {sent} (10/day/number allows {20 * args.phones}), refused by our limits {limited}, "
              f"violations at the gateway {len(gw.violations)}; {(sent + limited) / elapsed:.0f} attempts/s")
    await app.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=("sync", "sms"))
    p.add_argument("--villagers", type=int, default=40)
    p.add_argument("--messages", type=int, default=10)
    p.add_argument("--page", type=int, default=100)
    p.add_argument("--phones", type=int, default=5)
    p.add_argument("--concurrent", type=int, default=3)
    p.add_argument("--step", type=int, default=5, help="simulated minutes between rounds")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="kfbench"))
    try:
        if args.only in (None, "sync"):
            asyncio.run(sync_part(args, tmp))
        if args.only in (None, "sms"):
            asyncio.run(sms_part(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
