"""Delivery for the Telegram runners: exactly what the core decided, once.

- `ConfirmingPoller`: long polling that confirms a getUpdates offset only past updates whose handling
  has finished (the core committed them, their messages are in the outbox). A crash re-fetches what was
  not finished; the core's dedup (channel, bot id, update id) drops what was.
- `OutboxConfirmations`: after the runner sent an update's messages itself, their outbox rows are
  marked sent (batched: one UPDATE for every message confirmed in the last few milliseconds); a message
  the runner could not send is handed over to the outbox sender at once (honouring retry_after), and an
  unknown outcome is settled by the message's kind (bot/scheduler/README.md, "Unknown outcomes").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, update

from bot.runners.botapi_http import BotApiHttp
from bot.scheduler.outbox import UNKNOWN_PREFIX
from bot.store.enums import OutboxStatus
from bot.store.models import Outbox
from bot.store.outbox_sql import STILL_PENDING

log = logging.getLogger(__name__)

OUTBOX = cast(Table, Outbox.__table__)
_PENDING = OutboxStatus.PENDING.value


@dataclass
class DeliveryStats:
    """What happened to the messages a runner sent itself (the sender keeps its own)."""

    sent: int = 0
    handed_over: int = 0  # passing failure or 429: left to the sender, due after retry_after / backoff
    unknown: int = 0  # the request went out, the answer was lost
    failed: int = 0


class OutboxConfirmations:
    """Marks the runner's sent messages in the outbox, hands the others over to the sender."""

    FLUSH_EVERY = 0.02  # seconds; a crash in between means the sender sends those again (at-least-once)

    def __init__(self, core: Any) -> None:
        """`core`: the Core (`confirm_sent` / `flush_sent` / `write`, its clock)."""
        self.core = core
        self.clock = core.clock
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._set = (
            update(OUTBOX)
            .where(OUTBOX.c.dedup_key == bindparam("key"), STILL_PENDING)  # by key, never through the backlog
            .values(status=bindparam("status"), not_before=bindparam("at"), last_error=bindparam("error"))
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="outbox-confirmations")

    def sent(self, key: str) -> None:
        """The channel accepted this message: its row is marked sent with the next flush."""
        self.stats.sent += 1
        self.core.confirm_sent(key)
        self._wake.set()

    async def hand_over(self, key: str, delay_s: float, error: str) -> None:
        """Leave the message to the outbox sender, due in `delay_s` (a 429's retry_after, or backoff)."""
        self.stats.handed_over += 1
        await self._write(key, _PENDING, delay_s, error)

    async def unknown(self, key: str, error: str) -> None:
        """Sent, answer lost, not to be resent (at-most-once kinds): the row is closed as "unknown"."""
        self.stats.unknown += 1
        await self._write(key, OutboxStatus.UNKNOWN.value, 0.0, f"{UNKNOWN_PREFIX}{error}")

    async def failed(self, key: str, error: str) -> None:
        self.stats.failed += 1
        await self._write(key, OutboxStatus.FAILED.value, 0.0, error)

    async def _write(self, key: str, status: str, delay_s: float, error: str) -> None:
        at = self.clock.now() + timedelta(seconds=delay_s)
        await self.core.write(self._set, {"key": key, "status": status, "at": at, "error": error[:2000]})

    async def flush(self) -> None:
        """Mark what was sent, if no update's commit has done it meanwhile."""
        try:
            await self.core.flush_sent()
        except Exception:
            # Not marked: the sender sends them again after the hand-over time (a duplicate, not a loss).
            log.exception("could not mark sent messages in the outbox")

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.FLUSH_EVERY)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


Fetch = Callable[[int | None, float], Awaitable[list[tuple[int, Any]]]]


# The shape of a getUpdates answer that lets the updates handed out before be left undecoded
# (`skip_handed_out`): {"ok":true,"result":[{"update_id":N,...},...]}, each update's id its first key, as
# Telegram's Bot API server writes it (telegram-bot-api's JsonUpdate). Any other shape is decoded whole.
_OK_RESULT = re.compile(rb'\A\s*\{\s*"ok"\s*:\s*true\s*,\s*"result"\s*:\s*\[')
_ID_VALUE = re.compile(rb'\s*:\s*(\d+)')
_KEY = b'"update_id"'  # a JSON string cannot hold it: a quote inside a string is escaped
_SPACE = b" \t\r\n"


def skip_handed_out(raw: bytes, below: int) -> tuple[int | None, list[Any]] | None:
    """A getUpdates answer's updates numbered from `below` on, decoded, and the id of the last one below it
    (handed out before, none of them decoded; None if there is none); None when the answer is not in the
    expected shape (the caller then decodes it whole).

    The updates of an answer come in increasing order of their ids (Telegram numbers them in sequence; the
    poller's offset relies on it too), so only the new ones at the end are looked at: each found from the
    end by its "update_id" key, which must open its object, and the decoded tail must hold exactly them."""
    head = _OK_RESULT.match(raw)
    if head is None:
        return None
    start, end = head.end(), len(raw) - 1
    while end > start and raw[end] in _SPACE:
        end -= 1
    if raw[end] != 0x7D:  # "}"
        return None
    end -= 1
    while end > start and raw[end] in _SPACE:
        end -= 1
    if raw[end] != 0x5D:  # "]": the result array's end
        return None
    fresh: list[int] = []  # ids from the end
    last_old: int | None = None
    cut = pos = end
    while (k := raw.rfind(_KEY, start, pos)) >= 0:
        brace = k - 1
        while brace > start and raw[brace] in _SPACE:
            brace -= 1
        value = _ID_VALUE.match(raw, k + len(_KEY))
        if raw[brace] != 0x7B or value is None:  # "{": not an update's leading key
            return None
        update_id = int(value.group(1))
        if update_id < below:
            last_old = update_id
            break
        fresh.append(update_id)
        cut = pos = brace
    if not fresh:
        return last_old, []
    try:
        updates = orjson.loads(b"[" + raw[cut:end + 1])
    except ValueError:
        return None
    if [u.get("update_id") if isinstance(u, dict) else None for u in updates] != fresh[::-1]:
        return None
    return last_old, updates


