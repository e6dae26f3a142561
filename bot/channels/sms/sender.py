"""Send one templated SMS within the per-number limits, counted in the database (table sms_sends).

The limits (default: 1 a minute, 5 an hour, 10 a day per number: what Aliyun and Tencent apply to a
number by default; a send over them is refused by the provider and still costs the county's quota of
complaints) are checked and the send reserved in ONE transaction per number: PostgreSQL takes a
transaction-scoped advisory lock on the number, SQLite's BEGIN IMMEDIATE serialises writers. So any
number of processes never hand the provider more than the limits allow; a send refused by our check
returns `Limited(wait_s)` and the caller decides (hold it, or drop a reminder that would be stale).
A reserved send counts even when the provider then fails: conservative, never over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.sms.templates import Template, TemplateError, load_templates, segments
from bot.clock import Clock
from bot.core.types import RetryAfter, SendError, TransientError, Unreachable
from bot.services.onboarding import normalize_phone
from bot.settings import Settings
from bot.store.models import SmsSend

DEFAULT_LIMITS: tuple[tuple[int, float], ...] = ((1, 60.0), (5, 3600.0), (10, 86400.0))


class Provider(Protocol):
    name: str
    sign_name: str

    async def send(self, phone: str, template_code: str, values: dict[str, str]) -> str: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Sent:
    id: int
    provider_id: str
    segments: int


@dataclass(frozen=True, slots=True)
class Limited:
    wait_s: float


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    kind: str = "error"  # "transient" (5xx, network: try later), "limited" (the provider's), "gone", "error"


Outcome = Sent | Limited | Failed


class SmsSender:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], provider: Provider, clock: Clock,
                 templates: dict[str, Template] | None = None,
                 limits: tuple[tuple[int, float], ...] = DEFAULT_LIMITS) -> None:
        self.sessions = sessions
        self.provider = provider
        self.clock = clock
        self.templates = templates if templates is not None else load_templates()
        self.limits = limits
        self.refused = 0  # sends our limits refused

    async def _reserve(self, s: AsyncSession, phone: str, tpl: Template, values: dict[str, str],
                       segs: int, now: datetime) -> int | Limited:
        if s.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha1(phone.encode()).digest()[:8], "big", signed=True)
            await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        horizon = max(w for _, w in self.limits)
        times = list((await s.execute(
            select(SmsSend.at).where(SmsSend.phone == phone, SmsSend.at > now - timedelta(seconds=horizon))
            .order_by(SmsSend.at)
        )).scalars())
        wait = 0.0
        for limit, window in self.limits:
            recent = [t for t in times if t > now - timedelta(seconds=window)]
            if len(recent) >= limit:
                wait = max(wait, (recent[-limit] + timedelta(seconds=window) - now).total_seconds())
        if wait > 0:
            return Limited(wait)
        row = SmsSend(phone=phone, template=tpl.key, params=values, segments=segs, at=now, status="sending")
        s.add(row)
        await s.flush()
        return row.id

    async def send(self, phone_raw: str, template: str, **values: str) -> Outcome:
        """Send template `template` with `values` to a phone number, within the limits."""
        phone = normalize_phone(phone_raw)
        if len(phone) != 11 or not phone.startswith("1"):
            return Failed(f"not a mainland mobile number: {phone_raw!r}")
        tpl = self.templates.get(template)
        if tpl is None:
            raise TemplateError(f"no SMS template {template!r} (see bot/channels/sms/templates.toml)")
        segs = segments(tpl.render(values), self.provider.sign_name)
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            reserved = await self._reserve(s, phone, tpl, values, segs, now)
        if isinstance(reserved, Limited):
            self.refused += 1
            return reserved
        try:
            biz_id = await self.provider.send(phone, tpl.code, values)
        except SendError as e:
            await self._mark(reserved, status="failed", error=str(e)[:500])
            kind = ("transient" if isinstance(e, TransientError) else "limited" if isinstance(e, RetryAfter)
                    else "gone" if isinstance(e, Unreachable) else "error")
            return Failed(str(e), kind)
        await self._mark(reserved, status="sent", provider_id=biz_id[:64])
        return Sent(reserved, biz_id, segs)

    async def _mark(self, row_id: int, **values: object) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(update(SmsSend).where(SmsSend.id == row_id).values(**values)
                            .execution_options(synchronize_session=False))

    async def count(self, phone: str) -> int:
        async with self.sessions() as s:
            return int((await s.execute(select(func.count()).select_from(SmsSend)
                                        .where(SmsSend.phone == normalize_phone(phone)))).scalar_one())

    async def close(self) -> None:
        await self.provider.close()


def make_sms(settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> SmsSender | None:
    """The deployment's SMS sender, or None when BANGFU_SMS_PROVIDER is unset."""
    if not settings.sms_provider:
        return None
    if settings.sms_provider != "aliyun":
        raise ValueError(f"BANGFU_SMS_PROVIDER={settings.sms_provider!r}: only 'aliyun' is implemented")
    missing = [n for n, v in (("BANGFU_SMS_ACCESS_KEY_ID", settings.sms_access_key_id),
                              ("BANGFU_SMS_ACCESS_KEY_SECRET", settings.sms_access_key_secret),
                              ("BANGFU_SMS_SIGN_NAME", settings.sms_sign_name)) if not v]
    if missing:
        raise ValueError("SMS is on but these are not set: " + ", ".join(missing))
    from bot.channels.sms.aliyun import AliyunSms

    assert settings.sms_access_key_secret is not None
    provider = AliyunSms(settings.sms_api_url, str(settings.sms_access_key_id),
                         settings.sms_access_key_secret.get_secret_value(), str(settings.sms_sign_name))
    return SmsSender(sessions, provider, clock, load_templates(settings.sms_templates_file))
