"""The Telegram runners' own CPU per update, without the core: what bench/e2e_bench.py's "bangfu process"
figure holds besides the core and the database (getUpdates, the translation, each user's queue, the sends,
the outbox confirmations).

    python bench/runner_bench.py                          # aiogram and ptb, 100 people, 3 rounds of 3000
    python bench/runner_bench.py --runner ptb --updates 5000
    python bench/runner_bench.py --bot-path /work/main    # the runner code of another checkout (before)

This process runs the real runner (`AiogramRunner` / `PTBRunner`, long polling, outbox confirmations on)
around a stand-in core that answers at once: a text message with one reply carrying an inline keyboard, a
button press with its callback answer and one reply, every reply marked as written to the outbox (so it is
confirmed like in production). A child process hosts the fake Bot API (tests/fakebotapi.py) and `--users`
people in a closed loop: each sends the next message (one in four a button press) as soon as the bot
answered the last. The figure is this process's CPU time (user + system, os.times) per update over each round,
next to the updates per second (the machine's other load moves that one, much less the CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _paths(bot_path: str) -> None:
    """The runner code from `bot_path`, the fake server from this checkout's tests/."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, bot_path)


# --------------------------------------------------------------------------- the child: fake API and people
async def serve(users: int) -> None:
    from tests.fakebotapi import FakeBotAPI, FakeUser

    async with FakeBotAPI(keep_last=1000) as api:
        people = [FakeUser(100000 + i, f"村民{i}") for i in range(users)]
        turn = dict.fromkeys((p.id for p in people), 0)
        by_id = {p.id: p for p in people}

        def next_message(uid: int) -> None:
            turn[uid] += 1
            if turn[uid] % 4 == 0:
                api.inject_callback(by_id[uid], f"pick:{turn[uid]}")
            else:
                api.inject_message(by_id[uid], f"第{turn[uid]}个问题：低保怎么申请？")

        def on_request(rec: Any, _result: Any) -> None:
            if rec.method == "sendMessage":
                uid = int(rec.params["chat_id"])
                if uid in turn:
                    asyncio.get_running_loop().call_soon(next_message, uid)

        api.listeners.append(on_request)
        print(api.url, api.token, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        for p in people:
            next_message(p.id)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop"


# --------------------------------------------------------------------------- this process: runner + stub core
class StubCore:
    """Answers every update at once; counts them."""

    def __init__(self) -> None:
        from bot.clock import SystemClock
        from bot.settings import Settings

        self.clock = SystemClock("Asia/Shanghai")
        self.settings = Settings()  # the bridge's in-flight limit (Settings.updates_in_flight)
        self.handled = 0
        self.confirmed = 0
        self.files: Any = None
        self.reached = asyncio.Event()
        self.target = 0

    async def handle(self, inc: Any) -> Any:
        from bot.core.types import AnswerCallback, Button, InlineKeyboard, Reply, Result

        self.handled += 1
        if self.handled == self.target:
            self.reached.set()
        kb = InlineKeyboard(((Button("是", "yes"), Button("否", "no")),))
        text = "低保（最低生活保障）申请：本人向户籍所在地乡镇提出申请，提供身份证、户口本和收入证明。"
        reply = Reply(inc.chat_id, text, markup=kb, channel="telegram", outbox_key=f"k{self.handled}")
        if inc.callback_id:
            return Result([AnswerCallback(inc.callback_id, "已记录"), reply])
        return Result([reply])

    def use_outbox(self, handover_s: float, payload: Any) -> None:
        pass

    def confirm_sent(self, key: str) -> None:
        self.confirmed += 1

    async def flush_sent(self) -> None:
        pass

    async def write(self, statement: Any, params: Any) -> None:
        pass


class StubApp:
    def __init__(self) -> None:
        self.core = StubCore()


def start_child(users: int, bot_path: str) -> subprocess.Popen[str]:
    """The fake Bot API and the people, in a process of their own."""
    return subprocess.Popen([sys.executable, __file__, "--serve", str(users), "--bot-path", bot_path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def measure(child: subprocess.Popen[str], runner_name: str, updates: int, rounds: int,
                  profile: str | None = None, warmup: int | None = None) -> list[tuple[float, float]]:
    from pydantic import SecretStr

    from bot.settings import Settings

    assert child.stdin is not None and child.stdout is not None
    try:
        url, token = child.stdout.readline().split()
        settings = Settings(telegram_token=SecretStr(token), telegram_api_url=url)
        app = StubApp()
        if runner_name == "aiogram":
            from bot.runners.aiogram_runner import AiogramRunner

            runner: Any = AiogramRunner(app, settings, polling_timeout=10)  # type: ignore[arg-type]
        else:
            from bot.runners.ptb_runner import PTBRunner

            runner = PTBRunner(app, settings, polling_timeout=10)  # type: ignore[arg-type]
        await runner.start()
        core = app.core
        child.stdin.write("go\n")
        child.stdin.flush()
        out = []
        core.target = updates // 3 if warmup is None else warmup
        await core.reached.wait()
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        for _ in range(rounds):
            core.reached.clear()
            core.target = core.handled + updates
            t0, w0 = os.times(), time.perf_counter()
            await core.reached.wait()
            t1 = os.times()
            user, system = (t1.user - t0.user) / updates * 1000, (t1.system - t0.system) / updates * 1000
            out.append((user + system, updates / (time.perf_counter() - w0)))
            print(f"  {runner_name}: round {out[-1][0]:.3f} ms CPU/update (user {user:.3f}, system {system:.3f}), "
                  f"{out[-1][1]:.0f} updates/s", flush=True)
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{profile}.{runner_name}")
        await runner.stop()
        child.stdin.write("stop\n")
        child.stdin.flush()
        return out
    finally:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.terminate()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runner", nargs="+", choices=["aiogram", "ptb"], default=["aiogram", "ptb"])
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--updates", type=int, default=3000, help="updates per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bot-path", default=str(REPO), help="checkout whose runner code is measured")
    p.add_argument("--warmup", type=int, help="updates before measuring (default: a third of --updates)")
    p.add_argument("--profile", metavar="FILE", help="cProfile the measured rounds, stats to FILE.<runner>")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    _paths(args.bot_path)
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("BANGFU_MESSAGES_PER_MINUTE", "0")
    results = {r: asyncio.run(measure(start_child(args.users, args.bot_path), r, args.updates, args.rounds,
                                      args.profile, args.warmup)) for r in args.runner}
    print(f"runner code from {args.bot_path}")
    for r, rounds in results.items():
        cpu = statistics.median(x for x, _ in rounds)
        rate = statistics.median(y for _, y in rounds)
        print(f"{r:<8} {cpu:.3f} ms CPU per update (median of {len(rounds)} rounds of {args.updates}), "
              f"{rate:.0f} updates/s")


if __name__ == "__main__":
    main()
