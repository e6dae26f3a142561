"""`bangfu sms test PHONE` (the settings against the provider, one templated SMS) and
`bangfu sms escalate` (WeCom alerts nobody acted on within BANGFU_SMS_ALERT_AFTER_HOURS → SMS; run it
from cron)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.settings import Settings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sms", help="SMS: test the provider settings, escalate unanswered WeCom alerts")
    sub = p.add_subparsers(dest="sms_command", required=True)
    test = sub.add_parser("test", help="send the cadre_reminder template to one phone")
    test.add_argument("phone")
    test.set_defaults(func=lambda a: asyncio.run(_run(Settings(), "test", a.phone)))
    esc = sub.add_parser("escalate", help="SMS the leaders' WeCom alerts nobody acted on (run from cron)")
    esc.set_defaults(func=lambda a: asyncio.run(_run(Settings(), "escalate", None)))
    pref = sub.add_parser("prefer", help="a roster person gets reminders by SMS (on their roster phone)")
    pref.add_argument("person", metavar="NAME_OR_PHONE")
    pref.set_defaults(func=lambda a: asyncio.run(prefer_sms(Settings(), a.person)))


async def prefer(session: Any, person: Any, now: Any) -> Any:
    """An "sms" account for the person (chat id: their phone) and SMS as their reminder channel."""
    from sqlalchemy import select

    from bot.channels.sms import CHANNEL
    from bot.store.models import Account

    account = (await session.execute(select(Account).where(Account.channel == CHANNEL,
                                                           Account.external_id == person.phone))).scalar_one_or_none()
    if account is None:
        account = Account(channel=CHANNEL, external_id=person.phone, chat_id=person.phone, created_at=now)
        session.add(account)
    account.person_id, account.bound_at, account.unreachable = person.id, now, False
    person.preferred_channel = CHANNEL
    await session.flush()
    return account


async def prefer_sms(settings: Settings, who: str) -> int:
    from bot.clock import SystemClock
    from bot.i18n import Catalogs, Safe
    from bot.services.onboarding import find_person
    from bot.store.db import create_engine, session_factory

    t = Catalogs(settings.locales_dir).get(settings.default_language)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s, s.begin():
            found = [p for p in await find_person(s, who) if p.phone]
            if len(found) != 1:
                print(t("sms.prefer.not_one", who=Safe(who), n=len(found)))
                return 1
            await prefer(s, found[0], SystemClock(settings.timezone).now())
            print(t("sms.prefer.done", name=Safe(found[0].name), phone=Safe(found[0].phone)))
            return 0
    finally:
        await engine.dispose()


async def _run(settings: Settings, what: str, phone: str | None) -> int:
    from bot.channels.sms.alerts import escalate_unanswered
    from bot.channels.sms.sender import Sent, make_sms
    from bot.clock import SystemClock
    from bot.i18n import Catalogs, Safe
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_async

    catalogs = Catalogs(settings.locales_dir)
    t = catalogs.get(settings.default_language)
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    clock = SystemClock(settings.timezone)
    try:
        sms = make_sms(settings, session_factory(engine), clock)
        if sms is None:
            print(t("sms.off"))
            return 2
        try:
            if what == "test":
                assert phone is not None
                out = await sms.send(phone, "cadre_reminder", name="测试", what="短信设置检查")
                if isinstance(out, Sent):
                    print(t("sms.test.sent", segments=out.segments))
                    return 0
                print(t("sms.test.failed", error=Safe(str(out))))
                return 1
            # The parameters fill provider-approved Chinese templates: always the zh_CN texts.
            counts = await escalate_unanswered(session_factory(engine), sms, clock, catalogs.get("zh_CN"),
                                               settings.sms_alert_after_hours)
            print(t("sms.escalated", **counts))
            return 0
        finally:
            await sms.close()
    finally:
        await engine.dispose()
