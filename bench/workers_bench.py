"""One webhook worker against two: `bangfu run` webhook workers (separate processes) over one PostgreSQL,
with Redis for the limits they share, on this machine's cores.

    python bench/workers_bench.py                       # aiogram workers, 100 people, 3 rounds each
    python bench/workers_bench.py --runner ptb --rounds 5 --per-user 10 --no-redis
    python bench/workers_bench.py --worker-cpu 0.4      # each worker held to 0.4 of a core (root: cgroups)

This process plays Telegram and the people: the 100 simulated people of bench/e2e_bench.py (cadres in
/visit and /problem dialogs pressing the buttons they were shown, leaders' /overdue and /week, villagers'
questions; the same demo data, staff bound by invite codes) each send a message, Telegram POSTs it to a
worker's webhook, the worker answers the POST once the update is committed and its replies are sent to the
local fake Bot API, and the person sends the next message once the bot's answer has arrived.

Two workers are started once, on one fresh PostgreSQL database (migrated, as a deployment would). Rounds
alternate: "1 worker" POSTs every update to worker 0 (worker 1 idles: one process serves), "2 workers"
POSTs them round robin to both (so one person's consecutive messages go to different processes; their
order and exactly-once rest on the core's per-update transaction and dedup, as tests/delivery/
test_workers.py checks under a kill -9). Both configurations thus run on the same database, in the same
minutes of a shared machine. Printed: each configuration's median-round replies/s and its p50 / p99
latency (POST to the bot's answer), the ratio two / one (target, issue 16: >= 1.7x with the same p99, read
as within 10%), and the CPU the worker processes used per reply.

On two cores the fake Bot API, the simulated people and PostgreSQL share the machine with the workers: a
second worker can only gain what the first leaves idle (the bench prints the machine's load next to it).
`--worker-cpu SHARE` holds each worker process to SHARE of one core (a cgroup of its own; needs root): one
worker is then the bottleneck, as on a machine where each worker has a core of its own and PostgreSQL and
the clients have theirs, and what a second worker adds shows whether anything the workers share (the
database's locks, Redis, one user's order) holds them back. Each round then also prints how long the caps
kept the workers waiting (if they never did, the workers were not the bottleneck and the ratio says nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url

from bench.e2e_bench import People, Round, cpu_s, live_round, prepare
from bench.proccpu import CpuCap
from tests.delivery.cluster import Cluster
from tests.fakebotapi import FakeBotAPI
from tests.pg import pg_execute

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BANGFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pct(rounds: list[Round], q: float) -> float:
    lat = sorted(x for r in rounds for x in r.latencies)
    return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


async def run(args: argparse.Namespace) -> None:
    name = f"bangfu_wbench_{uuid.uuid4().hex[:8]}"
    await pg_execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        sims = await prepare(url, args.users, args.cadres, args.leaders)
        async with FakeBotAPI(keep_last=5000) as api:
            with tempfile.TemporaryDirectory() as tmp:
                cluster = Cluster(api, url, None if args.no_redis else REDIS, Path(tmp), runner=args.runner,
                                  env={"BANGFU_MESSAGES_PER_MINUTE": "0"})
                await cluster.start(2, scheduler=False)
                cap = CpuCap(args.worker_cpu, f"bangfu_wbench_{os.getpid()}") if args.worker_cpu else None
                try:
                    if cap is not None:
                        for w in cluster.workers:
                            cap.hold(w.proc.pid)
                    target: list[int | None] = [0]  # None: round robin over both workers

                    async def post(update: dict) -> None:  # type: ignore[type-arg]
                        await cluster.deliver(update, prefer=target[0])

                    people = People(api, sims, learn=True, post=post)
                    staff = [s for s in sims if s.code]
                    target[0] = None
                    bound = await asyncio.gather(*(people.turn(s, "text", f"/start {s.code}", 30) for s in staff))
                    if any(d is None for d in bound):
                        raise RuntimeError("a staff member was not answered on binding")
                    for t in (0, None):  # warm both workers up
                        target[0] = t
                        await live_round(people, sims, args.warmup, args.timeout)
                    results: dict[str, list[Round]] = {"1 worker": [], "2 workers": []}
                    for _ in range(args.rounds):
                        for label, t in (("1 worker", 0), ("2 workers", None)):
                            target[0] = t
                            pids = [w.proc.pid for w in cluster.workers]
                            c0 = [cpu_s(p) for p in pids]
                            held0 = cap.throttled_s() if cap is not None else 0.0
                            r = await live_round(people, sims, args.per_user, args.timeout)
                            r.bot_cpu = sum(cpu_s(p) - c for p, c in zip(pids, c0, strict=True))
                            results[label].append(r)
                            held = f", workers held back by their caps {cap.throttled_s() - held0:.1f} s" if cap else ""
                            print(f"  {label}: {r.rate:.0f} replies/s (load {os.getloadavg()[0]:.1f}{held})", flush=True)
                    print(f"\nredelivered {cluster.redeliveries}; load {os.getloadavg()[0]:.2f}")
                    rate = {k: statistics.median(r.rate for r in v) for k, v in results.items()}
                    for k, v in results.items():
                        n = sum(len(r.latencies) for r in v)
                        print(f"{k:<10} {rate[k]:6.0f} replies/s (rounds {', '.join(f'{r.rate:.0f}' for r in v)})  "
                              f"p50 {pct(v, 0.5):6.1f} ms  p99 {pct(v, 0.99):6.1f} ms  "
                              f"workers' CPU {sum(r.bot_cpu for r in v) / max(1, n) * 1000:.2f} ms/reply  "
                              f"unanswered {sum(r.unanswered for r in v)}")
                    ratio = rate["2 workers"] / rate["1 worker"]
                    p99 = pct(results["2 workers"], 0.99) / pct(results["1 worker"], 0.99)
                    print(f"two / one: {ratio:.2f}x replies/s, p99 {p99:.2f}x; target >= 1.7x with the same p99: "
                          f"{'met' if ratio >= 1.7 and p99 <= 1.1 else 'NOT met'}")
                finally:
                    await cluster.stop()
                    if cap is not None:
                        cap.release()
    finally:
        await pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runner", choices=["aiogram", "ptb"], default="aiogram")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--cadres", type=int, default=30)
    p.add_argument("--leaders", type=int, default=6)
    p.add_argument("--per-user", type=int, default=10, help="messages per person per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--no-redis", action="store_true", help="workers without Redis (each paces itself)")
    p.add_argument("--worker-cpu", type=float, default=0.0, metavar="SHARE",
                   help="hold each worker to this share of one core (a cgroup each; root), e.g. 0.4: as if each "
                        "worker had a core of its own, the machine's cores left to PostgreSQL and this process")
    args = p.parse_args()
    if args.worker_cpu and not CpuCap.available():
        p.error("--worker-cpu needs root and the cgroup CPU controller (/sys/fs/cgroup)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.users} people, "
          f"{args.per_user} messages each per round; PostgreSQL, {args.runner} webhook workers"
          f"{'' if args.no_redis else ' + Redis'}, replies to the local fake Bot API"
          f"{f'; each worker held to {args.worker_cpu:g} of a core' if args.worker_cpu else ''}", flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
