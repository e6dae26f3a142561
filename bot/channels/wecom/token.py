"""The WeCom access token: fetched once, cached until shortly before it expires, shared by every process
of the app through the database (table wecom_tokens) or Redis, and refreshed by one process at a time.

gettoken is rate-limited by WeCom and every call invalidates nobody's token, but twenty workers each
fetching their own would be twenty calls per two hours and a thundering herd after a restart. So: a
process reads the shared token; when it is missing or about to expire (or WeCom said it is expired or
invalid: errcode 42001/40014), the process takes a short refresh lease (an atomic UPDATE ... WHERE
lease free, or SET NX in Redis), fetches, and writes the new token; the others wait for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import WeComToken

MARGIN_S = 300.0  # a token this close to its expiry is refreshed
LEASE_S = 15.0  # how long one process may take to refresh before another may try
Fetch = Callable[[], Awaitable[tuple[str, float]]]  # -> (token, expires_in seconds)


def _now() -> datetime:
    # Token expiry is WeCom's wall-clock matter, not the business clock's (the tests' clock stands still).
    return datetime.fromtimestamp(time.time(), UTC)


class TokenStore(Protocol):
    async def read(self, key: str) -> tuple[str | None, datetime | None]: ...
    async def claim(self, key: str, stale: str | None) -> bool: ...
    async def write(self, key: str, token: str, expires_at: datetime) -> None: ...


class DbTokenStore:
    """The token in the wecom_tokens table (what every deployment has)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def read(self, key: str) -> tuple[str | None, datetime | None]:
        async with self.sessions() as s:
            row = (await s.execute(select(WeComToken.token, WeComToken.expires_at).where(WeComToken.key == key))).first()
        return (row[0], row[1]) if row else (None, None)

    async def claim(self, key: str, stale: str | None) -> bool:
        """Take the refresh lease if the token needs refreshing (missing, expiring, or equal to `stale`,
        the one WeCom refused) and nobody holds the lease. Exactly one concurrent caller wins."""
        now = _now()
        async with self.sessions() as s, s.begin():
            ins = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
            await s.execute(ins(WeComToken).values(key=key).on_conflict_do_nothing(index_elements=["key"]))
            needs = [WeComToken.token.is_(None), WeComToken.expires_at.is_(None),
                     WeComToken.expires_at < now + timedelta(seconds=MARGIN_S)]
            if stale is not None:
                needs.append(WeComToken.token == stale)
            result = await s.execute(
                update(WeComToken)
                .where(WeComToken.key == key, or_(*needs),
                       or_(WeComToken.refreshing_until.is_(None), WeComToken.refreshing_until < now))
                .values(refreshing_until=now + timedelta(seconds=LEASE_S))
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def write(self, key: str, token: str, expires_at: datetime) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(WeComToken).where(WeComToken.key == key)
                .values(token=token, expires_at=expires_at, refreshing_until=None)
                .execution_options(synchronize_session=False)
            )


class MemoryTokenStore:
    """The token in this process only (`bangfu wecom check`, tests)."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str | None, datetime | None, bool]] = {}

    async def read(self, key: str) -> tuple[str | None, datetime | None]:
        token, expires, _ = self._rows.get(key, (None, None, False))
        return token, expires

    async def claim(self, key: str, stale: str | None) -> bool:
        token, expires, leased = self._rows.get(key, (None, None, False))
        fresh = token is not None and expires is not None and expires > _now() + timedelta(seconds=MARGIN_S)
        if leased or (fresh and token != stale):
            return False
        self._rows[key] = (token, expires, True)
        return True

    async def write(self, key: str, token: str, expires_at: datetime) -> None:
        self._rows[key] = (token, expires_at, False)


# KEYS[1] = the token ("token\nexpires epoch"), KEYS[2] = the refresh lease; ARGV = fresh-until epoch,
# the stale token ("" for none), lease ms. Atomic, so no caller can take the lease between another's read
# and its write.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '\\n', 1, true)
  if sep then
    local tok = string.sub(v, 1, sep - 1)
    local exp = tonumber(string.sub(v, sep + 1))
    if exp and exp > tonumber(ARGV[1]) and tok ~= ARGV[2] then return 0 end
  end
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[3])) then return 1 end
return 0
"""


class RedisTokenStore:
    """The token in Redis (BANGFU_REDIS_URL), with a SET NX refresh lease taken by one Lua script."""

    def __init__(self, redis: Any, prefix: str = "bangfu:wecom:token:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._claim = redis.register_script(_CLAIM)

    async def read(self, key: str) -> tuple[str | None, datetime | None]:
        raw = await self._redis.get(self._prefix + key)
        if not raw:
            return None, None
        token, _, expires = raw.decode().partition("\n")
        return token, datetime.fromtimestamp(float(expires), UTC)

    async def claim(self, key: str, stale: str | None) -> bool:
        fresh_until = (_now() + timedelta(seconds=MARGIN_S)).timestamp()
        got = await self._claim(keys=[self._prefix + key, self._prefix + key + ":lease"],
                                args=[fresh_until, stale or "", int(LEASE_S * 1000)])
        return bool(int(got))

    async def write(self, key: str, token: str, expires_at: datetime) -> None:
        ttl = max(int((expires_at - _now()).total_seconds()), 1)
        async with self._redis.pipeline(transaction=True) as p:  # value and lease change together
            p.set(self._prefix + key, f"{token}\n{expires_at.timestamp()}", ex=ttl)
            p.delete(self._prefix + key + ":lease")
            await p.execute()


class TokenCache:
    """The app's access token for this process: from memory, else the shared store, else WeCom."""

    def __init__(self, store: TokenStore, key: str, fetch: Fetch, wait_s: float = LEASE_S + 5) -> None:
        self.store = store
        self.key = key
        self.fetch = fetch
        self.wait_s = wait_s
        self._token: str | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # gettoken calls made by this process (tests and the bench read it)

    def expires_in(self) -> float:
        """Seconds this process's token has left (0 without one)."""
        return max((self._expires - _now()).total_seconds(), 0.0) if self._expires else 0.0

    def _usable(self, token: str | None, expires: datetime | None, stale: str | None) -> bool:
        return (token is not None and token != stale and expires is not None
                and expires > _now() + timedelta(seconds=MARGIN_S))

    async def token(self, stale: str | None = None) -> str:
        """A valid token; `stale` is one WeCom just refused (42001/40014), never handed out again."""
        if self._usable(self._token, self._expires, stale):
            assert self._token is not None
            return self._token
        async with self._lock:  # one refresh per process; the store makes it one across processes
            if self._usable(self._token, self._expires, stale):
                assert self._token is not None
                return self._token
            deadline = time.monotonic() + self.wait_s
            delay = 0.02
            while True:
                token, expires = await self.store.read(self.key)
                if self._usable(token, expires, stale):
                    break
                if await self.store.claim(self.key, stale):
                    token, expires_in = await self.fetch()
                    self.fetches += 1
                    expires = _now() + timedelta(seconds=expires_in)
                    await self.store.write(self.key, token, expires)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no WeCom access token: another process holds the refresh and wrote none")
                await asyncio.sleep(delay)  # another process is refreshing
                delay = min(delay * 2, 0.5)
            self._token, self._expires = token, expires
            assert token is not None
            return token
