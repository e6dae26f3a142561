"""Import benchmark: a fictional 100,000-household roster into a fresh database, timed per stage.

    python bench/import_bench.py                       # 100,000 rows into a SQLite file
    python bench/import_bench.py --rows 20000 --url postgresql+asyncpg://postgres@127.0.0.1:5432/test

With a PostgreSQL URL a scratch database is created next to the given one and dropped afterwards.
The second run re-imports the same file (everything unchanged) to time the update path.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.clock import FixedClock
from bot.io.reader import read_roster
from bot.io.roster import import_roster
from bot.io.template import large_roster
from bot.store.db import create_engine, is_sqlite, session_factory
from bot.store.migrate import upgrade_async
from bot.store.models import Household, Pairing


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username, database=u.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(rows: int, data: bytes, url: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bangfu-bench-"))
    scratch = None
    if url is None or is_sqlite(url):
        url = f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    else:
        scratch = f"bangfu_bench_{uuid.uuid4().hex[:8]}"
        await _pg(url, f'CREATE DATABASE "{scratch}"')
        admin, url = url, make_url(url).set(database=scratch).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        engine = create_engine(url)
        clock = FixedClock(datetime(2026, 11, 28, 10))
        for attempt in ("first import", "re-import"):
            t0 = time.perf_counter()
            roster = read_roster(data, "bench.xlsx")
            t_read = time.perf_counter() - t0
            async with session_factory(engine)() as s:
                t1 = time.perf_counter()
                result = await import_roster(s, roster, clock=clock)
                await s.commit()
                t_import = time.perf_counter() - t1
                assert result.applied, [p.key for p in result.problems[:5]]
                n = await s.scalar(select(func.count()).select_from(Household))
                p = await s.scalar(select(func.count()).select_from(Pairing))
            total = time.perf_counter() - t0
            print(
                f"{attempt}: read {t_read:.1f}s, check+write {t_import:.1f}s, total {total:.1f}s "
                f"({rows / total:,.0f} rows/s); households={n}, pairings={p}; "
                + ", ".join(f"{k}={dict(v)}" for k, v in result.counts.items() if k == "households")
            )
        await engine.dispose()
    finally:
        if scratch:
            await _pg(admin, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def roster_bytes(rows: int) -> bytes:
    """The fictional roster of that size, generated once and kept under bench/out/."""
    # Generating is slower than importing (openpyxl writes cell by cell): keep the file for reruns.
    cached = Path(__file__).resolve().parent / "out" / f"roster_{rows}.xlsx"
    if cached.exists():
        data = cached.read_bytes()
    else:
        t0 = time.perf_counter()
        data = large_roster(rows)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
        print(f"generate {rows} rows: {time.perf_counter() - t0:.1f}s ({len(data) / 1e6:.1f} MB xlsx)")
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    asyncio.run(run(args.rows, roster_bytes(args.rows), args.url))


if __name__ == "__main__":
    main()
