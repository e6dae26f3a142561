"""The outbox sender: claims due rows, sends them through a Transport within Telegram's limits.

- Rate: at most 30 messages in any second overall and 1 message/s per chat (both configurable),
  paced rather than bursty. The overall budget counts messages the channel accepted: a request
  answered 429 is taken back out of it, and that chat is held for `retry_after` instead.
- RetryAfter (429): honoured per chat; short waits are retried in place, long ones put back in the
  outbox with not_before = now + retry_after.
- TransientError (5xx, network): retried with exponential backoff, first in place, then through the
  outbox; after `max_attempts` claims the row is marked failed.
- Unreachable (403, chat gone): the account is marked unreachable, the row failed, the team leader
  told once (an outbox row with its own dedup key); rows to unreachable accounts are never tried.
- A row is marked sent only after the channel accepted it. A crash in between means the row is
  claimed again when its lease ends (at-least-once; the window is one HTTP round trip).
- Quiet hours hold reminders, never a message an update produced (rules "reply", "notify", "relay":
  somebody is waiting for it, or acted just now).
- An unknown outcome (the request went out, the answer was lost) is settled by the message's kind: a
  user's own reply ("reply") is sent once more, anything else is closed as "unknown" and never resent
  (README.md, "Unknown outcomes"); `SenderStats.unknown_*` count both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.core.transports import Transports
from bot.core.types import (
    OutcomeUnknown,
    Reply,
    RetryAfter,
    SendError,
    TransientError,
    Transport,
    Unreachable,
)
from bot.i18n import Catalogs
from bot.scheduler import outbox
from bot.scheduler.outbox import Claimed, OutMessage
from bot.scheduler.rules import Rules
from bot.store.models import Account, Person, Team

log = logging.getLogger(__name__)

# Messages an update produced: sent at once whatever the hour (reminders wait for the morning).
IMMEDIATE_RULES = ("reply", "notify", "relay")
# On an unknown outcome, these kinds are sent once more (at-least-once); every other kind is not (at-most-once).
RESEND_ONCE_RULES = frozenset({"reply"})


@dataclass(frozen=True)
class SenderConfig:
    rate_per_s: float = 30.0
    per_chat_interval_s: float = 1.0
    batch: int = 100  # rows claimed at most at once (in flight)
    lease_s: float = 300.0  # a claimed row is taken again after this if its sender vanished
    poll_interval_s: float = 1.0
    inline_retries: int = 3  # TransientError retries in place before going back to the outbox
    backoff_base_s: float = 0.5
    backoff_max_s: float = 600.0
    max_attempts: int = 8  # claims of one row before it is given up as failed
    max_inline_retry_after_s: float = 30.0
    max_inline_retry_afters: int = 5


class RateLimiter:
    """At most `rate` messages in any one second overall, paced, and one per interval per chat.

    The overall budget is a sliding one-second log of sends, so a request the channel refused (429)
    can really be taken back out of it (`refund`); requests are paced no closer than 0.8/rate apart,
    which leaves room for those retries while keeping the flow smooth rather than bursty.
    """

    PACE = 0.8  # minimum request spacing, as a fraction of 1/rate

    def __init__(self, rate_per_s: float, per_chat_interval_s: float) -> None:
        self._rate = max(1, int(rate_per_s)) if rate_per_s > 0 else 0
        self._pace = self.PACE / rate_per_s if rate_per_s > 0 else 0.0
        self._chat_gap = per_chat_interval_s
        self._log: deque[float] = deque()
        self._last = -1e9
        self._global = asyncio.Lock()
        self._room = asyncio.Event()
        self._chat_next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _overall(self) -> float:
        async with self._global:  # one waiter at a time keeps the order fair and the log consistent
            slept = False
            while True:
                now = self._now()
                while self._log and now - self._log[0] >= 1.0:
                    self._log.popleft()
                due = self._last + self._pace
                if self._rate and len(self._log) >= self._rate:
                    due = max(due, self._log[0] + 1.0)
                if due <= now:
                    break
                # Sleep until due, or until a refund (a 429) makes room in the window earlier.
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), due - now)
                slept = True
            # After a wait, record when the send was due rather than when the sleep ended (a busy loop
            # oversleeps, and that drift would add up to a lower rate), forgiving at most a few ms so
            # catching up never bunches messages together.
            at = max(due, now - self._pace / 4) if slept else now
            self._last = at
            if self._rate:
                self._log.append(at)
            return at

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[float]:
        """Hold this chat's turn while one message is sent: wait until the chat is ready, then for the
        overall budget (taken only once the chat is ready, so a chat that must wait never holds back
        everyone else). Yields a ticket for `refund`. The chat's next turn counts from when the send
        finished, so two messages to one chat are never in flight together, however slow the network."""
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        async with lock:
            while True:
                now = self._now()
                ready = self._chat_next.get(chat_id, 0.0)
                if ready <= now:
                    break
                await asyncio.sleep(ready - now)
            ticket = await self._overall()
            try:
                yield ticket
            finally:
                self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), self._now() + self._chat_gap)
        if len(self._chat_next) > 10_000:
            self._prune()

    async def refund(self, ticket: float) -> None:
        """Take a send back out of the overall budget (the channel refused it; nothing was delivered)."""
        with contextlib.suppress(ValueError):
            self._log.remove(ticket)
            self._room.set()

    async def hold_chat(self, chat_id: str, seconds: float) -> None:
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), self._now() + seconds)

    def _prune(self) -> None:
        now = self._now()
        self._chat_next = {k: v for k, v in self._chat_next.items() if v > now}
        self._locks = {k: v for k, v in self._locks.items() if v.locked()}


@dataclass
class SenderStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0  # 429s and transient errors seen
    rescheduled: int = 0
    unreachable: int = 0
    unknown_closed: int = 0  # outcome unknown, not resent (alerts, reminders, a reply's second try)
    unknown_resent: int = 0  # a user's reply whose first try's outcome was unknown, sent once more


class Sender:
    """Drains the outbox, each message through its channel's transport (a `Transports` registry, or one
    Transport for a single channel). Several senders (processes) may run at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: Transport | Transports,
        clock: Clock,
        rules: Rules,
        catalogs: Catalogs,
        config: SenderConfig | None = None,
        limiter: Any = None,
        limiters: dict[str, Any] | None = None,
    ) -> None:
        """`limiter`: a RateLimiter (this process alone, the default) or a shared one such as
        bot.scheduler.shared_limit.RedisRateLimiter when several senders run at once. `limiters`: a
        channel's own limits where they differ (WeCom: bot.scheduler.member_limits.WindowLimiter, 30 a
        minute and 1,000 an hour per member); other channels use `limiter`."""
        self.sessions = sessions
        self.transports = Transports.of(transport)
        self.clock = clock
        self.rules = rules
        self.catalogs = catalogs
        self.cfg = config or SenderConfig()
        self.limiter = limiter or RateLimiter(self.cfg.rate_per_s, self.cfg.per_chat_interval_s)
        self.limiters: dict[str, Any] = dict(limiters or {})
        self.stats = SenderStats()
        # Chats that just answered "unreachable": rows to them already in flight are not tried. Kept a
        # minute only, so a user who unblocks the bot (and is marked reachable again) gets messages.
        self._dead: dict[str, float] = {}

    def _quiet_now(self) -> bool:
        local = self.clock.now().astimezone(self.rules.tz)
        return self.rules.quiet_hours.contains(local.time().replace(tzinfo=None))

    async def _claim(self, limit: int, only: tuple[str, ...] | None = None) -> list[Claimed]:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            await outbox.fail_unreachable(s)
        async with self.sessions() as s, s.begin():
            return await outbox.claim(s, now=now, limit=limit, lease=timedelta(seconds=self.cfg.lease_s),
                                      channels=[t.channel for t in self.transports], only_rules=only)

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> SenderStats:
        """Send until `stop` is set (or, with until_idle, until nothing is due and nothing in flight)."""
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if len(inflight) <= self.cfg.batch // 2:
                    try:
                        only = IMMEDIATE_RULES if self._quiet_now() else None
                        rows = await self._claim(self.cfg.batch - len(inflight), only)
                    except Exception:
                        log.exception("outbox claim failed; retrying")
                        rows = []
                    for row in rows:
                        inflight.add(asyncio.create_task(self._deliver_guarded(row)))
                if not inflight:
                    if until_idle:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.cfg.poll_interval_s)
                    continue
                _done, inflight = await asyncio.wait(inflight, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if inflight:
                # Let messages already on the wire finish and be marked; the rest go back at lease end.
                await asyncio.wait(inflight, timeout=5)
                for task in inflight:
                    task.cancel()
        return self.stats

    async def _deliver_guarded(self, row: Claimed) -> None:
        try:
            await self._deliver(row)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # A bug or a database hiccup must not kill the loop; the lease brings the row back, and a
            # row that keeps failing this way is given up after max_attempts claims.
            log.exception("delivering outbox row %s failed unexpectedly", row.id)
            if row.attempts >= self.cfg.max_attempts:
                with contextlib.suppress(Exception):
                    await self._write(outbox.mark_failed, row.id, error=f"unexpected: {e!r}")
                    self.stats.failed += 1

    def _backoff(self, attempt: int) -> float:
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * (2**attempt))
        return base * (0.75 + random.random() / 2)  # jitter so many failures do not retry in step

    async def _deliver(self, row: Claimed) -> None:
        try:
            reply = outbox.reply_from_dict(row.payload)
        except (KeyError, TypeError, ValueError) as e:
            await self._write(outbox.mark_failed, row.id, error=f"bad payload: {e}")
            self.stats.failed += 1
            return
        transient = 0
        waits = 0
        limiter = self.limiters.get(reply.channel, self.limiter)
        while True:
            err: SendError | None = None
            dead = False
            async with limiter.turn(reply.chat_id) as ticket:
                if asyncio.get_running_loop().time() - self._dead.get(reply.chat_id, -1e9) < 60:
                    dead = True
                else:
                    try:
                        await self.transports.for_channel(reply.channel).send(reply)
                    except SendError as e:
                        err = e
                    if isinstance(err, RetryAfter):
                        await limiter.refund(ticket)
                        await limiter.hold_chat(reply.chat_id, err.seconds)
                    elif isinstance(err, Unreachable):
                        self._dead[reply.chat_id] = asyncio.get_running_loop().time()
            # Database writes and backoff sleeps happen after the chat's turn is given back.
            if dead:
                await self._write(outbox.mark_failed, row.id, error="unreachable")
                self.stats.failed += 1
                return
            if err is None:
                await self._write(outbox.mark_sent, row.id, now=self.clock.now(),
                                  payload=outbox.strip_media(row.payload))
                self.stats.sent += 1
                if row.last_error.startswith(outbox.UNKNOWN_PREFIX):
                    self.stats.unknown_resent += 1
                return
            if isinstance(err, OutcomeUnknown):
                if row.rule in RESEND_ONCE_RULES and not row.last_error.startswith(outbox.UNKNOWN_PREFIX):
                    self.stats.unknown_resent += 1  # the user's own reply: once more, through the outbox
                    await self._write(outbox.reschedule, row.id, at=self.clock.now(),
                                      error=f"{outbox.UNKNOWN_PREFIX}{err}")
                    return
                self.stats.unknown_closed += 1
                await self._write(outbox.mark_unknown, row.id, error=str(err))
                return
            if isinstance(err, RetryAfter):
                self.stats.retried += 1
                waits += 1
                if err.seconds > self.cfg.max_inline_retry_after_s or waits > self.cfg.max_inline_retry_afters:
                    await self._reschedule(row, err.seconds, str(err))
                    return
                continue
            if isinstance(err, Unreachable):
                await self._unreachable(row, str(err))
                return
            if isinstance(err, TransientError):
                self.stats.retried += 1
                if transient < self.cfg.inline_retries:
                    await asyncio.sleep(self._backoff(transient))
                    transient += 1
                    continue
                if row.attempts >= self.cfg.max_attempts:
                    await self._write(outbox.mark_failed, row.id, error=f"gave up: {err}")
                    self.stats.failed += 1
                else:
                    await self._reschedule(row, self._backoff(row.attempts + self.cfg.inline_retries), str(err))
                return
            await self._write(outbox.mark_failed, row.id, error=str(err))  # refused for good (e.g. 400)
            self.stats.failed += 1
            return

    async def _write(self, fn: object, row_id: int, **kw: object) -> None:
        async with self.sessions() as s, s.begin():
            await fn(s, row_id, **kw)  # type: ignore[operator]

    async def _reschedule(self, row: Claimed, delay_s: float, error: str) -> None:
        at = self.rules.next_send_time(self.clock.now() + timedelta(seconds=delay_s))
        await self._write(outbox.reschedule, row.id, at=at, error=error)
        self.stats.rescheduled += 1

    async def _unreachable(self, row: Claimed, error: str) -> None:
        """Mark the account unreachable and the row failed; tell the person's team leader once."""
        self.stats.unreachable += 1
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            await outbox.mark_failed(s, row.id, error=f"unreachable: {error}")
            if row.account_id is None:
                return
            await s.execute(
                update(Account).where(Account.id == row.account_id).values(unreachable=True)
                .execution_options(synchronize_session=False)
            )
            who = (await s.execute(
                select(Person.id, Person.name, Team.leader_id)
                .select_from(Account)
                .join(Person, Person.id == Account.person_id)
                .outerjoin(Team, Team.id == Person.team_id)
                .where(Account.id == row.account_id)
            )).first()
            if who is None or who[2] is None or who[2] == who[0]:
                return
            person_name, leader_id = who[1], who[2]
            leaders = (await s.execute(
                select(Account.id, Account.chat_id, Account.channel, Account.language, Person.language)
                .join(Person, Person.id == Account.person_id)
                .where(Account.person_id == leader_id, Account.unreachable.is_(False))
            )).all()
            msgs = []
            for aid, chat, channel, alang, plang in leaders:
                t = self.catalogs.get(alang or plang)
                msgs.append(OutMessage(
                    dedup_key=f"unreachable:a{row.account_id}:a{aid}",
                    reply=Reply(chat_id=chat, text=t("sched.unreachable", name=person_name), channel=channel),
                    rule="unreachable", account_id=aid,
                ))
            await outbox.enqueue(s, msgs, now=now, quiet=self.rules)

