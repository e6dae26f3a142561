"""Typed services built once: the county's rules file reaches every user of the rules (the chat, the
scheduler's runner and CLI) as one loaded object, and the leaders' reports take the rules they are
given instead of falling back to the shipped defaults."""

from __future__ import annotations

import inspect
from pathlib import Path

from bot.core.bootstrap import build_core
from bot.core.services import Services, county_rules, load_services
from bot.scheduler import reports
from bot.settings import Settings
from tests.conftest import Chat, World, bind


def _county(tmp_path: Path) -> Path:
    f = tmp_path / "county.toml"
    f.write_text("[village_days]\ntarget = 4\n", encoding="utf-8")
    return f


def test_rules_loaded_once_per_process_from_the_county_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}", rules_file=_county(tmp_path))
    services = load_services(settings, policy=False)
    assert isinstance(services, Services) and services.policy is None
    assert services.rules.village_days.target == 4
    assert county_rules(settings) is services.rules  # read once, shared by every caller in the process
    assert county_rules(Settings(rules_file=None)).village_days.target != 4  # another file, other rules


def test_reports_require_the_loaded_rules() -> None:
    for fn in (reports.overdue_report, reports.week_report, reports.weekly_digest):
        param = inspect.signature(fn).parameters["rules"]
        assert param.default is inspect.Parameter.empty, fn.__name__


async def test_the_chat_uses_the_county_rules(db_url: str, tmp_path: Path) -> None:
    from datetime import datetime

    from bot.clock import FixedClock
    from tests.conftest import seed_world

    settings = Settings(database_url=db_url, media_dir=tmp_path / "media", telegram_token=None,
                        rules_file=_county(tmp_path))
    app = build_core(settings, FixedClock(datetime(2026, 11, 28, 10, 0)))
    try:
        assert app.core.services.rules is county_rules(settings)
        world: World = await seed_world(app)
        cadre = Chat(app, "201", name="王建国")
        await bind(app, cadre, person_id=world.cadre_ids[0])
        await cadre.send("/checkin")
        await cadre.location(25.0, 102.7)
        assert "还差3天" in cadre.last_text  # the county's target of 4, not the shipped 2
    finally:
        await app.close()
