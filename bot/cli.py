"""`bangfu` command line: one parser; features add their own subcommands through register()."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot import logsafe
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.demo import DemoSummary

# Feature modules that contribute subcommands, in the order shown by --help.
FEATURE_CLIS = ("bot.runners.cli", "bot.scheduler.cli", "bot.policy.cli", "bot.io.cli", "bot.channels.wecom.cli",
                "bot.io.monitor_cli", "bot.channels.wechat_kf.cli", "bot.channels.sms.cli")


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
            print(invite_link_text(settings.bot_username, invite.code))
        return 0
    finally:
        await engine.dispose()


def invite_link_text(bot_username: str | None, code: str) -> str:
    """The t.me deep link for an invite, or how to get one when the bot's username is not configured."""
    name = (bot_username or "").strip().lstrip("@")
    if name:
        return f"https://t.me/{name}?start={code}"
    return (
        "没有配置机器人用户名，所以没有链接。设置环境变量 BANGFU_BOT_USERNAME=机器人用户名（不带 @，"
        "也可以写进 .env）再运行就会打印 t.me 链接；也可以让对方在机器人里发送 "
        f"/start {code}\n"
        "No bot username configured, so no link: set BANGFU_BOT_USERNAME=your_bot (without @, or put it in "
        f".env) and run again for a t.me link; or have them send /start {code} to the bot."
    )


def _demo(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock, local_today
    from bot.core.services import county_rules
    from bot.demo import seed_demo
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    rules = county_rules(settings)

    async def seed() -> DemoSummary:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as s, s.begin():
                return await seed_demo(s, local_today(SystemClock(settings.timezone)), rules=rules)
        finally:
            await engine.dispose()

    summary = asyncio.run(seed())
    print(demo_banner(summary))
    if args.no_chat:
        return 0
    from bot.runners.console import run_console

    return asyncio.run(run_console(settings, args.as_person or summary.cadre[1])) or 0


def demo_banner(summary: DemoSummary) -> str:
    """Who is in the demo village: one person of each role, and the command to chat as them."""
    lines = [
        f"演示村 / demo village: {summary.village} — {summary.households} 户, 建档立卡 {summary.registered} 户"
        f"{'' if summary.created else '（已存在 / already there）'}",
        "试试每个身份 / try each role:",
    ]
    people = [
        ("帮扶干部 / cadre", f"{summary.cadre[0]} {summary.cadre[1]}", summary.cadre[0]),
        ("工作队长 / team leader", f"{summary.leader[0]} {summary.leader[1]}", summary.leader[0]),
    ]
    if summary.township[0]:
        people.append(("乡镇联系人 / township", f"{summary.township[0]} {summary.township[1]}", summary.township[0]))
    if summary.county[0]:
        people.append(("县级干部 / county (防返贫监测 /monitor)", f"{summary.county[0]} {summary.county[1]}",
                       summary.county[0]))
    if summary.villager[0]:
        head, phone, code = summary.villager
        people.append((
            "群众 / villager",
            f"{head}（{code} 户主，帮扶干部 {summary.villager_cadre} / head of {code}, cadre {summary.villager_cadre}）",
            phone,
        ))
    for role, who, ref in people:
        lines.append(f"  {role}: {who}")
        lines.append(f"      bangfu chat --as {ref}")
    lines.append("（群众可以直接打字问政策，比如“住院能报多少” / a villager just types a question）")
    return "\n".join(lines)


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
