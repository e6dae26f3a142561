"""`bangfu run` (Telegram, aiogram by default or python-telegram-bot) and `bangfu chat` (console).

`bangfu run` is configured by the environment alone (BANGFU_TELEGRAM_TOKEN, BANGFU_TELEGRAM_API_URL,
BANGFU_DATABASE_URL, BANGFU_WEBHOOK_URL, ...), brings the database schema up to date first, and runs
the reminder scheduler in the same process unless `--no-scheduler` (then run `bangfu scheduler` apart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from bot import eventloop, logsafe
from bot.settings import Settings

log = logging.getLogger(__name__)
RUNNERS = ("aiogram", "ptb")
CHANNELS = ("telegram", "wecom", "wechat_kf")


def channel_list(value: str) -> str:
    """--channel: one channel, or WeCom channels combined ("wecom,wechat_kf": one callback URL serves both)."""
    parts = sorted({p.strip() for p in value.split(",") if p.strip()})
    if not parts or any(p not in CHANNELS for p in parts) or ("telegram" in parts and len(parts) > 1):
        raise argparse.ArgumentTypeError(f"{value!r}: one of {', '.join(CHANNELS)}, or wecom,wechat_kf "
                                         "(Telegram runs in its own process on the same database)")
    return "+".join(parts)


def register(subparsers: Any) -> None:
    """Add the `run` and `chat` subcommands to the bangfu CLI."""
    run = subparsers.add_parser("run", help="run the bot on a channel: Telegram (long polling, or webhook when "
                                "BANGFU_WEBHOOK_URL is set) or WeCom (the callback URL, BANGFU_WECOM_*)")
    run.add_argument("--channel", type=channel_list, default="telegram",
                     help="chat channel: telegram (default), wecom, wechat_kf, or wecom,wechat_kf")
    run.add_argument("--runner", choices=RUNNERS, default="aiogram", help="Telegram library (default: aiogram)")
    run.add_argument("--webhook", action="store_true", help="webhook mode; requires BANGFU_WEBHOOK_URL")
    run.add_argument("--no-scheduler", action="store_true", help="do not run reminders here (run `bangfu scheduler`)")
    run.set_defaults(func=_cmd_run)

    chat = subparsers.add_parser("chat", help="talk to the bot in this terminal, as a roster person")
    chat.add_argument("--as", dest="as_person", metavar="NAME_OR_PHONE", help="roster person (name or phone)")
    chat.set_defaults(func=_cmd_chat)


def _cmd_run(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.channel != "telegram":
        settings.require_wecom()  # fail before touching the database
        if "wechat_kf" in args.channel and not settings.wechat_kf_open_kfid:
            print("--channel wechat_kf needs BANGFU_WECHAT_KF_OPEN_KFID", file=sys.stderr)
            return 2
        return eventloop.run(serve(settings, args.channel, scheduler=not args.no_scheduler),
                             use_uvloop=settings.uvloop)
    if args.webhook and not settings.webhook_url:
        print("--webhook needs BANGFU_WEBHOOK_URL (the public https URL Telegram should call)", file=sys.stderr)
        return 2
    settings.require_token()  # fail before touching the database
    return eventloop.run(serve(settings, args.runner, scheduler=not args.no_scheduler), use_uvloop=settings.uvloop)


def _cmd_chat(args: argparse.Namespace) -> int:
    from bot.runners.console import run_console

    return asyncio.run(run_console(Settings(), args.as_person))


def make_runner(kind: str, app: Any, settings: Settings, polling_timeout: int = 30) -> Any:
    """An AiogramRunner, PTBRunner or WeComRunner; imported lazily since each library is slow to import."""
    if "wechat_kf" in kind:  # "wechat_kf" alone, or "wechat_kf+wecom" on one callback URL
        from bot.channels.wechat_kf.runner import KfRunner

        return KfRunner(app, settings, wecom="wecom" in kind)
    if kind == "wecom":
        from bot.channels.wecom.runner import WeComRunner

        return WeComRunner(app, settings)
    if kind == "ptb":
        from bot.runners.ptb_runner import PTBRunner

        return PTBRunner(app, settings, polling_timeout)
    from bot.runners.aiogram_runner import AiogramRunner

    return AiogramRunner(app, settings, polling_timeout)


def _start_scheduler(settings: Settings, app: Any, transport: Any, stop: asyncio.Event) -> asyncio.Task[Any]:
    """Run the reminder scheduler next to the bot, sharing its catalogs and rules, and its sessions on
    PostgreSQL. On SQLite the bot's engine runs statements on the event loop (short per-update
    transactions), so the scheduler opens its own threaded engine: its set-based queries never stall
    the loop, and the two take turns on the file's write lock."""
    from bot.scheduler.runner import run_scheduler
    from bot.store.db import is_sqlite

    return asyncio.create_task(
        run_scheduler(
            settings,
            app.core.clock,
            transport,
            stop,
            sessions=None if is_sqlite(settings.database_url) else app.core.sessions,
            catalogs=app.core.catalogs,
            rules=app.core.services.rules,
        ),
        name="scheduler",
    )


