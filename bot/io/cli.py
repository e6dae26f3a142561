"""`bangfu import`, `bangfu export`, `bangfu report`: roster in, ledgers and monthly reports out.

`register(subparsers)` adds the three subcommands to the main `bangfu` parser; `python -m bot.io.cli`
runs them on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bot.i18n import Catalogs, Safe, Translator
from bot.settings import Settings

CHANGES_SHOWN = 30
PROBLEMS_SHOWN = 50


def _translator(settings: Settings) -> Translator:
    return Catalogs(settings.locales_dir).get(settings.default_language)


def _say(t: Translator, key: str, **args: Any) -> None:
    print(t(key, **{k: Safe(str(v)) for k, v in args.items()}))


def _date(value: str) -> date:
    from bot.io.validate import BadValue, day

    try:
        d = day(value)
    except BadValue:
        d = None
    if d is None:
        raise argparse.ArgumentTypeError(f"not a date: {value} (e.g. 2026-11-03)")
    return d


async def _engine(settings: Settings, *, migrate: bool) -> Any:
    """The deployment's engine; importing first brings the schema up to date (a new county starts so)."""
    from bot.store.db import create_engine
    from bot.store.migrate import upgrade_async

    if migrate:
        await upgrade_async(settings.database_url)
    return create_engine(settings.database_url)


# ---------------------------------------------------------------------------------------------------
# import


def _print_result(result: Any, t: Translator) -> None:
    from bot.io.roster import Change

    for name in result.ignored_sheets:
        _say(t, "io.import.ignored_sheet", names=name)
    by_sheet: dict[str, list[str]] = {}
    for sheet, header in result.ignored_columns:
        by_sheet.setdefault(sheet, []).append(header)
    for sheet, headers in by_sheet.items():
        _say(t, "io.import.ignored_columns", sheet=sheet, names="、".join(headers))
    if result.neutralised:
        _say(t, "io.import.neutralised", count=sum(result.neutralised.values()))
    for entity in ("villages", "teams", "people", "households", "members", "pairings"):
        c = result.counts.get(entity)
        if not c:
            continue
        _say(
            t,
            "io.import.summary_line",
            entity=t(f"io.entity.{entity}"),
            created=c["created"] + c["history"],
            updated=c["updated"] + c["replaced"] + c["ended"] + c["handover"],
            unchanged=c["unchanged"],
        )
    handovers: list[Change] = [c for c in result.changes if c.kind == "handover"]
    if handovers:
        _say(t, "io.import.handovers", count=len(handovers))
        for ch in handovers[:CHANGES_SHOWN]:
            (_, old, new), (_, _, when) = ch.fields[0], ch.fields[1]
            _say(t, "io.import.handover_line", code=ch.key, name=ch.name, old=old, new=new, date=when)
    updates = [c for c in result.changes if c.kind == "updated"]
    for ch in updates[:CHANGES_SHOWN]:
        for field, old, new in ch.fields:
            _say(
                t,
                "io.import.changed_line",
                code=ch.key,
                name=ch.name,
                field=field,
                old=old or "—",
                new=new or "—",
            )


