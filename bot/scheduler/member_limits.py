"""Per-member send windows for channels that count messages per recipient over minutes and hours.

WeCom (企业微信) allows an app at most 30 messages a minute and 1,000 an hour to one member, and asks
senders to keep broadcasts off the exact :00 and :30 marks (everyone's reminders land then). The
`WindowLimiter` has the RateLimiter's contract (`turn`, `refund`, `hold_chat`), so the outbox sender
holds one per channel (`Sender(limiters={"wecom": WindowLimiter(...)})`):

- a member's turn waits until every window has room: a send counts from when it was granted until it
  finished (the later time is kept), so however the network delays one request, WeCom never sees more
  than `limit` arrivals in any `window` seconds;
- one send to a member at a time (a per-member lock), members concurrently;
- the app's overall pace (messages per second, all members) through a RateLimiter;
- with `avoid_marks`, nothing is sent in the first minute of an hour or half hour (wall clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bot.scheduler.sender import RateLimiter

WECOM_WINDOWS: tuple[tuple[int, float], ...] = ((30, 60.0), (1000, 3600.0))


def mark_wait(now_s: float) -> float:
    """Seconds until the :00 / :30 minute (wall clock) is over; 0 outside it."""
    t = datetime.fromtimestamp(now_s, UTC)
    if t.minute in (0, 30):
        return 60.0 - t.second - t.microsecond / 1e6
    return 0.0


class WindowLimiter:
    def __init__(self, windows: tuple[tuple[int, float], ...] = WECOM_WINDOWS, rate_per_s: float = 20.0,
                 avoid_marks: bool = True, wall: Callable[[], float] = time.time) -> None:
        self.windows = windows
        self._horizon = max(w for _, w in windows)
        self._overall = RateLimiter(rate_per_s, 0.0)
        self._avoid_marks = avoid_marks
        self._wall = wall
        self._sent: dict[str, deque[float]] = {}
        self._hold: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _wait(self, chat_id: str, now: float) -> float:
        log = self._sent.get(chat_id)
        wait = self._hold.get(chat_id, 0.0) - now
        if log:
            while log and log[0] <= now - self._horizon:
                log.popleft()
            for limit, window in self.windows:
                recent = [t for t in log if t > now - window]
                if len(recent) >= limit:
                    wait = max(wait, recent[-limit] + window - now)
        if self._avoid_marks:
            wait = max(wait, mark_wait(self._wall()))
        return wait

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[tuple[str, float, float]]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            while (wait := self._wait(chat_id, self._now())) > 0:  # noqa: ASYNC110 - waits for time, not an event
                await asyncio.sleep(wait)
            overall = await self._overall._overall()
            granted = self._now()
            log = self._sent.setdefault(chat_id, deque())
            log.append(granted)
            ticket = (chat_id, granted, overall)
            try:
                yield ticket
            finally:
                # The send counts until it finished (see the module docstring).
                finished = self._now()
                with contextlib.suppress(ValueError):
                    i = log.index(granted)
                    log[i] = finished
        if not lock.locked() and len(self._locks) > 10_000:
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            now = self._now()
            self._sent = {k: v for k, v in self._sent.items() if v and v[-1] > now - self._horizon}

    async def refund(self, ticket: tuple[str, float, float]) -> None:
        """The channel refused the send (rate limit): it does not count against the member's windows."""
        chat_id, _granted, overall = ticket
        log = self._sent.get(chat_id)
        if log:
            # The entry was moved to its finish time; the newest entry of this chat is this send's.
            with contextlib.suppress(IndexError):
                log.pop()
        await self._overall.refund(overall)

    async def hold_chat(self, chat_id: str, seconds: float) -> None:
        self._hold[chat_id] = max(self._hold.get(chat_id, 0.0), self._now() + seconds)


