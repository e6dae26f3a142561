"""`bangfu` command line: one parser; features add their own subcommands through register()."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence

from bot import logsafe
from bot.settings import Settings

# Feature modules that contribute subcommands, in the order shown by --help.
FEATURE_CLIS = ("bot.runners.cli", "bot.scheduler.cli", "bot.policy.cli", "bot.io.cli")


def _db(args: argparse.Namespace) -> int:
    from bot.store.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    print(f"database at head: {settings.database_url}")
    return 0


def _invite(args: argparse.Namespace) -> int:
    return asyncio.run(_invite_async(args.person, args.household))


async def _invite_async(person_ref: str | None, household_code: str | None) -> int:
    from sqlalchemy import select

    from bot.clock import SystemClock
    from bot.services.onboarding import create_invite, find_person
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_async
    from bot.store.models import Household

    settings = Settings()
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s, s.begin():
            now = SystemClock(settings.timezone).now()
            if household_code:
                household = (
                    await s.execute(select(Household).where(Household.code == household_code))
                ).scalar_one_or_none()
                if household is None:
                    print(
                        f"没有找到户编号为 {household_code} 的农户 / no household with code {household_code}"
                    )
                    return 1
                invite = await create_invite(s, now, household=household)
                who = f"{household.head_name}家 ({household.code})"
            else:
                people = await find_person(s, person_ref or "")
                if len(people) != 1:
                    print(
                        f"找到 {len(people)} 人，请用手机号指定 / {len(people)} people match; use the phone number"
                        if people
                        else f"名单里没有 {person_ref} / nobody called {person_ref} on the roster"
                    )
                    return 1
                invite = await create_invite(s, now, person=people[0])
                who = f"{people[0].name} ({people[0].role})"
            print(f"{who}\n邀请码 / invite code: {invite.code}")
            print(f"https://t.me/{settings.bot_username}?start={invite.code}")
        return 0
    finally:
        await engine.dispose()


def _demo(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock, local_today
    from bot.demo import seed_demo
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)

    async def seed() -> object:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as s, s.begin():
                return await seed_demo(s, local_today(SystemClock(settings.timezone)))
        finally:
            await engine.dispose()

    summary = asyncio.run(seed())
    print(
        f"演示村 / demo village: {summary.village} — {summary.households} 户, 建档立卡 {summary.registered} 户"  # type: ignore[attr-defined]
        f"{'' if summary.created else '（已存在 / already there）'}"  # type: ignore[attr-defined]
    )
    print(f"帮扶干部 / cadre: {summary.cadre[0]} {summary.cadre[1]}")  # type: ignore[attr-defined]
    print(f"工作队长 / team leader: {summary.leader[0]} {summary.leader[1]}")  # type: ignore[attr-defined]
    print(f"试试 / try: bangfu chat --as {summary.cadre[1]}   或 / or   bangfu chat --as {summary.leader[1]}")  # type: ignore[attr-defined]
    if args.no_chat:
        return 0
    from bot.runners.console import run_console

    return asyncio.run(run_console(settings, args.as_person or summary.cadre[1])) or 0  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bangfu", description="帮扶通 Bangfu — pairing-assistance assistant"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema (Alembic)")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=_db)

    inv = sub.add_parser("invite", help="print a one-time invite code and t.me link")
    g = inv.add_mutually_exclusive_group(required=True)
    g.add_argument("--person", help="name or phone on the roster")
    g.add_argument("--household", help="household code (户编号), for a villager")
    inv.set_defaults(func=_invite)

    demo = sub.add_parser("demo", help="seed a fictional demo village, then open the console chat")
    demo.add_argument("--no-chat", action="store_true", help="only seed")
    demo.add_argument("--as", dest="as_person", help="chat as this roster person (name or phone)")
    demo.set_defaults(func=_demo)

    for name in FEATURE_CLIS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else getattr(logging, Settings().log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logsafe.install()
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if args.command in ("chat", "demo", "ask", "policies"):
            # Interactive commands: log lines would interleave with the conversation.
            logging.getLogger().setLevel(logging.WARNING)
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()
