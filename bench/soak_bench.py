"""Memory over time: `bangfu run` under the mixed load of bench/e2e_bench.py for `--minutes`, its resident
memory (RSS) sampled every minute, and the slope of a straight line through the samples.

    python bench/soak_bench.py                          # 10 minutes, aiogram, PostgreSQL
    python bench/soak_bench.py --minutes 3 --db sqlite --runner ptb

The bot runs as its own process (`python -m bot.cli run --no-scheduler`, as bench/e2e_bench.py starts it)
long polling the local fake Bot API; the 100 simulated people of bench/e2e_bench.py (cadres in /visit and
/problem dialogs, leaders' /overdue and /week, villagers' questions, each waiting for the answer) talk to
it without pause for the whole time, so the bot works flat out: the database grows (visits, questions,
outbox rows), the bot's memory must not. The first sample is taken after the first minute (start-up,
caches and the allocator's pools filled); the slope is fitted over the samples from there on, and the
growth from that first sample to the last is printed next to it. Targets (issue 16): RSS <= 400 MB, and no
growth — read as a slope under 1 MB/min (allocator noise) over the 10 minutes. The slope over the second
half is printed too (caches and allocator pools filling early show as a flattening curve); `--trace PREFIX`
runs the bot with tracemalloc and prints which allocating lines grew between the first and last minute.
`--statements PREFIX` (without tracemalloc's cost; `--trace` does it too) prints, at the first and the last
minute, the statements each pooled asyncpg connection holds prepared (SQLAlchemy's adapter's cache and
asyncpg's own) and the statement shapes prepared under several texts (an IN-list of varying length is one
text per length), and where the heap is: Python's allocated blocks, glibc's bytes in use and free but kept
(mallinfo2). `--bot-env BANGFU_NAME=VALUE` gives the bot a setting (a pool size, say).

What was found this way (issue 16; 4-minute runs side by side, so under the same load): the bot's RSS grew
~2.7 MB/min while glibc's bytes in use stayed flat (120.6 -> 120.7 MiB) and its free-but-kept bytes grew
(6.2 -> 13.6 MiB): heap fragmentation by large buffers under glibc's dynamic mmap threshold, not live
objects. With the threshold pinned (`bot.malloc`, as `bangfu run` does now) free-but-kept stayed at 2.4 MiB
and the slope was 0.3 MB/min. Prepared statements are bounded: ~60 per pooled connection (SQLAlchemy's
adapter keeps at most 100, asyncpg's own cache holds the hot path's 9), ~90 distinct texts in all, of which
the runner's sent-marks by dedup key (`IN` of 1..n keys) were one text per count of keys.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url

from bench.e2e_bench import (
    BOT_SETTINGS,
    PG_URL,
    People,
    bot_env,
    bot_setting,
    live_round,
    prepare,
    rss_mb,
    start_process,
    stop_process,
)
from tests.fakebotapi import FakeBotAPI
from tests.pg import pg_execute

SELF = str(Path(__file__).resolve())


def traced(out: str, argv: list[str], malloc: bool = True) -> None:
    """Run `bangfu <argv>` with tracemalloc on (`malloc`); each SIGUSR1 writes a snapshot to `out`.N (--trace)
    and the prepared statements to `out`.N.sql.json (--trace and --statements)."""
    import signal
    import tracemalloc

    from bot.runners.cli import main as cli_main

    if malloc:
        tracemalloc.start(4)
    n = 0

    def dump(*_: object) -> None:
        nonlocal n
        n += 1
        if malloc:
            tracemalloc.take_snapshot().dump(f"{out}.{n}")
        statements(f"{out}.{n}.sql.json")

    signal.signal(signal.SIGUSR1, dump)
    try:
        cli_main(argv)
    except SystemExit:
        pass


def statements(path: str) -> None:
    """Write the SQL texts each pooled asyncpg connection holds prepared (--trace): SQLAlchemy's adapter's
    LRU (`prepared_statement_cache_size`) and asyncpg's own statement cache (`statement_cache_size`)."""
    import gc
    import json

    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
    conns = []
    for obj in gc.get_objects():
        if isinstance(obj, AsyncAdapt_asyncpg_connection) and not obj._connection.is_closed():
            sqla = obj._prepared_statement_cache
            own = obj._connection._stmt_cache
            conns.append({"sqlalchemy": list(sqla.keys()) if sqla is not None else [],
                          "asyncpg": [st.query for st in own.iter_statements()]})
    with open(path, "w") as f:
        json.dump({"connections": conns, "malloc": malloc_stats()}, f)


