"""Telegram's send limits shared by every sender process, kept in Redis.

Each `Sender` paces itself (`RateLimiter`), but two of them — two `bangfu scheduler` processes, or
several webhook workers each running the scheduler — would together send twice the overall rate and
could write to one chat twice in a second. With `BANGFU_REDIS_URL` set they take turns through Redis:

- the overall budget is a sliding one-second log in a sorted set (the same rule as the local limiter:
  at most `rate` sends in any second, spaced at least PACE/rate apart), decided by one Lua script so
  no two processes can both take the last place; times come from the Redis server's clock, which
  every process shares;
- a chat's turn is a key with a time to live: taken with SET NX while a message to that chat is on
  the wire, then left to expire `per_chat_interval` after the send finished (or after a 429's
  retry_after), so the next message to that chat, from any process, waits for it.

Redis earns its place here: it is the one thing the processes share that answers in well under a
millisecond and expires keys by itself if a process dies holding a turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from bot.scheduler.sender import RateLimiter

# KEYS[1] = the log (sorted set), KEYS[2] = last send time; ARGV = rate, pace (s), member.
# Returns {granted (1/0), seconds to wait, the send's time}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate = tonumber(ARGV[1])
local pace = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1.0)
local due = tonumber(redis.call('GET', KEYS[2]) or '-1e9') + pace
if rate > 0 and redis.call('ZCARD', KEYS[1]) >= rate then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  due = math.max(due, tonumber(first[2]) + 1.0)
end
if due > now then
  return {0, tostring(due - now), tostring(now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('SET', KEYS[2], tostring(now), 'PX', 5000)
redis.call('PEXPIRE', KEYS[1], 5000)
return {1, '0', tostring(now)}
"""


class RedisRateLimiter:
    """The RateLimiter's contract (`turn`, `refund`, `hold_chat`), across processes via Redis."""

    def __init__(self, redis: Any, rate_per_s: float, per_chat_interval_s: float, prefix: str = "bangfu:send") -> None:
        self._redis = redis
        self._rate = max(1, int(rate_per_s)) if rate_per_s > 0 else 0
        self._pace = RateLimiter.PACE / rate_per_s if rate_per_s > 0 else 0.0
        self._chat_gap = per_chat_interval_s
        self._log_key = f"{prefix}:log"
        self._last_key = f"{prefix}:last"
        self._chat_prefix = f"{prefix}:chat:"
        self._take = redis.register_script(_TAKE)
        self._local: dict[str, asyncio.Lock] = {}  # one waiter per chat inside this process

    @classmethod
    def from_url(cls, url: str, rate_per_s: float, per_chat_interval_s: float, **kw: Any) -> RedisRateLimiter:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url), rate_per_s, per_chat_interval_s, **kw)

    async def close(self) -> None:
        await self._redis.aclose()

    async def _overall(self) -> str:
        member = uuid.uuid4().hex
        while True:
            granted, wait, _at = await self._take(keys=[self._log_key, self._last_key],
                                                  args=[self._rate, self._pace, member])
            if int(granted):
                return member
            await asyncio.sleep(max(float(wait), 0.001))

    async def _chat_turn(self, chat_id: str) -> str:
        """Take the chat's key (it outlives a crashed holder by at most a minute)."""
        key, token = self._chat_prefix + chat_id, uuid.uuid4().hex
        while True:
            if await self._redis.set(key, token, nx=True, px=60_000):
                return token
            # A gap or a hold ends when the key expires; a turn in progress (up to the 60 s lease) ends when
            # its send does, so look again soon rather than sleeping out the lease.
            ttl = await self._redis.pttl(key)
            await asyncio.sleep(min(max(ttl, 5), 50) / 1000 if ttl > 0 else 0.005)

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[str]:
        """Wait for the chat's turn, then for a place in the overall budget; yields a ticket for refund.
        The chat's next turn (in any process) comes `per_chat_interval` after this send finished."""
        lock = self._local.setdefault(chat_id, asyncio.Lock())
        async with lock:
            key = self._chat_prefix + chat_id
            token = await self._chat_turn(chat_id)
            ticket = await self._overall()
            try:
                yield ticket
            finally:
                # The turn becomes the gap before the next message to this chat; a hold_chat made during
                # the send (Telegram's retry_after) replaced the token and is kept as it is.
                if await self._redis.get(key) == token.encode():
                    await self._redis.set(key, "gap", px=max(int(self._chat_gap * 1000), 1))
        if not lock.locked() and len(self._local) > 10_000:
            self._local = {k: v for k, v in self._local.items() if v.locked()}

    async def refund(self, ticket: str) -> None:
        """Take a send the channel refused back out of the overall budget."""
        await self._redis.zrem(self._log_key, ticket)

    async def hold_chat(self, chat_id: str, seconds: float) -> None:
        """Nobody writes to this chat for `seconds` (Telegram said retry_after)."""
        await self._redis.set(self._chat_prefix + chat_id, "hold", px=max(int(seconds * 1000), 1))
