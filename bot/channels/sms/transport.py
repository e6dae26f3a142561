"""The Transport for channel "sms": reminders to people who chose SMS (Person.preferred_channel "sms",
an Account of channel "sms" whose chat_id is their phone; `bangfu sms prefer`).

An SMS is never free text: the reminder goes out as the approved `cadre_reminder` template, its `what`
parameter the reminder's first line (our own catalog text, never a user's words; cut to fit the
template variable, links refused by the template check) and `name` the person's name. Our per-number
limits answer RetryAfter (the outbox sender puts the row back until then); a 5xx is TransientError.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.sms import CHANNEL
from bot.channels.sms.sender import Failed, Limited, SmsSender
from bot.channels.sms.templates import PARAM_MAX, TemplateError
from bot.core.types import (
    AnswerCallback,
    Outgoing,
    Reply,
    RetryAfter,
    SendError,
    SetCommands,
    TransientError,
    Unreachable,
)
from bot.runners.render import plain_reply_text
from bot.store.models import Account, Person


class NoHoldLimiter:
    """The outbox sender's limiter contract for SMS: no wait and no hold in this process (the database
    counts every number's sends across processes; a refused send comes back as RetryAfter and the row
    goes back to the outbox until then)."""

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[None]:
        yield None

    async def refund(self, ticket: object) -> None:
        return None

    async def hold_chat(self, chat_id: str, seconds: float) -> None:
        return None


def first_line(text: str, limit: int = PARAM_MAX) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


class SmsTransport:
    channel = CHANNEL

    def __init__(self, sms: SmsSender, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sms = sms
        self.sessions = sessions

    async def send(self, action: Outgoing) -> str | None:
        if isinstance(action, (AnswerCallback, SetCommands)):
            return None
        if not isinstance(action, Reply):
            raise SendError(f"unsupported action {action!r}")
        what = first_line(plain_reply_text(action))
        if not what:
            return None  # a photo or a document alone has no SMS form
        async with self.sessions() as s:
            name = (await s.execute(
                select(Person.name).join(Account, Account.person_id == Person.id)
                .where(Account.channel == CHANNEL, Account.chat_id == action.chat_id)
            )).scalar_one_or_none()
        try:
            out = await self.sms.send(action.chat_id, "cadre_reminder", name=(name or "您")[:10], what=what)
        except TemplateError as e:
            raise SendError(f"SMS template refused the reminder: {e}") from None
        if isinstance(out, Limited):
            raise RetryAfter(out.wait_s)
        if isinstance(out, Failed):
            if out.kind == "transient":
                raise TransientError(out.error)
            if out.kind == "limited":
                raise RetryAfter(60.0)
            if out.kind == "gone":
                raise Unreachable(out.error)
            raise SendError(out.error)
        return out.provider_id

    async def download(self, file_id: str) -> bytes:
        raise SendError("SMS carries no files")