def malloc_stats() -> dict[str, int]:
    """Where the process's heap memory is (bytes): Python's object allocator in use (blocks, arenas), and
    glibc's heap (mallinfo2: bytes in use, free but kept, mmapped) — free-but-kept growing while in-use
    stays flat is fragmentation, not a leak."""
    import ctypes
    import sys
    import threading

    out = {"py_blocks": sys.getallocatedblocks(), "threads": threading.active_count()}
    try:
        class MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        m = libc.mallinfo2()
        out.update(heap=m.arena, in_use=m.uordblks, free_kept=m.fordblks, mmapped=m.hblkhd)
    except (OSError, AttributeError):
        pass
    return out


def sql_shape(sql: str) -> str:
    """A statement with its bound-parameter numbers and literal numbers blanked: texts that differ only
    in the length of an IN-list or in a literal come out alike."""
    import re

    sql = re.sub(r"\$\d+(?:::[A-Z0-9_\[\]]+)?(?:\s*,\s*\$\d+(?:::[A-Z0-9_\[\]]+)?)*", "$n", sql)
    return re.sub(r"\b\d+\b", "N", sql)


def compare_statements(first: str, last: str) -> None:
    """Prepared statements per connection at the first and the last snapshot, and the statement shapes
    prepared under more than one text (IN-lists of varying length, literals: one statement each)."""
    import collections
    import json

    for label, path in (("first", first), ("last", last)):
        try:
            with open(path) as f:
                dump = json.load(f)
        except OSError:
            continue
        conns = dump["connections"]
        if dump.get("malloc"):
            print(f"\nheap ({label} minute): " + ", ".join(f"{k} {v / 2**20:.1f} MiB" if k not in ("py_blocks", "threads")
                                                           else f"{k} {v}" for k, v in dump["malloc"].items()))
        sqla = [len(c["sqlalchemy"]) for c in conns]
        own = [len(c["asyncpg"]) for c in conns]
        texts = {t for c in conns for t in c["sqlalchemy"] + c["asyncpg"]}
        print(f"\nprepared statements ({label} minute): {len(conns)} connections; per connection "
              f"SQLAlchemy's cache {min(sqla, default=0)}..{max(sqla, default=0)} (sum {sum(sqla)}), asyncpg's "
              f"{min(own, default=0)}..{max(own, default=0)} (sum {sum(own)}); {len(texts)} distinct texts")
        shapes = collections.Counter(sql_shape(t) for t in texts)
        for shape, k in shapes.most_common(8):
            if k > 1:
                print(f"  {k:4d} texts of one shape: {shape[:160]}")


def compare(first: str, last: str, top: int = 15) -> None:
    """What grew between two tracemalloc snapshots, by line."""
    import tracemalloc

    a, b = tracemalloc.Snapshot.load(first), tracemalloc.Snapshot.load(last)
    print("\ngrowth by allocating line (tracemalloc):")
    for stat in b.compare_to(a, "lineno")[:top]:
        print(f"  {stat}")


