"""Retention of the core's own bookkeeping (run once a day by the scheduler's tick)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import DialogState, ProcessedUpdate

#: Telegram keeps an undelivered update for at most 24 hours, and a webhook retry comes within that;
#: a week of update ids covers any redelivery with room to spare.
PROCESSED_UPDATES_KEEP_DAYS = 7


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
