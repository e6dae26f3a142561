"""What a web action tells other people: the notices' replies (decided inside the request's transaction by
the same notices as the chat) are written to the outbox; the scheduler's sender delivers them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Ctx
from bot.core.types import Reply
from bot.scheduler.outbox import OutMessage, enqueue


async def relay(session: AsyncSession, ctx: Ctx) -> int:
    """Enqueue every Reply the action's notices produced; returns how many."""
    messages = [OutMessage(dedup_key=f"web:{uuid.uuid4().hex}", reply=a, rule="relay")
                for a in ctx.actions if isinstance(a, Reply)]
    await enqueue(session, messages, now=ctx.now)
    return len(messages)
