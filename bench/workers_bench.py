"""Updates/s through one and through two `bangfu run` webhook workers (separate processes) on PostgreSQL.

    python bench/workers_bench.py [--users 50] [--per-user 20] [--workers 1 2]

This process plays Telegram: it POSTs each update to a worker's webhook (round robin, each user's updates
one after another, users concurrently) and the workers answer once the update is handled and its replies
sent to the local fake Bot API. Each configuration gets a fresh PostgreSQL database (migrated first, as a
deployment would). Updates/s = updates delivered / wall time from the first POST to the last answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url

from bot.store.migrate import upgrade_async
from tests.delivery.cluster import Cluster, message
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.pg import pg_execute

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SCRIPT = ["/help", "/cancel", "/nosuch", "/help"]


async def run(workers: int, users: int, per_user: int) -> float:
    name = f"bangfu_wbench_{uuid.uuid4().hex[:8]}"
    await pg_execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        async with FakeBotAPI() as api:
            with tempfile.TemporaryDirectory() as tmp:
                cluster = Cluster(api, url, None, Path(tmp))
                await cluster.start(workers, scheduler=False)
                try:
                    people = [FakeUser(800000 + i) for i in range(users)]
                    # Warm-up: every user's first update (account created, command menu set).
                    await asyncio.gather(*(cluster.deliver(message(api, u, "/help")) for u in people))

                    async def talk(u: FakeUser) -> None:
                        for k in range(per_user):
                            await cluster.deliver(message(api, u, SCRIPT[k % len(SCRIPT)]))

                    start = time.perf_counter()
                    await asyncio.gather(*(talk(u) for u in people))
                    return users * per_user / (time.perf_counter() - start)
                finally:
                    await cluster.stop()
    finally:
        await pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--per-user", type=int, default=20)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.users} users x {args.per_user} updates, "
          "PostgreSQL, webhook workers (aiogram), replies to the local fake Bot API")
    for n in args.workers:
        rate = await run(n, args.users, args.per_user)
        print(f"{n} worker{'s' if n > 1 else ' '}: {rate:7.0f} updates/s")


if __name__ == "__main__":
    asyncio.run(main())