async def _import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.clock import SystemClock
    from bot.io.reader import RosterError, read_roster
    from bot.io.roster import bad_rows_workbook, import_roster
    from bot.io.template import template_workbook
    from bot.store.db import session_factory

    settings = Settings()
    t = _translator(settings)
    if args.template:
        await asyncio.to_thread(Path(args.template).write_bytes, template_workbook())
        _say(t, "io.template.written", file=args.template)
        return 0
    if not args.file:
        print("bangfu import FILE.xlsx|FILE.csv  (or --template FILE.xlsx)", file=sys.stderr)
        return 2
    path = Path(args.file)
    try:
        with Console(stderr=True).status(t("io.import.reading", file=Safe(str(path)))):
            roster = await asyncio.to_thread(read_roster, path)
    except RosterError as e:
        from bot.io.roster import Problem

        print(Problem(e.key, e.args_).render(t), file=sys.stderr)
        return 1
    engine = await _engine(settings, migrate=True)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    label = t("io.import.checking" if stage == "check" else "io.import.writing")
                    tasks[stage] = bar.add_task(label, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            async with session_factory(engine)() as session:
                result = await import_roster(
                    session,
                    roster,
                    clock=SystemClock(settings.timezone),
                    full_id=args.full_id,
                    skip_bad=args.skip_bad is not None,
                    progress=progress,
                    id_key=settings.id_key(),
                )
                if result.applied:
                    await session.commit()
                else:
                    await session.rollback()
    finally:
        await engine.dispose()
    if args.skip_bad is not None and result.bad_rows:
        await asyncio.to_thread(Path(args.skip_bad).write_bytes, bad_rows_workbook(result, t))
    if not result.applied:
        for p in result.problems[:PROBLEMS_SHOWN]:
            print(p.render(t), file=sys.stderr)
        if len(result.problems) > PROBLEMS_SHOWN:
            _say(t, "io.import.more_problems", count=len(result.problems) - PROBLEMS_SHOWN)
        _say(t, "io.import.failed", count=len(result.problems))
        return 1
    if result.bad_rows:
        _say(t, "io.import.skipped", count=len(result.bad_rows), file=args.skip_bad)
    _say(t, "io.import.done", rows=result.rows_total - len(result.bad_rows))
    _print_result(result, t)
    return 0


# ---------------------------------------------------------------------------------------------------
# export


async def _team_id(session: Any, ref: str | None) -> int | None:
    from sqlalchemy import select

    from bot.store.models import Team

    if ref is None:
        return None
    q = select(Team.id).where(Team.name == ref)
    if ref.isascii() and ref.isdigit():
        q = select(Team.id).where((Team.id == int(ref)) | (Team.name == ref))
    found = (await session.scalars(q)).first()
    if found is None:
        raise LookupError(ref)
    return int(found)


def _period(args: argparse.Namespace, settings: Settings) -> tuple[date, date]:
    from bot.clock import SystemClock, local_today

    today = local_today(SystemClock(settings.timezone))
    return args.date_from or today.replace(day=1), args.date_to or today


async def _export(args: argparse.Namespace) -> int:
    from bot.io.export import ExportError, export_workbook, export_zip
    from bot.store.db import session_factory

    settings = Settings()
    t = _translator(settings)
    date_from, date_to = _period(args, settings)
    out = Path(args.output)
    engine = await _engine(settings, migrate=False)
    try:
        async with session_factory(engine)() as session:
            try:
                team_id = await _team_id(session, args.team)
                if args.with_photos:
                    zip_out = out.with_suffix(".zip")
                    data = await export_zip(
                        session,
                        args.kind,
                        date_from,
                        date_to,
                        team_id,
                        workbook_name=out.name,
                        tz=settings.timezone,
                        media_dir=settings.media_dir,
                    )
                    out = zip_out
                else:
                    data = await export_workbook(
                        session, args.kind, date_from, date_to, team_id, tz=settings.timezone
                    )
            except LookupError:
                _say(t, "io.export.bad_team", team=args.team)
                return 1
            except ExportError as e:
                _say(t, e.key, **e.args_)
                return 1
    finally:
        await engine.dispose()
    await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(out.write_bytes, data)
    _say(t, "report.cli.export_period", start=date_from.isoformat(), end=date_to.isoformat(),
         kinds=", ".join(args.kind))
    _say(t, "io.export.written", file=out)
    return 0


# ---------------------------------------------------------------------------------------------------
# report


async def _report(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.clock import SystemClock, local_today
    from bot.core.services import county_rules
    from bot.io.report import monthly_report, parse_month
    from bot.store.db import session_factory
    from bot.store.models import Team

    settings = Settings()
    catalogs = Catalogs(settings.locales_dir)
    t = catalogs.get(settings.default_language)
    try:
        month = parse_month(args.month)
    except ValueError:
        _say(t, "io.report.bad_month", value=args.month)
        return 1
    # The reminders' rules (the county's file over the shipped defaults): one truth for both.
    rules = county_rules(settings)
    out = Path(args.output)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    today = local_today(SystemClock(settings.timezone))
    written: list[str] = []
    engine = await _engine(settings, migrate=False)
    try:
        async with session_factory(engine)() as session:
            try:
                team_id = await _team_id(session, args.team)
            except LookupError:
                _say(t, "io.export.bad_team", team=args.team)
                return 1
            teams = (
                [(team_id, args.team)]
                if team_id is not None
                else [
                    (i, n)
                    for i, n in (await session.execute(select(Team.id, Team.name).order_by(Team.name))).all()
                ]
            )
            if not teams:
                _say(t, "io.report.no_teams")
                return 1
            for tid, name in teams:
                png, xlsx = await monthly_report(
                    session,
                    month,
                    tid,
                    rules=rules,
                    visits_per_cadre=args.visits_per_cadre,
                    today=today,
                    t=t,
                    latin=catalogs.get("en"),
                )
                stem = f"{month:%Y-%m}_{tid}_{_safe_name(str(name))}"
                await asyncio.to_thread((out / f"{stem}.png").write_bytes, png)
                await asyncio.to_thread((out / f"{stem}.xlsx").write_bytes, xlsx)
                written += [str(out / f"{stem}.png"), str(out / f"{stem}.xlsx")]
    finally:
        await engine.dispose()
    _say(t, "io.report.written", files="\n".join(written))
    return 0


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]


# ---------------------------------------------------------------------------------------------------
# wiring


def register(subparsers: Any) -> None:
    """Add `import`, `export` and `report` to the bangfu command line."""
    from bot.io.export import KINDS

    imp = subparsers.add_parser(
        "import", help="import a roster (xlsx/csv): villages, teams, cadres, households"
    )
    imp.add_argument("file", nargs="?", help="roster file, .xlsx or .csv")
    imp.add_argument("--template", metavar="FILE.xlsx", help="write the empty roster template and exit")
    imp.add_argument("--skip-bad", metavar="BAD.xlsx", help="import the good rows; write the bad ones here")
    imp.add_argument(
        "--full-id", action="store_true", help="store full ID-card numbers (default: last 4 only)"
    )
    imp.set_defaults(func=lambda a: asyncio.run(_import(a)))

    exp = subparsers.add_parser("export", help="export ledgers to xlsx (one sheet per ledger)")
    exp.add_argument("kind", nargs="+", choices=KINDS, help="which ledger(s)")
    exp.add_argument("--from", dest="date_from", type=_date, help="first day (default: 1st of this month)")
    exp.add_argument("--to", dest="date_to", type=_date, help="last day (default: today)")
    exp.add_argument("--team", help="work team name or id (default: all)")
    exp.add_argument("-o", "--output", required=True, help="FILE.xlsx")
    exp.add_argument("--with-photos", action="store_true", help="pack the photos with the workbook in a zip")
    exp.set_defaults(func=lambda a: asyncio.run(_export(a)))

    rep = subparsers.add_parser("report", help="monthly analysis per team: PNG chart + xlsx")
    rep.add_argument("--month", required=True, help="e.g. 2026-11")
    rep.add_argument("--team", help="work team name or id (default: every team)")
    rep.add_argument("-o", "--output", default=".", help="folder to write into")
    rep.add_argument(
        "--visits-per-cadre",
        type=int,
        default=None,
        help="monthly visit target per cadre (default: each paired household once per the rules' cadence)",
    )
    rep.set_defaults(func=lambda a: asyncio.run(_report(a)))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the io subcommands on their own: python -m bot.io.cli import roster.xlsx."""
    parser = argparse.ArgumentParser(prog="bangfu-io")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()