async def serve(
    settings: Settings, runner_kind: str = "aiogram", scheduler: bool = True, stop: asyncio.Event | None = None
) -> int:
    """Migrate, build the core, run the bot (and the scheduler) until SIGINT/SIGTERM or `stop` is set."""
    from bot.clock import SystemClock
    from bot.core.bootstrap import build_core, freeze_startup_heap
    from bot.malloc import pin_mmap_threshold
    from bot.store.migrate import upgrade_async

    pin_mmap_threshold()  # a long-running process: large buffers in mmaps, not fragmenting the heap
    await upgrade_async(settings.database_url)
    app = build_core(settings, SystemClock(settings.timezone))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    runner = make_runner(runner_kind, app, settings)
    sched_stop = asyncio.Event()
    sched_task: asyncio.Task[Any] | None = None
    code = 0
    try:
        await runner.start()
        frozen = freeze_startup_heap()
        log.debug("start-up heap frozen: %d objects out of the garbage collector's sight", frozen)
        eventloop.set_gc_gen0_threshold(settings.gc_gen0_threshold)
        if runner_kind in ("wecom", "wechat_kf", "wechat_kf+wecom"):
            log.info("bangfu running on WeCom: callback URL %s, on %s", runner.url, eventloop.loop_kind())
        else:
            mode = "webhook" if settings.webhook_url else "polling"
            log.info("bangfu running: %s runner, %s as @%s, on %s", runner.name, mode, runner.bridge.bot_username,
                     eventloop.loop_kind())
        if scheduler:
            sched_task = _start_scheduler(settings, app, getattr(runner, "transports", runner.transport), sched_stop)
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(runner.wait())]
        if sched_task is not None:
            waiters.append(sched_task)
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            if t is not sched_task:
                t.cancel()
        for t in done:
            if t is not waiters[0] and t.exception() is not None:
                log.error("stopping: %r", t.exception())
                code = 1
    finally:
        if sched_task is not None:
            sched_stop.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(sched_task, 15)
        try:
            await runner.stop()
        except Exception:
            log.exception("runner did not stop cleanly")
        await app.close()
        log.info("bangfu stopped")
    return code


def main(argv: list[str] | None = None) -> None:
    """`python -m bot.runners.cli run|chat ...` without the rest of the bangfu CLI."""
    parser = argparse.ArgumentParser(prog="bangfu")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    level = getattr(logging, Settings().log_level.upper(), logging.INFO)
    # The console chat shares the terminal with the conversation: only problems are logged there.
    logging.basicConfig(
        level=max(level, logging.WARNING) if args.command == "chat" else level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logsafe.install()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    raise SystemExit(args.func(args))


if __name__ == "__main__":
    main()
