"""Several `bangfu run` webhook workers and one `bangfu scheduler` as separate processes against the fake Bot
API, with this process playing Telegram's webhook delivery: each update is POSTed to a worker and, when
that worker does not answer 200 (killed, say), POSTed again to another one, like Telegram redelivers.
Used by tests/delivery/test_workers.py and bench/workers_bench.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.botproc import bangfu_env, free_port, start_bangfu
from tests.fakebotapi import FakeBotAPI, FakeUser

SECRET = "cluster-secret"


def _env(api: FakeBotAPI, db_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    env = bangfu_env(
        BANGFU_TELEGRAM_TOKEN=api.token, BANGFU_TELEGRAM_API_URL=api.url, BANGFU_DATABASE_URL=db_url,
        BANGFU_OUTBOX_HANDOVER_S="3", BANGFU_WEBHOOK_SECRET=SECRET, BANGFU_LOG_LEVEL="WARNING", **extra,
    )
    if redis_url:
        env["BANGFU_REDIS_URL"] = redis_url
    return env


@dataclass
class Worker:
    url: str
    proc: asyncio.subprocess.Process

    def kill(self) -> None:
        self.proc.kill()


@dataclass
class Cluster:
    """Start with `await start(n)`; `deliver(update)` is Telegram POSTing one update."""

    api: FakeBotAPI
    db_url: str
    redis_url: str | None
    cwd: Path
    runner: str = "aiogram"  # the Telegram library the workers run (`bangfu run --runner`)
    env: dict[str, str] = field(default_factory=dict)  # more BANGFU_* settings for every process
    workers: list[Worker] = field(default_factory=list)
    scheduler: asyncio.subprocess.Process | None = None
    redeliveries: int = 0
    _rr: Any = None
    _http: aiohttp.ClientSession | None = None

    async def start(self, n: int, scheduler: bool = True) -> None:
        for _ in range(n):
            port = free_port()
            url = f"http://127.0.0.1:{port}/tg/hook"
            env = _env(self.api, self.db_url, self.redis_url, **{**self.env, "BANGFU_WEBHOOK_URL": url,
                       "BANGFU_WEBHOOK_LISTEN": "127.0.0.1", "BANGFU_WEBHOOK_PORT": str(port)})
            proc = await start_bangfu("run", "--runner", self.runner, "--no-scheduler", cwd=self.cwd, env=env,
                                      stdout=asyncio.subprocess.DEVNULL)
            self.workers.append(Worker(url, proc))
        if scheduler:
            self.scheduler = await start_bangfu("scheduler", cwd=self.cwd,
                                                env=_env(self.api, self.db_url, self.redis_url, **self.env),
                                                stdout=asyncio.subprocess.DEVNULL)
        for w in self.workers:
            await self.api.wait_for_request(
                "setWebhook", lambda r, u=w.url: r.params.get("url") == u, timeout=120  # type: ignore[misc]
            )
        self._rr = itertools.cycle(range(len(self.workers)))
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.proc.returncode is None]

    async def deliver(self, update: dict[str, Any], prefer: int | None = None) -> None:
        """POST until a worker answers 200 (the worker answers once the update is handled)."""
        assert self._http is not None
        i = next(self._rr) if prefer is None else prefer
        for attempt in range(20):
            live = self.alive()
            w = self.workers[i % len(self.workers)]
            if w not in live:
                w = live[i % len(live)]
            try:
                async with self._http.post(w.url, json=update,
                                           headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            self.redeliveries += 1
            i += 1
            await asyncio.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"update {update.get('update_id')} not taken by any worker")

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        procs = [w.proc for w in self.workers] + ([self.scheduler] if self.scheduler else [])
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 30)
            except TimeoutError:
                p.kill()


_seq = itertools.count(1)


def message(api: FakeBotAPI, user: FakeUser, text: str) -> dict[str, Any]:
    """An update like FakeBotAPI.inject_message builds, for delivering by hand."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split(" ", 1)[0])}]
    return {"update_id": next(_seq), "message": {
        "message_id": next(_seq), "date": int(time.time()),
        "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
        "from": user.to_api(), **content,
    }}