def channel_limiters(channels: Iterable[str], redis_url: str | None = None) -> dict[str, Any]:
    """The sender's own limiters for the channels that need one (WeCom's per-member windows), shared by
    every sender process through Redis when `redis_url` is set. SMS counts per number in the database,
    across processes, so the sender adds no hold of its own for it."""
    wanted = set(channels)
    out: dict[str, Any] = {}
    if "sms" in wanted:
        from bot.channels.sms.transport import NoHoldLimiter

        out["sms"] = NoHoldLimiter()
    if "wecom" not in wanted:
        return out
    if redis_url:
        from redis.asyncio import Redis

        out["wecom"] = RedisWindowLimiter(Redis.from_url(redis_url))
        return out
    out["wecom"] = WindowLimiter()
    return out


# KEYS[1] = the member's sends (sorted set: member -> time), KEYS[2] = the member's hold; ARGV = member
# (a unique id), then limit/window pairs. Times from the Redis server's clock, which every process shares.
# Returns {granted (1/0), seconds to wait}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wait = 0
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
if hold > now then wait = hold - now end
local horizon = 0
for i = 2, #ARGV, 2 do
  local limit = tonumber(ARGV[i])
  local window = tonumber(ARGV[i + 1])
  if window > horizon then horizon = window end
  local recent = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf', 'WITHSCORES')
  local n = #recent / 2
  if n >= limit then
    local oldest = tonumber(recent[(n - limit) * 2 + 2])
    local w = oldest + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return {0, tostring(wait)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - horizon)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(horizon * 1000))
return {1, '0'}
"""

# KEYS[1] = the member's sends; ARGV[1] = the send's id: it counts from now (when it finished).
_FINISH = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1e6, ARGV[1])
end
return 1
"""


class RedisWindowLimiter:
    """WindowLimiter's contract across processes (several senders of one WeCom app), through Redis: each
    member's sends in a sorted set, checked and added by one Lua script; the app's overall pace through
    bot.scheduler.shared_limit.RedisRateLimiter (no per-chat gap)."""

    def __init__(self, redis: Any, windows: tuple[tuple[int, float], ...] = WECOM_WINDOWS, rate_per_s: float = 20.0,
                 avoid_marks: bool = True, wall: Callable[[], float] = time.time,
                 prefix: str = "bangfu:wecom:send") -> None:
        from bot.scheduler.shared_limit import RedisRateLimiter

        self._redis = redis
        self.windows = windows
        self._overall = RedisRateLimiter(redis, rate_per_s, 0.0, prefix=prefix + ":app")
        self._take = redis.register_script(_TAKE)
        self._finish = redis.register_script(_FINISH)
        self._prefix = prefix
        self._avoid_marks = avoid_marks
        self._wall = wall
        self._local: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await self._redis.aclose()

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[tuple[str, str, str]]:
        lock = self._local.setdefault(chat_id, asyncio.Lock())
        sends = f"{self._prefix}:m:{chat_id}"
        async with lock:
            while self._avoid_marks and (wait := mark_wait(self._wall())) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            me = uuid.uuid4().hex
            args: list[Any] = [me]
            for limit, window in self.windows:
                args += [limit, window]
            while True:
                granted, wait_s = await self._take(keys=[sends, sends + ":hold"], args=args)
                if int(granted):
                    break
                await asyncio.sleep(max(float(wait_s), 0.001))
            overall = await self._overall._overall()
            try:
                yield (chat_id, me, overall)
            finally:
                await self._finish(keys=[sends], args=[me])
        if not lock.locked() and len(self._local) > 10_000:
            self._local = {k: v for k, v in self._local.items() if v.locked()}

    async def refund(self, ticket: tuple[str, str, str]) -> None:
        chat_id, me, overall = ticket
        await self._redis.zrem(f"{self._prefix}:m:{chat_id}", me)
        await self._overall.refund(overall)

    async def hold_chat(self, chat_id: str, seconds: float) -> None:
        now_s, micro = await self._redis.time()
        until = now_s + micro / 1e6 + seconds
        await self._redis.set(f"{self._prefix}:m:{chat_id}:hold", str(until), px=max(int(seconds * 1000), 1))
