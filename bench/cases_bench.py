"""Villagers' cases through the core, in process, on a SQLite file: what one message costs when it is a
policy question, a new case (opened, sent to the cadre and copied to the leader), an addition to an open
case, or chit-chat; and a cadre's /cases with many open cases (30 listed).

    PYTHONPATH=$PWD python bench/cases_bench.py [-n 300]

Uses the test suite's seeded village and chat driver (tests/conftest.py), so it runs from the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.clock import FixedClock
from bot.core.bootstrap import build_core
from bot.settings import Settings
from bot.store.migrate import upgrade_async
from tests.conftest import Chat, bind, seed_world

CASE = "我家的低保补贴三个月没到账了，是不是弄错了"


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}"
    await upgrade_async(url)
    clock = FixedClock(datetime(2026, 11, 27, 10))
    app = build_core(Settings(database_url=url, media_dir=folder / "media", telegram_token=None), clock)
    try:
        world = await seed_world(app)
        villager = Chat(app, "1")
        await bind(app, villager, household_id=world.households["张大山"])
        cadre = Chat(app, "2")
        await bind(app, cadre, person_id=world.cadre_ids[0])
        leader = Chat(app, "3")
        await bind(app, leader, person_id=world.leader_id)

        async def run(label: str, text: str, new_sitting: bool = False) -> None:
            t0 = time.perf_counter()
            for i in range(n):
                await villager.send(f"{text}{i}" if new_sitting else text)
                if new_sitting:
                    clock.advance(minutes=31)  # past the same-sitting window: a new case each time
            dt = time.perf_counter() - t0
            print(f"{label:22s} {n / dt:7.0f} msg/s  {dt / n * 1e3:6.2f} ms/msg")

        await run("policy question", "住院能报销多少")
        await run("new case", CASE, new_sitting=True)
        await villager.send(CASE)
        await run("addition to open case", "是不是弄错了？")
        await run("chit-chat", "谢谢")
        t0 = time.perf_counter()
        for _ in range(50):
            await cadre.send("/cases")
        print(f"/cases ({n + 1} open, 30 listed) {(time.perf_counter() - t0) / 50 * 1e3:6.2f} ms")
    finally:
        await app.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=300, help="messages of each kind")
    asyncio.run(main(parser.parse_args().n))
