"""A small fake Telegram Bot API server (aiohttp) for the outbox sender's tests and benchmark.

It accepts sendMessage / sendPhoto / sendDocument over real HTTP, keeps a log of accepted messages,
and injects faults: a fraction of 429 (with retry_after) and 502 answers from a seeded RNG, and
403 for blocked chats. It also watches the limits a real bot must respect (overall messages per
second, one message per second per chat) and counts violations, so tests can assert them.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Accepted:
    chat_id: str
    method: str
    text: str | None
    at: float  # loop time
    photo_size: int = 0
    reply_markup: dict[str, Any] | None = None


@dataclass
class FakeBotAPI:
    token: str = "123:TEST"
    rate_429: float = 0.0
    rate_502: float = 0.0
    retry_after: float = 1.0
    blocked: set[str] = field(default_factory=set)
    seed: int = 7
    overall_limit: int = 30  # messages in any 1-second window before it counts a violation
    chat_gap: float = 0.95  # two messages to one chat closer than this count as a violation
    accepted: list[Accepted] = field(default_factory=list)
    requests: int = 0
    faults: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._runner: web.AppRunner | None = None
        self._window: deque[float] = deque()
        self._last_by_chat: dict[str, float] = {}
        self._next_id = 1
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [a.text or "" for a in self.accepted if chat_id is None or a.chat_id == chat_id]

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], int]:
        if request.content_type.startswith("multipart/"):
            data: dict[str, Any] = {}
            size = 0
            reader = await request.multipart()
            async for part in reader:
                if part.filename:  # type: ignore[union-attr]
                    size = len(await part.read())  # type: ignore[union-attr]
                else:
                    data[part.name or ""] = (await part.read()).decode()  # type: ignore[union-attr]
            return data, size
        return await request.json(), 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        data, photo_size = await self._read(request)
        chat = str(data.get("chat_id", ""))
        if chat in self.blocked:
            self.faults["403"] += 1
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
                status=403,
            )
        roll = self._rng.random()
        if roll < self.rate_429:
            self.faults["429"] += 1
            return web.json_response(
                {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {self.retry_after}",
                 "parameters": {"retry_after": self.retry_after}},
                status=429,
            )
        if roll < self.rate_429 + self.rate_502:
            self.faults["502"] += 1
            return web.Response(status=502, text="Bad Gateway")
        now = asyncio.get_running_loop().time()
        last = self._last_by_chat.get(chat)
        if last is not None and now - last < self.chat_gap:  # a little under 1 s: timer jitter
            self.violations.append(f"chat {chat}: {now - last:.3f}s apart")
        self._last_by_chat[chat] = now
        self._window.append(now)
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) > self.overall_limit + 1:  # +1: the window's two ends touch
            self.violations.append(f"{len(self._window)} messages within 1s")
        markup = data.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        text = data.get("text") if method == "sendMessage" else data.get("caption")
        self.accepted.append(Accepted(chat, method, text, now, photo_size, markup))
        mid = self._next_id
        self._next_id += 1
        return web.json_response({"ok": True, "result": {"message_id": mid, "chat": {"id": chat}, "date": 0}})
