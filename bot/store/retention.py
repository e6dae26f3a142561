"""Retention of the core's own bookkeeping (run once a day by the scheduler's tick)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import DialogState, ProcessedUpdate, RateLimit, RebindRequest

#: Telegram keeps an undelivered update for at most 24 hours, and a webhook retry comes within that;
#: a week of update ids covers any redelivery with room to spare.
PROCESSED_UPDATES_KEEP_DAYS = 7
#: Message counters are per minute (a row older than that is only clutter); an invite-code row keeps its
#: lock-out history (each lock-out longer than the one before) for a week after the last wrong code.
RATE_LIMITS_KEEP_DAYS = 7
#: Rebinding requests: decided ones (the audit log keeps the decision), and ones no leader decided, which
#: lapse (the shared phone can ask again).
REBIND_REQUESTS_KEEP_DAYS = 30


async def prune_processed_updates(
    session: AsyncSession, *, now: datetime, keep_days: int = PROCESSED_UPDATES_KEEP_DAYS
) -> int:
    """Forget update ids older than keep_days (one row per update would otherwise grow without end)."""
    res = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < now - timedelta(days=keep_days)))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


async def prune_stale_dialogs(session: AsyncSession, *, now: datetime, keep_days: int) -> int:
    """Delete dialogs (parked drafts, and ones left half-way) untouched for keep_days: past that the bot
    no longer offers them back (BANGFU_DRAFT_KEEP_DAYS), so the rows are only clutter."""
    res = await session.execute(delete(DialogState).where(DialogState.updated_at < now - timedelta(days=keep_days)))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


async def prune_rate_limits(session: AsyncSession, *, now: datetime, keep_days: int = RATE_LIMITS_KEEP_DAYS) -> int:
    """Forget counters untouched for keep_days (window_start: the counted minute, or the last wrong invite
    code); never a lock-out still running."""
    cut = now - timedelta(days=keep_days)
    res = await session.execute(
        delete(RateLimit).where(
            RateLimit.window_start < cut, or_(RateLimit.locked_until.is_(None), RateLimit.locked_until < now)
        )
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


async def prune_rebind_requests(
    session: AsyncSession, *, now: datetime, keep_days: int = REBIND_REQUESTS_KEEP_DAYS
) -> int:
    """Delete rebinding requests decided more than keep_days ago, and undecided ones older than that."""
    cut = now - timedelta(days=keep_days)
    res = await session.execute(
        delete(RebindRequest).where(
            or_(
                RebindRequest.decided_at < cut,
                and_(RebindRequest.decided_at.is_(None), RebindRequest.created_at < cut),
            )
        )
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
