"""`bangfu scheduler`: run the reminder scheduler and the outbox sender alone, next to bot workers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from bot import eventloop
from bot.core.services import county_rules
from bot.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `scheduler` subcommand to the bangfu CLI."""
    p = subparsers.add_parser("scheduler", help="run reminders and the outbox sender (alone, next to bot workers)")
    p.add_argument("--once", action="store_true",
                   help="run one tick now, send what is due, then exit (for cron or a manual check)")
    p.add_argument("--check-rules", action="store_true", help="print the effective rules and exit")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.check_rules:
        print(county_rules(settings).model_dump_json(indent=2))
        return 0
    return eventloop.run(_run(settings, once=args.once), use_uvloop=settings.uvloop)


async def _run(settings: Settings, *, once: bool) -> int:
    from bot.clock import SystemClock
    from bot.core.transports import Transports
    from bot.malloc import pin_mmap_threshold
    from bot.runners.http_transport import HttpTransport
    from bot.scheduler.runner import run_scheduler
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_async

    pin_mmap_threshold()  # a long-running process: large buffers in mmaps, not fragmenting the heap
    await upgrade_async(settings.database_url)
    clock = SystemClock(settings.timezone)
    # Every configured channel's transport: Telegram with BANGFU_TELEGRAM_TOKEN, WeCom with BANGFU_WECOM_*.
    async with contextlib.AsyncExitStack() as stack:
        transports = Transports()
        if settings.telegram_token is not None or settings.wecom_corp_id is None:
            transports.add(await stack.enter_async_context(
                HttpTransport(settings.require_token(), settings.telegram_api_url)))
        if settings.wecom_corp_id is not None:
            from bot.channels.wecom.api import make_api
            from bot.channels.wecom.transport import WeComTransport

            token_engine = create_engine(settings.database_url)
            stack.push_async_callback(token_engine.dispose)
            api = make_api(settings, session_factory(token_engine))
            stack.push_async_callback(api.close)
            transports.add(WeComTransport(api))
            if settings.wechat_kf_open_kfid:  # 微信客服: the same app's token; held answers and SMS
                from bot.channels.sms.sender import make_sms
                from bot.channels.wechat_kf.transport import KfTransport

                kf_sessions = session_factory(token_engine)
                sms = make_sms(settings, kf_sessions, clock)
                if sms is not None:
                    stack.push_async_callback(sms.close)
                transports.add(KfTransport(api, settings.wechat_kf_open_kfid, kf_sessions, clock, sms))
        if settings.sms_provider:  # reminders to people who chose SMS
            from bot.channels.sms.sender import make_sms as make_sms_sender
            from bot.channels.sms.transport import SmsTransport

            sms_engine = create_engine(settings.database_url)
            stack.push_async_callback(sms_engine.dispose)
            sms_sender = make_sms_sender(settings, session_factory(sms_engine), clock)
            if sms_sender is not None:
                stack.push_async_callback(sms_sender.close)
                transports.add(SmsTransport(sms_sender, session_factory(sms_engine)))
        if once:
            return await _once(settings, clock, transports)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(sig, stop.set)
        await run_scheduler(settings, clock, transports, stop)
    return 0


async def _once(settings: Settings, clock: Any, transport: Any) -> int:
    from bot.core.transports import Transports
    from bot.i18n import Catalogs
    from bot.scheduler.member_limits import channel_limiters
    from bot.scheduler.sender import Sender
    from bot.scheduler.tick import run_tick
    from bot.store.db import create_engine, session_factory

    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        rules = county_rules(settings)
        catalogs = Catalogs(settings.locales_dir, settings.default_language)
        result = await run_tick(sessions, rules, catalogs, clock.now(), draft_keep_days=settings.draft_keep_days)
        limiters = channel_limiters(t.channel for t in Transports.of(transport))
        stats = await Sender(sessions, transport, clock, rules, catalogs, limiters=limiters).run(
            asyncio.Event(), until_idle=True)
        print(f"rules run: {', '.join(result.ran) or '-'}; new messages: {result.written}; "
              f"sent {stats.sent}, failed {stats.failed}, retried {stats.retried}")
        return 0
    finally:
        await engine.dispose()


def main() -> None:
    """Entry point for running this subcommand alone: `python -m bot.scheduler.cli`."""
    parser = argparse.ArgumentParser(prog="bangfu-scheduler")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["scheduler", *sys.argv[1:]])
    raise SystemExit(args.func(args))


if __name__ == "__main__":
    main()