class RawUpdates:
    """getUpdates over our own HTTP client (`BotApiHttp`), the updates left as the Bot API's JSON dicts: a
    `Fetch` for `ConfirmingPoller`.

    While an update is in progress the offset cannot pass it, so every getUpdates hands out again all
    updates from it on, mostly ones already started or finished here (under load, dozens per call). A
    library parses each into its model objects (aiogram: pydantic) only for the poller to skip them, and
    the runner turned the new ones back into dicts for the translation (`incoming_from_update`); measured
    with bench/e2e_bench.py that was a good part of the bot's CPU. Here the updates this object handed out
    before are not decoded again (`skip_handed_out`; decoding them was still ~4% of the bot's CPU under load
    on PostgreSQL, py-spy): they are left out, and the last of them comes back as (update_id, None), so the
    poller knows the answer held updates still in progress.
    """

    def __init__(self, url: str, allowed_updates: list[str]) -> None:
        """`url`: the getUpdates method URL (it holds the token: never logged)."""
        base, _, self._method = url.rpartition("/")
        self._http = BotApiHttp(base + "/", limit=1)
        self._allowed = allowed_updates
        self._handed_out = 0  # one past the highest update id returned decoded

    async def __call__(self, offset: int | None, wait: float) -> list[tuple[int, Any]]:
        payload: dict[str, Any] = {"timeout": int(wait), "allowed_updates": self._allowed}
        if offset:
            payload["offset"] = offset
        status, raw = await self._http.post(self._method, orjson.dumps(payload), time_limit=int(wait) + 10)
        split = skip_handed_out(raw, self._handed_out) if status == 200 and self._handed_out else None
        if split is not None:
            last_old, fresh = split
            out: list[tuple[int, Any]] = [] if last_old is None else [(last_old, None)]
        else:
            try:
                # orjson: the stdlib's decoder took ~1 ms per call of the bot's CPU (bench --profile).
                body = orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError is one
                body = None
            if not isinstance(body, dict) or not body.get("ok"):
                desc = body.get("description") if isinstance(body, dict) else "not the Bot API's JSON"
                raise RuntimeError(f"getUpdates: HTTP {status}: {desc}")
            fresh, out = body.get("result") or [], []
        for u in fresh:
            update_id = int(u["update_id"])
            out.append((update_id, u))
            self._handed_out = max(self._handed_out, update_id + 1)
        return out

    async def close(self) -> None:
        await self._http.close()


class ConfirmingPoller:
    """Long polling whose offset moves only past finished updates.

    `fetch(offset, timeout)` calls getUpdates and returns (update_id, update) pairs; `process(update)`
    runs one update to its end (translation, the core's commit, the sends). Updates are processed
    concurrently (the runner keeps each user's in order); the offset sent with the next getUpdates is
    the lowest update still in progress, so Telegram keeps (and hands out again after a crash) every
    update not finished. Updates handed out again while still in progress here are not started twice.
    """

    STALE_WAIT = 0.05  # seconds; see run()

    def __init__(self, fetch: Fetch, process: Callable[[Any], Awaitable[Any]], timeout: float = 30) -> None:
        self.fetch = fetch
        self.process = process
        self.timeout = timeout
        self._running: dict[int, asyncio.Task[Any]] = {}
        self._next = 0  # one past the highest update id started
        self._stop = asyncio.Event()
        self.started = asyncio.Event()

    @property
    def offset(self) -> int | None:
        """What getUpdates may confirm: everything below the lowest update still in progress."""
        if self._running:
            return min(self._running)
        return self._next or None

    async def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                fetch = asyncio.ensure_future(self.fetch(self.offset, self.timeout))
                stop = asyncio.ensure_future(self._stop.wait())
                self.started.set()
                done, _ = await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
                if fetch not in done:
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await fetch
                    break
                stop.cancel()
                batch = fetch.result()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("getUpdates failed (%r); again in %.1fs", e, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            fresh = 0
            for update_id, upd in batch:
                if update_id < self._next or update_id in self._running:
                    continue  # finished before (confirmed with this call) or still in progress
                fresh += 1
                self._next = max(self._next, update_id + 1)
                task = asyncio.create_task(self._one(update_id, upd))
                self._running[update_id] = task
            if batch and not fresh and self._running:
                # Only updates still in progress came back (getUpdates answers at once while any is): wait
                # for one to finish before asking again, but not longer than STALE_WAIT — one slow update
                # (a long report, a download) must not keep everybody else's new messages unfetched.
                await asyncio.wait(set(self._running.values()), timeout=self.STALE_WAIT,
                                   return_when=asyncio.FIRST_COMPLETED)

    async def _one(self, update_id: int, upd: Any) -> None:
        try:
            await self.process(upd)
        except Exception:
            log.exception("update %s failed", update_id)
        finally:
            self._running.pop(update_id, None)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching, let updates in progress finish, confirm them with a last short getUpdates."""
        self._stop.set()
        if self._running:
            await asyncio.wait(set(self._running.values()), timeout=grace)
        if self._next:
            with contextlib.suppress(Exception):
                await self.fetch(self.offset, 0)
