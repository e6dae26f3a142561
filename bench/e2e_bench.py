"""End to end: `bangfu run` (a separate process, as in production) against the local fake Bot API
(tests/fakebotapi.py), 100 simulated people talking to it at once, next to a bare aiogram echo bot on
the same fake Bot API code in the same run.

    python bench/e2e_bench.py                                  # aiogram + ptb runners, SQLite + PostgreSQL
    python bench/e2e_bench.py --runner aiogram --db postgres --rounds 5 --per-user 10
    python bench/e2e_bench.py --runner aiogram --db sqlite --profile /tmp/bot.prof   # cProfile of the bot
    python bench/e2e_bench.py --webhook          # webhook mode (both bots), instead of long polling
    python bench/e2e_bench.py --bot-path /work/main   # the bot from another checkout (before a change)
    python bench/e2e_bench.py --loop uvloop asyncio --gc-gen0 700 50000   # A/B: side by side, in turns

`--loop` (the bot's and the echo bot's event loop, BANGFU_UVLOOP) and `--gc-gen0` (the bot's garbage
collector generation-0 threshold, BANGFU_GC_GEN0_THRESHOLD) take several values: each combination gets its
own database, fake servers, bot and echo bot, all started at once, and the rounds take turns between them.
Each process says which loop it runs on (its log line `..., on uvloop`), printed with the results.

What runs where. This process hosts two fake Bot API servers (one for bangfu, one for the echo bot) and
the simulated people; each bot is its own process (`python -m bot.cli run --runner R --no-scheduler`, and
`bench/e2e_bench.py --echo-bot`, aiogram's own `start_polling`), long polling its server over HTTP. So the
bot pays what it pays in production: HTTP, JSON, the library's parsing, the database, the sends; and its
resident memory (RSS, /proc/<pid>/status) is the bot's alone. The reminder scheduler is left out
(`--no-scheduler`, `bangfu scheduler` runs apart in a deployment) so its ticks do not land in one round.
The per-minute message budget is switched off (BANGFU_MESSAGES_PER_MINUTE=0): each simulated person
sends far more than a person could.

With `--webhook` both bots serve a webhook URL (bangfu its own handler, the echo bot aiogram's
`SimpleRequestHandler`, both answering the POST once the update is handled) and this process POSTs each
update to it like Telegram, concurrently across people (the fake server's own webhook delivery sends one
update at a time, which Telegram does not).

Data: the demo village (`bot.demo`: 400 households) with staff added for 100 users — `--cadres` cadres
(households re-paired evenly among them) and `--leaders` leaders of the team, each bound through an
invite code (`/start CODE`, sent through the bot); the rest of the 100 are villagers.

The mix (each person waits for the bot's answer before the next message, like a chat):
- cadres open /visit and /problem (and /households), press a button of the last keyboard they were shown
  (the first one most often, so dialogs move on: household, visit kind, date, …), type the reply-keyboard
  answers and free-text notes, sometimes /cancel;
- leaders ask /overdue and /week, sometimes /difficulties, press the buttons they were shown;
- villagers ask policy questions (and /help, /lang).
The answer to a message is the first message (send or edit) the bot makes to that chat after it, or a
callback answer with a text (a toast), or a silent callback answer that no message follows within 0.5 s
(a button whose only effect is that: its latency is the callback answer's, the person waited longer);
latency is from putting the update into the fake server to that
answer. An update with no answer within `--timeout` counts as unanswered (printed). A notice to another
person that arrives while that person waits is taken as their answer (rare; bangfu only).

Rounds alternate: bangfu plays the simulated people live; the echo bot then gets each person's very same
messages and button presses (its answers carry no keyboards), so both see the same updates in the same
minutes. Per configuration: the median round's replies/s, p50 / p99 over all rounds, the ratios to the
echo bot, and the bot process's RSS after the run (and its peak). Targets (issue 16): PostgreSQL >= 0.6x the
echo's replies/s and p99 <= 2x the echo's p99; SQLite >= 0.8x; RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SELF = str(Path(__file__).resolve())
BOT_PATH = str(REPO)  # the checkout whose code the bot process runs (--bot-path: before / after a change)
BOT_SETTINGS: dict[str, str] = {}  # BANGFU_* settings given to the bot process (--bot-env), e.g. a pool size
sys.path.insert(0, str(REPO))

from bench.proccpu import cpu_s, postgres_cpu_s  # noqa: E402

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
QUESTIONS = [
    "低保怎么申请", "医保报销比例是多少", "雨露计划补助多少钱", "危房改造有什么补贴", "小额信贷怎么贷",
    "孩子上学有补助吗", "残疾人两项补贴", "养老保险每个月领多少", "公益岗位怎么报名", "种养殖有没有奖补",
]
NOTES = ["入户了解生产生活情况，宣传政策", "家里有人生病需要帮助", "房屋漏雨，已联系村里维修", "今天", "没有",
         "孩子上学路远，希望解决交通", "好的"]
GRACE = 0.5  # seconds a silent callback answer waits for a message before it counts as the answer
VERBOSE = bool(os.environ.get("E2E_VERBOSE"))
ANSWERS = {"sendmessage", "editmessagetext", "editmessagereplymarkup", "sendphoto", "senddocument"}


# --------------------------------------------------------------------------- simulated people
@dataclass
class Sim:
    """One person in a private chat with the bot, and the keyboards the bot last showed them."""

    uid: int
    role: str  # "cadre", "leader", "villager"
    rng: random.Random
    code: str | None = None  # staff: invite code
    buttons: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    message: dict[str, Any] | None = None  # the bot message the inline buttons are on
    waiter: asyncio.Future[float] | None = None
    callback: str | None = None  # id of the press being waited on
    said: list[tuple[str, str]] = field(default_factory=list)  # this round's messages, for the echo bot

    def next(self) -> tuple[str, str]:
        """("text", text) or ("cb", callback data)."""
        r = self.rng.random()
        if self.role == "cadre":
            if self.buttons and r < 0.45:
                return "cb", self.buttons[0] if self.rng.random() < 0.7 else self.rng.choice(self.buttons)
            if self.keys and r < 0.55:
                return "text", self.keys[0] if self.rng.random() < 0.7 else self.rng.choice(self.keys)
            if r < 0.68:
                return "text", self.rng.choice(["/visit", "/visit", "/problem", "/problem", "/households"])
            if r < 0.72:
                return "text", "/help"
            if r < 0.95:
                return "text", self.rng.choice(NOTES)
            return "text", "/cancel"
        if self.role == "leader":
            if self.buttons and r < 0.3:
                return "cb", self.rng.choice(self.buttons)
            if r < 0.75:
                return "text", self.rng.choice(["/overdue", "/week"])
            if r < 0.85:
                return "text", "/difficulties"
            if r < 0.92:
                return "text", "/help"
            return "text", self.rng.choice(QUESTIONS)
        if self.buttons and r < 0.15:
            return "cb", self.rng.choice(self.buttons)
        if r < 0.85:
            return "text", self.rng.choice(QUESTIONS)
        return "text", self.rng.choice(["/help", "/help", "/start", "/lang"])

    def saw(self, req: Any, result: Any) -> None:
        markup = req.params.get("reply_markup")
        if not isinstance(markup, dict):
            return
        if "inline_keyboard" in markup:
            self.buttons = [b["callback_data"] for row in markup["inline_keyboard"] for b in row
                            if b.get("callback_data")]
            self.message = {k: v for k, v in result.items()} if isinstance(result, dict) else None
        elif "keyboard" in markup:
            self.keys = [b["text"] for row in markup["keyboard"] for b in row
                         if not b.get("request_location") and not b.get("request_contact")]
        elif markup.get("remove_keyboard"):
            self.keys = []


class People:
    """The simulated people on one fake Bot API: routes the bot's answers to whoever waits for them."""

    def __init__(self, api: Any, sims: list[Sim], learn: bool,
                 post: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> None:
        """`post`: deliver an update as a webhook POST (bench/workers_bench.py) instead of queueing it for
        getUpdates."""
        self.api = api
        self.post = post
        self.by_chat = {str(s.uid): s for s in sims}
        self.by_callback: dict[str, Sim] = {}
        self.learn = learn  # bangfu: follow its keyboards; echo: its answers carry none
        self.seq = 0
        self.methods: dict[str, int] = {}  # Bot API calls the bot made, by method
        api.listeners.append(self._on_request)

    def _on_request(self, req: Any, result: Any) -> None:
        m = req.method.lower()
        self.methods[req.method] = self.methods.get(req.method, 0) + 1
        if m in ANSWERS:
            sim = self.by_chat.get(str(req.params.get("chat_id")))
            if sim is None:
                return
            if self.learn:
                sim.saw(req, result)
            if sim.waiter is not None and not sim.waiter.done():
                sim.waiter.set_result(time.perf_counter())
        elif m == "answercallbackquery":
            sim = self.by_callback.get(str(req.params.get("callback_query_id")))
            if sim is None or sim.waiter is None or sim.waiter.done():
                return
            if req.params.get("text"):
                sim.waiter.set_result(time.perf_counter())
            else:
                # The spinner stops; a message usually follows. When none does (a button whose whole effect
                # is the answer), the press was answered at this moment.
                at, fut = time.perf_counter(), sim.waiter
                asyncio.get_running_loop().call_later(
                    GRACE, lambda: None if fut.done() else fut.set_result(at))

    def _update(self, sim: Sim, kind: str, payload: str) -> dict[str, Any]:
        self.seq += 1
        user = {"id": sim.uid, "is_bot": False, "first_name": "村民" if sim.role == "villager" else "干部",
                "language_code": "zh-hans"}
        chat = {"id": sim.uid, "type": "private", "first_name": user["first_name"]}
        if kind == "cb":
            cid = f"cq{sim.uid}x{self.seq}"
            self.by_callback[cid] = sim
            sim.callback = cid
            msg = sim.message or {"message_id": 1, "date": int(time.time()), "chat": chat, "text": "…"}
            return {"callback_query": {"id": cid, "from": user, "chat_instance": f"ci{sim.uid}",
                                       "message": msg, "data": payload}}
        content: dict[str, Any] = {"text": payload}
        if payload.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(payload.split(" ", 1)[0])}]
        return {"message": {"message_id": 10**6 + self.seq, "date": int(time.time()), "chat": chat, "from": user,
                            **content}}

    async def turn(self, sim: Sim, kind: str, payload: str, timeout: float) -> float | None:  # noqa: ASYNC109
        """Send one message (or press), wait for the answer; the latency, or None when none came."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        sim.waiter = fut
        t0 = time.perf_counter()
        update = self._update(sim, kind, payload)
        if self.post is None:
            self.api.inject_update(update)
        else:
            update["update_id"] = 10**7 + self.seq
            await self.post(update)
        try:
            return await asyncio.wait_for(fut, timeout) - t0
        except TimeoutError:
            if VERBOSE:
                print(f"    unanswered: {sim.role} {sim.uid} {kind} {payload!r}", flush=True)
            return None
        finally:
            sim.waiter = None
            if sim.callback is not None:
                self.by_callback.pop(sim.callback, None)
                sim.callback = None


@dataclass
class Round:
    latencies: list[float]
    wall: float
    unanswered: int
    bot_cpu: float = 0.0  # CPU seconds the bot process used during the round
    own_cpu: float = 0.0  # CPU seconds this process (fake Bot API + simulated people) used
    db_cpu: float = 0.0  # CPU seconds a PostgreSQL server on this machine used (all its processes)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall


async def _timed(people: People, sims: list[Sim], messages: Callable[[Sim], Any],
                 timeout: float) -> Round:  # noqa: ASYNC109
    """Everybody at once, each sending what `messages(sim)` yields and waiting for each answer."""
    lat: list[float] = []
    missed = 0

    async def talk(sim: Sim) -> None:
        nonlocal missed
        for target, kind, payload in messages(sim):
            d = await people.turn(target, kind, payload, timeout)
            if d is None:
                missed += 1
            else:
                lat.append(d)

    t0 = time.perf_counter()
    await asyncio.gather(*(talk(s) for s in sims))
    return Round(lat, time.perf_counter() - t0, missed)


async def live_round(people: People, sims: list[Sim], per_user: int, timeout: float) -> Round:  # noqa: ASYNC109
    """Every person sends `per_user` messages, each chosen after the answer to the previous one."""

    def chosen(sim: Sim) -> Any:
        sim.said = []
        for _ in range(per_user):
            kind, payload = sim.next()
            sim.said.append((kind, payload))
            yield sim, kind, payload

    return await _timed(people, sims, chosen, timeout)


async def replay_round(people: People, sims: list[Sim], timeout: float) -> Round:  # noqa: ASYNC109
    """The echo bot gets what each person said in the last live round, in the same order (`people` is
    the echo's server with its own copies of `sims`)."""
    echo = {int(k): v for k, v in people.by_chat.items()}
    return await _timed(people, sims, lambda sim: ((echo[sim.uid], k, p) for k, p in sim.said), timeout)


# --------------------------------------------------------------------------- the data
async def prepare(url: str, users: int, cadres: int, leaders: int) -> list[Sim]:
    """Migrate, seed the demo village, add staff, re-pair households; the people to simulate."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.clock import SystemClock, local_today
    from bot.demo import seed_demo
    from bot.services.onboarding import create_invite
    from bot.settings import Settings
    from bot.store.db import create_engine
    from bot.store.migrate import upgrade_async
    from bot.store.models import Pairing, Person, Team

    await upgrade_async(url)
    clock = SystemClock(Settings(database_url=url).timezone)
    engine = create_engine(url)
    staff: list[tuple[str, str]] = []
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
            await seed_demo(s, local_today(clock))
            team = (await s.execute(select(Team).order_by(Team.id))).scalars().first()
            assert team is not None
            have = list((await s.execute(select(Person).where(Person.role == "cadre").order_by(Person.id))).scalars())
            bosses = list((await s.execute(select(Person).where(Person.role == "leader").order_by(Person.id)))
                          .scalars())
            units = ["示例县教育局", "示例县卫健局", "示例县交通局", "平安镇政府", "示例县供电所"]
            for i in range(len(have), cadres):
                have.append(Person(name=f"压测干部{i:02d}", phone=f"1770000{i:04d}", role="cadre", team_id=team.id,
                                   village_id=team.village_id, work_unit=units[i % len(units)]))
            for i in range(len(bosses), leaders):
                bosses.append(Person(name=f"压测队长{i:02d}", phone=f"1760000{i:04d}", role="leader",
                                     team_id=team.id, village_id=team.village_id, work_unit=units[i % len(units)]))
            s.add_all(have + bosses)
            await s.flush()
            pairings = (await s.execute(select(Pairing).where(Pairing.end_date.is_(None)).order_by(Pairing.id))).scalars()
            for j, p in enumerate(pairings):
                p.cadre_id = have[j % len(have)].id
            for p in have[:cadres]:
                staff.append(("cadre", (await create_invite(s, clock.now(), person=p)).code))
            for p in bosses[:leaders]:
                staff.append(("leader", (await create_invite(s, clock.now(), person=p)).code))
    finally:
        await engine.dispose()
    rng = random.Random(16)
    sims = [Sim(5_000_000 + i, role, random.Random(rng.random()), code) for i, (role, code) in enumerate(staff)]
    sims += [Sim(6_000_000 + i, "villager", random.Random(rng.random())) for i in range(users - len(sims))]
    return sims


# --------------------------------------------------------------------------- processes
def bot_env(api: Any, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update(BANGFU_TELEGRAM_TOKEN=api.token, BANGFU_TELEGRAM_API_URL=api.url, BANGFU_DATABASE_URL=url,
               BANGFU_LOG_LEVEL="INFO", BANGFU_MESSAGES_PER_MINUTE="0", BANGFU_MEDIA_DIR=extra.pop("media", ""),
               PYTHONPATH=BOT_PATH, **extra)
    env.update(BOT_SETTINGS)
    if not env["BANGFU_MEDIA_DIR"]:
        del env["BANGFU_MEDIA_DIR"]
    return env


def bot_setting(value: str) -> tuple[str, str]:
    """--bot-env BANGFU_NAME=VALUE"""
    name, sep, v = value.partition("=")
    if not sep or not name.startswith("BANGFU_"):
        raise argparse.ArgumentTypeError(f"{value!r}: BANGFU_NAME=VALUE")
    return name, v


LOOPS: dict[int, str] = {}  # pid -> the event loop the process said it runs on ("uvloop" / "asyncio")
_FORWARDERS: set[asyncio.Task[None]] = set()
_ON_LOOP = re.compile(rb", on (uvloop|asyncio)$")


async def _forward(proc: asyncio.subprocess.Process) -> None:
    """A process's log to ours, noting the loop it reports (`bangfu running: ..., on uvloop`; the echo bot's
    own line likewise)."""
    assert proc.stderr is not None
    async for line in proc.stderr:
        m = _ON_LOOP.search(line.rstrip())
        if m is not None:
            LOOPS[proc.pid] = m.group(1).decode()
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()


def loop_of(proc: asyncio.subprocess.Process) -> str:
    return LOOPS.get(proc.pid, "asyncio?")  # an older bot does not say: asyncio.run's loop


async def start_process(api: Any, argv: list[str], env: dict[str, str], cwd: str) -> asyncio.subprocess.Process:
    """Start a bot process and wait until it long-polls its fake server (or has set its webhook)."""
    ready = "setwebhook" if env.get("BANGFU_WEBHOOK_URL") else "getupdates"
    proc = await asyncio.create_subprocess_exec(sys.executable, *argv, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    task = asyncio.create_task(_forward(proc))
    _FORWARDERS.add(task)
    task.add_done_callback(_FORWARDERS.discard)
    async with asyncio.timeout(180):
        while not any(r.method.lower() == ready for r in api.requests[-20:]):
            if proc.returncode is not None:
                raise RuntimeError(f"{argv} exited with {proc.returncode}")
            await asyncio.sleep(0.05)
    return proc


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def measured(pid: int, round_: Any) -> Round:
    """Run a round, noting the CPU the bot process and this process spent on it."""
    c0, o0, s0 = cpu_s(pid), time.process_time(), postgres_cpu_s()
    r: Round = await round_
    r.bot_cpu, r.own_cpu = cpu_s(pid) - c0, time.process_time() - o0
    s1 = postgres_cpu_s()
    r.db_cpu = s1 - s0 if s0 is not None and s1 is not None else 0.0
    return r


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) / 1024
    return out.get("VmRSS", 0.0), out.get("VmHWM", 0.0)


def poster(http: Any, hook: dict[str, str]) -> Callable[[dict[str, Any]], Awaitable[None]] | None:
    """Webhook mode: Telegram's POST of an update to the bot's URL (answered once the update is handled)."""
    if not hook:
        return None
    url, headers = hook["BANGFU_WEBHOOK_URL"], {"X-Telegram-Bot-Api-Secret-Token": hook["BANGFU_WEBHOOK_SECRET"]}

    async def post(update: dict[str, Any]) -> None:
        async with http.post(url, json=update, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"webhook answered {resp.status}")

    return post


# --------------------------------------------------------------------------- one configuration
@dataclass
class Result:
    label: str
    bangfu: list[Round]
    echo: list[Round]
    rss: tuple[float, float]
    loops: tuple[str, str] = ("?", "?")  # the event loops the bot and the echo bot said they ran on

    @staticmethod
    def _pct(rounds: list[Round], q: float) -> float:
        lat = sorted(x for r in rounds for x in r.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    @staticmethod
    def _rate(rounds: list[Round]) -> float:
        return statistics.median(r.rate for r in rounds)

    def lines(self) -> list[str]:
        b, e = self._rate(self.bangfu), self._rate(self.echo)
        bp99, ep99 = self._pct(self.bangfu, 0.99), self._pct(self.echo, 0.99)
        miss_b = sum(r.unanswered for r in self.bangfu)
        miss_e = sum(r.unanswered for r in self.echo)
        return [
            f"{self.label:<22} bangfu {b:6.0f} replies/s  p50 {self._pct(self.bangfu, 0.5):6.1f} ms  p99 {bp99:6.1f} ms"
            f"   | echo {e:6.0f} replies/s  p50 {self._pct(self.echo, 0.5):6.1f} ms  p99 {ep99:6.1f} ms",
            f"{'':<22} ratio {b / e:5.2f}x replies/s, p99 {bp99 / ep99:4.2f}x echo's"
            f"   rounds bangfu {', '.join(f'{r.rate:.0f}' for r in self.bangfu)} / echo "
            f"{', '.join(f'{r.rate:.0f}' for r in self.echo)}   unanswered {miss_b} / {miss_e}"
            f"   bot RSS {self.rss[0]:.0f} MB (peak {self.rss[1]:.0f})",
            f"{'':<22} CPU per reply: bangfu process {self._cpu(self.bangfu, 'bot_cpu'):.2f} ms, echo process "
            f"{self._cpu(self.echo, 'bot_cpu'):.2f} ms; fake Bot API + people {self._cpu(self.bangfu, 'own_cpu'):.2f}"
            f" / {self._cpu(self.echo, 'own_cpu'):.2f} ms;"
            + (f" PostgreSQL server {self._cpu(self.bangfu, 'db_cpu'):.2f} ms;" if "postgres" in self.label else "")
            + f"   event loop: bangfu {self.loops[0]}, echo {self.loops[1]}",
        ]

    @staticmethod
    def _cpu(rounds: list[Round], attr: str) -> float:
        n = sum(len(r.latencies) for r in rounds)
        return sum(getattr(r, attr) for r in rounds) / max(1, n) * 1000

    def verdict(self) -> str:
        b, e = self._rate(self.bangfu), self._rate(self.echo)
        p = self._pct(self.bangfu, 0.99) / self._pct(self.echo, 0.99)
        if "sqlite" in self.label:
            ok = b / e >= 0.8
            want = ">= 0.8x"
        else:
            ok = b / e >= 0.6 and p <= 2.0
            want = ">= 0.6x, p99 <= 2x"
        ok = ok and self.rss[0] <= 400
        return f"{self.label:<22} target {want}, RSS <= 400 MB: {'met' if ok else 'NOT met'}"


@dataclass(frozen=True)
class Variant:
    """How the bot process runs (--loop, --gc-gen0); None: as its settings say. The echo bot runs on the
    same kind of event loop as the bot."""

    loop: str | None = None  # "uvloop" / "asyncio": BANGFU_UVLOOP for both processes
    gc0: int | None = None  # BANGFU_GC_GEN0_THRESHOLD for the bot

    def env(self) -> dict[str, str]:
        out = {}
        if self.loop is not None:
            out["BANGFU_UVLOOP"] = "true" if self.loop == "uvloop" else "false"
        if self.gc0 is not None:
            out["BANGFU_GC_GEN0_THRESHOLD"] = str(self.gc0)
        return out

    def tag(self) -> str:
        parts = ([self.loop] if self.loop else []) + ([f"gc0 {self.gc0}"] if self.gc0 is not None else [])
        return f" [{', '.join(parts)}]" if parts else ""


@dataclass
class Side:
    """One variant of a configuration: its database, fake Bot API servers, people, bot and echo bot."""

    variant: Variant
    live: People
    echo: People
    sims: list[Sim]
    bot: asyncio.subprocess.Process
    echo_bot: asyncio.subprocess.Process
    out: Result


@contextlib.asynccontextmanager
async def side(db: str, runner: str, variant: Variant, args: argparse.Namespace) -> AsyncIterator[Side]:
    from sqlalchemy.engine import make_url

    from tests.fakebotapi import FakeBotAPI
    from tests.pg import pg_execute

    label = f"{runner} / {db}{variant.tag()}"
    with tempfile.TemporaryDirectory() as tmp:
        if db == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
            name = None
        else:
            name = f"bangfu_e2e_{uuid.uuid4().hex[:8]}"
            await pg_execute(f'CREATE DATABASE "{name}"')
            url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        try:
            sims = await prepare(url, args.users, args.cadres, args.leaders)
            async with FakeBotAPI(keep_last=5000) as api, \
                    FakeBotAPI("987654321:ECHO-fake-token", "echo_bot", keep_last=5000) as echo_api:
                hooks: list[dict[str, str]] = [{}, {}]
                http = None
                if args.webhook:
                    import aiohttp

                    from tests.botproc import free_port

                    hooks = [{"BANGFU_WEBHOOK_URL": f"http://127.0.0.1:{p}/tg/hook", "BANGFU_WEBHOOK_PORT": str(p),
                              "BANGFU_WEBHOOK_LISTEN": "127.0.0.1", "BANGFU_WEBHOOK_SECRET": "e2e-secret"}
                             for p in (free_port(), free_port())]
                    http = aiohttp.ClientSession()
                live = People(api, sims, learn=True, post=poster(http, hooks[0]))
                echo = People(echo_api, [Sim(s.uid, s.role, s.rng) for s in sims], learn=False,
                              post=poster(http, hooks[1]))
                argv = ["-m", "bot.cli", "run", "--runner", runner, "--no-scheduler"]
                if args.profile:
                    argv = [SELF, "--profiled", args.profile, "--", *argv[2:]]
                bot = echo_bot = None
                try:
                    bot = await start_process(api, argv, bot_env(api, url, media=f"{tmp}/media", **hooks[0],
                                                                 **variant.env()), tmp)
                    echo_env = bot_env(echo_api, url, **hooks[1], **variant.env())
                    echo_env.pop("BANGFU_GC_GEN0_THRESHOLD", None)  # the bare bot keeps Python's collector
                    echo_bot = await start_process(echo_api, [SELF, "--echo-bot"], echo_env, tmp)
                    yield Side(variant, live, echo, sims, bot, echo_bot, Result(label, [], [], (0.0, 0.0)))
                finally:
                    for proc in (bot, echo_bot):
                        if proc is not None:
                            await stop_process(proc)
                    if http is not None:
                        await http.close()
        finally:
            if name is not None:
                await pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run_config(db: str, runner: str, args: argparse.Namespace) -> list[Result]:
    """One database and runner: each variant's bot and echo bot side by side, the rounds taking turns
    (bangfu A, echo A, bangfu B, echo B, ...) so every variant is measured in the same minutes."""
    async with contextlib.AsyncExitStack() as stack:
        sides = [await stack.enter_async_context(side(db, runner, v, args)) for v in args.variants]
        for sd in sides:
            staff = [s for s in sd.sims if s.code]
            bound = await asyncio.gather(*(sd.live.turn(s, "text", f"/start {s.code}", 30) for s in staff))
            if any(d is None for d in bound):
                raise RuntimeError("a staff member was not answered on binding")
            # Warm-up: every code path and both processes' caches, not measured.
            await live_round(sd.live, sd.sims, args.warmup, args.timeout)
            await replay_round(sd.echo, sd.sims, args.timeout)
            sd.live.methods.clear()
            print(f"  {sd.out.label}: bangfu on {loop_of(sd.bot)}, echo bot on {loop_of(sd.echo_bot)}", flush=True)
        for _ in range(args.rounds):
            for sd in sides:
                out = sd.out
                out.bangfu.append(await measured(sd.bot.pid, live_round(sd.live, sd.sims, args.per_user,
                                                                        args.timeout)))
                out.echo.append(await measured(sd.echo_bot.pid, replay_round(sd.echo, sd.sims, args.timeout)))
                print(f"  {out.label}: round bangfu {out.bangfu[-1].rate:.0f} / echo {out.echo[-1].rate:.0f}"
                      " replies/s", flush=True)
        await asyncio.sleep(1)  # the last confirmations flushed
        for sd in sides:
            n = sum(len(r.latencies) + r.unanswered for r in sd.out.bangfu)
            print(f"  {sd.out.label}: bangfu's Bot API calls per update: "
                  + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(sd.live.methods.items(), key=lambda kv: -kv[1])))
            sd.out.rss = rss_mb(sd.bot.pid)
            sd.out.loops = (loop_of(sd.bot), loop_of(sd.echo_bot))
        return [sd.out for sd in sides]


# --------------------------------------------------------------------------- the echo bot process
def echo_bot() -> None:
    """A bare aiogram bot: every message is answered with its text, every press with a message."""
    import logging

    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bench.echo import echo_router

    logging.basicConfig(level=logging.WARNING)
    bot = Bot(os.environ["BANGFU_TELEGRAM_TOKEN"],
              session=AiohttpSession(api=TelegramAPIServer.from_base(os.environ["BANGFU_TELEGRAM_API_URL"])))
    router = echo_router(bot)

    dp = Dispatcher()
    dp.include_router(router)
    hook = os.environ.get("BANGFU_WEBHOOK_URL")

    def said(what: str) -> None:
        kind = "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
        print(f"echo bot: {what}, on {kind}", file=sys.stderr, flush=True)

    if not hook:
        async def poll() -> None:
            said("aiogram start_polling")
            await dp.start_polling(bot, polling_timeout=30)

        run_on_loop(poll())
        return

    async def serve() -> None:
        # aiogram's own webhook server, answering Telegram once the update is handled (as bangfu does).
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
        from aiohttp import web

        secret = os.environ["BANGFU_WEBHOOK_SECRET"]
        app = web.Application()
        SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token=secret).register(app, path="/tg/hook")
        setup_application(app, dp, bot=bot)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(os.environ["BANGFU_WEBHOOK_PORT"])).start()
        said("aiogram webhook")
        await bot.set_webhook(hook, secret_token=secret)
        await asyncio.Event().wait()

    run_on_loop(serve())


def run_on_loop(main: Any) -> None:
    """The echo bot on the loop `bangfu run` picks (bot/eventloop.py) from the same BANGFU_UVLOOP: uvloop
    when installed and not switched off, asyncio's otherwise; spelled out so an older bot checkout works."""
    from pydantic import TypeAdapter

    factory = None
    if TypeAdapter(bool).validate_python(os.environ.get("BANGFU_UVLOOP", "true")):
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def profiled(out: str, argv: list[str]) -> None:
    """Run `bangfu <argv>` under cProfile (main thread: the event loop), written to `out` when it stops."""
    from bot.runners.cli import main as cli_main

    prof = cProfile.Profile()
    prof.enable()
    try:
        cli_main(argv)
    except SystemExit:
        pass
    finally:
        prof.disable()
        prof.dump_stats(out)


