"""`bangfu monitor import FILE --source 医保|民政|残联|教育`, `bangfu monitor export -o FILE.xlsx`,
`bangfu monitor notice --village 村名 -o FILE.png|.pdf` (issue 14)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.settings import Settings

UNMATCHED_SHOWN = 50


async def _import(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock, local_today
    from bot.core.services import county_rules
    from bot.i18n import Catalogs
    from bot.io.monitor import ListError, import_department, read_file
    from bot.scheduler.monitor_tick import tell_villages
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_async

    settings = Settings()
    if not settings.id_key():
        print("BANGFU_ID_HASH_KEY is not set: ID numbers cannot be matched (set the county's secret key).")
        return 2
    try:
        rows = await asyncio.to_thread(read_file, Path(args.file))
    except ListError as e:
        print(f"cannot read {args.file}: {e.key}")
        return 2
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    clock = SystemClock(settings.timezone)
    try:
        async with session_factory(engine)() as s, s.begin():
            rules = county_rules(settings)
            res = await import_department(s, rows, args.source, id_key=settings.id_key(),
                                          rules=rules, now=clock.now(), today=local_today(clock))
            told = await tell_villages(s, rules, Catalogs(settings.locales_dir), clock.now(), local_today(clock),
                                       res.new_cases, args.source)
    except ListError as e:
        print(f"cannot import {args.file}: {e.key}")
        return 2
    finally:
        await engine.dispose()
    print(f"{args.source}: {res.rows} 行 / rows; 匹配 matched {res.matched}; 新立案 opened {res.opened}; "
          f"已有在办案件 already open {res.already_open}; 身份证号无效 bad ID {len(res.bad)}; "
          f"未匹配 unmatched {len(res.unmatched)}; 通知 messages {told}")
    for n, name, shown in res.unmatched[:UNMATCHED_SHOWN]:
        print(f"  未匹配 unmatched: 第{n}行 {name} {shown}")
    if res.bad:
        print("  身份证号无效的行 rows with a bad ID: " + ", ".join(map(str, res.bad[:UNMATCHED_SHOWN])))
    return 0


async def _export(args: argparse.Namespace) -> int:
    from bot.io.monitor import ledgers_workbook
    from bot.store.db import create_engine, session_factory

    settings = Settings()
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as s:
            data = await ledgers_workbook(s)
    finally:
        await engine.dispose()
    await asyncio.to_thread(Path(args.output).write_bytes, data)
    print(f"wrote {args.output}")
    return 0


async def _notice(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.clock import SystemClock, local_today
    from bot.core.services import county_rules
    from bot.io.monitor import notice_image, notice_lines, notice_rows
    from bot.store.db import create_engine, session_factory
    from bot.store.models import Village

    settings = Settings()
    engine = create_engine(settings.database_url)
    today = local_today(SystemClock(settings.timezone))
    try:
        async with session_factory(engine)() as s:
            v = (await s.execute(select(Village).where(Village.name == args.village))).scalars().first()
            if v is None:
                print(f"no village named {args.village}")
                return 2
            rows = await notice_rows(s, v.id, args.phase)
    finally:
        await engine.dispose()
    days = county_rules(settings).monitoring.publicity_days
    lines = notice_lines(v.name, rows, today, today + timedelta(days=days), args.phase)
    fmt = "PDF" if args.output.lower().endswith(".pdf") else "PNG"
    await asyncio.to_thread(Path(args.output).write_bytes, notice_image(lines, fmt))
    print(f"wrote {args.output}: {len(rows)} households")
    return 0


def register(subparsers: Any) -> None:
    mon = subparsers.add_parser("monitor", help="防止返贫监测: department lists, ledgers, public notice")
    sub = mon.add_subparsers(dest="monitor_command", required=True)
    imp = sub.add_parser("import", help="match a department's list to households and open cases")
    imp.add_argument("file", help=".xlsx or .csv with an ID-number column")
    imp.add_argument("--source", required=True, help="医保|民政|残联|教育 (the department)")
    imp.set_defaults(func=lambda a: asyncio.run(_import(a)))
    exp = sub.add_parser("export", help="监测对象名单, 帮扶措施台账, 风险消除名单 as xlsx")
    exp.add_argument("-o", "--output", required=True, help="FILE.xlsx")
    exp.set_defaults(func=lambda a: asyncio.run(_export(a)))
    notice = sub.add_parser("notice", help="the village's public notice (公示) as a printable PNG or PDF")
    notice.add_argument("--village", required=True, help="village name")
    notice.add_argument("--phase", choices=["identify", "close"], default="identify")
    notice.add_argument("-o", "--output", required=True, help="FILE.png or FILE.pdf")
    notice.set_defaults(func=lambda a: asyncio.run(_notice(a)))