def cpu_and_faults(pid: int) -> tuple[float, int]:
    """(CPU seconds, user + system; minor page faults) of a process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[7])


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        name = None
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp}/soak.sqlite3"
        else:
            name = f"bangfu_soak_{uuid.uuid4().hex[:8]}"
            await pg_execute(f'CREATE DATABASE "{name}"')
            url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        try:
            sims = await prepare(url, args.users, args.cadres, args.leaders)
            async with FakeBotAPI(keep_last=5000) as api:
                people = People(api, sims, learn=True)
                argv = ["-m", "bot.cli", "run", "--runner", args.runner, "--no-scheduler"]
                if args.trace or args.statements:
                    argv = [SELF, "--traced" if args.trace else "--statements", args.trace or args.statements, "--",
                            *argv[2:]]
                bot = await start_process(api, argv, bot_env(api, url, media=f"{tmp}/media"), tmp)
                try:
                    staff = [s for s in sims if s.code]
                    await asyncio.gather(*(people.turn(s, "text", f"/start {s.code}", 30) for s in staff))
                    start = time.perf_counter()
                    end = start + args.minutes * 60
                    samples: list[tuple[float, float]] = []
                    first: tuple[int, float, int] = (0, 0.0, 0)  # replies, CPU s, minor faults at the first sample
                    replies = unanswered = 0
                    next_sample = start + 60
                    print(f"  start: RSS {rss_mb(bot.pid)[0]:.1f} MB", flush=True)
                    while time.perf_counter() < end:
                        r = await live_round(people, sims, 5, args.timeout)
                        replies += len(r.latencies)
                        unanswered += r.unanswered
                        now = time.perf_counter()
                        if now >= next_sample:
                            rss = rss_mb(bot.pid)[0]
                            samples.append(((now - start) / 60, rss))
                            if len(samples) == 1:
                                first = (replies, *cpu_and_faults(bot.pid))
                            print(f"  {samples[-1][0]:5.1f} min: RSS {rss:6.1f} MB, {replies} replies so far "
                                  f"({replies / (now - start):.0f}/s), load {os.getloadavg()[0]:.1f}", flush=True)
                            next_sample += 60
                            if args.trace or args.statements:
                                bot.send_signal(signal.SIGUSR1)
                    rss, peak = rss_mb(bot.pid)
                    cpu, faults = cpu_and_faults(bot.pid)
                finally:
                    await stop_process(bot)
        finally:
            if name is not None:
                await pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    s = slope(samples)
    growth = samples[-1][1] - samples[0][1] if samples else 0.0
    print(f"\n{args.runner} / {args.db}, {args.minutes} min: {replies} replies, {unanswered} unanswered; "
          f"RSS {rss:.1f} MB at the end (peak {peak:.1f}); slope {s:+.2f} MB/min over {len(samples)} samples, "
          f"{growth:+.1f} MB from the first to the last")
    if samples:
        n = max(1, replies - first[0])
        print(f"from the first sample on: bot CPU {(cpu - first[1]) * 1000 / n:.2f} ms per reply, "
              f"{(faults - first[2]) / n:.1f} minor page faults per reply")
    ok = rss <= 400 and s < 1.0
    half = [p for p in samples if p[0] >= samples[-1][0] / 2] if samples else []
    print(f"slope over the second half (from {half[0][0]:.1f} min): {slope(half):+.2f} MB/min" if len(half) > 1 else "")
    print(f"target RSS <= 400 MB and no growth (slope < 1 MB/min): {'met' if ok else 'NOT met'}")
    if args.trace and len(samples) >= 2:
        await asyncio.sleep(2)
        compare(f"{args.trace}.1", f"{args.trace}.{len(samples)}")
    out = args.trace or args.statements
    if out and len(samples) >= 2:
        await asyncio.sleep(0 if args.trace else 2)
        compare_statements(f"{out}.1.sql.json", f"{out}.{len(samples)}.sql.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--runner", choices=["aiogram", "ptb"], default="aiogram")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--cadres", type=int, default=30)
    p.add_argument("--leaders", type=int, default=6)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--trace", metavar="PREFIX", help="tracemalloc in the bot: snapshots PREFIX.N each minute, "
                   "and what grew from the first to the last (slows the bot down)")
    p.add_argument("--statements", metavar="PREFIX", help="without tracemalloc: the SQL texts each pooled "
                   "connection holds prepared, written to PREFIX.N.sql.json each minute, compared at the end")
    p.add_argument("--bot-env", metavar="BANGFU_NAME=VALUE", action="append", type=bot_setting, default=[],
                   help="a setting for the bot process (repeatable), e.g. BANGFU_UPDATES_IN_FLIGHT=4")
    args = p.parse_args()
    BOT_SETTINGS.update(args.bot_env)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; soak "
          f"{args.minutes} min, {args.runner} / {args.db}, {args.users} people without pause"
          f"{''.join(f', {k}={v}' for k, v in BOT_SETTINGS.items())}", flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] in ("--traced", "--statements"):
        traced(sys.argv[2], sys.argv[4:], malloc=sys.argv[1] == "--traced")
        sys.exit(0)
    main()