# --------------------------------------------------------------------------- main
async def main(args: argparse.Namespace) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.users} users "
          f"({args.cadres} cadres, {args.leaders} leaders), {args.per_user} messages each per round, {args.rounds} "
          "rounds alternating bangfu / echo; bot in its own process, "
          f"{'webhook POSTs' if args.webhook else 'long polling the fake Bot API'}"
          f"{''.join(f', {k}={v}' for k, v in BOT_SETTINGS.items())}"
          f"{'; variants in turns: ' + ', '.join(v.tag().strip() for v in args.variants) if len(args.variants) > 1 else ''}",
          flush=True)
    results = []
    for db in args.db:
        if db == "postgres":
            from tests.pg import _reachable

            if not _reachable():
                print(f"PostgreSQL not reachable at {PG_URL}; skipped")
                continue
        for runner in args.runner:
            for r in await run_config(db, runner, args):
                results.append(r)
                for line in r.lines():
                    print(line, flush=True)
    print(f"\nload {os.getloadavg()[0]:.2f}")
    for r in results:
        print("\n".join(r.lines()))
    print()
    for r in results:
        print(r.verdict())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--echo-bot":
        echo_bot()
        sys.exit(0)
    if len(sys.argv) > 3 and sys.argv[1] == "--profiled":
        profiled(sys.argv[2], sys.argv[4:])
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    p.add_argument("--runner", nargs="+", choices=["aiogram", "ptb"], default=["aiogram", "ptb"])
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--cadres", type=int, default=30)
    p.add_argument("--leaders", type=int, default=6)
    p.add_argument("--per-user", type=int, default=10, help="messages per person per round")
    p.add_argument("--warmup", type=int, default=3, help="messages per person before measuring")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    p.add_argument("--webhook", action="store_true",
                   help="webhook mode: this process POSTs each update to the bot (and to the echo bot), which "
                        "answers once it is handled; default long polling")
    p.add_argument("--loop", nargs="+", choices=["uvloop", "asyncio"],
                   help="the event loop of the bot and its echo bot (BANGFU_UVLOOP); several: each runs side by "
                        "side, rounds taking turns (default: as the bot's settings say, uvloop when installed)")
    p.add_argument("--gc-gen0", nargs="+", type=int, metavar="THRESHOLD",
                   help="the bot's garbage collector generation-0 threshold (BANGFU_GC_GEN0_THRESHOLD); several: "
                        "side by side like --loop (default: the bot's setting)")
    p.add_argument("--profile", metavar="FILE", help="run the bot under cProfile, stats written to FILE")
    p.add_argument("--bot-path", metavar="CHECKOUT", default=str(REPO),
                   help="run the bot (not the echo bot) from another checkout, e.g. main before a change")
    p.add_argument("--bot-env", metavar="BANGFU_NAME=VALUE", action="append", type=bot_setting, default=[],
                   help="a setting for the bot process (repeatable), e.g. BANGFU_UPDATES_IN_FLIGHT=4")
    parsed = p.parse_args()
    BOT_PATH = parsed.bot_path
    BOT_SETTINGS.update(parsed.bot_env)
    parsed.variants = [Variant(loop, g) for loop in (parsed.loop or [None]) for g in (parsed.gc_gen0 or [None])]
    asyncio.run(main(parsed))
