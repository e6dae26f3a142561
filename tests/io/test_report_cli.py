"""`bangfu export` says which period it exported; `bangfu invite` without a bot username says how to set
it instead of printing a placeholder link; `bangfu report` measures by the county's rules file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main as bangfu
from bot.clock import SystemClock, local_today
from bot.io.template import TEMPLATES_DIR


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        bangfu(list(argv))
    return int(e.value.code or 0)


@pytest.fixture
def db(new_sqlite_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = new_sqlite_url()
    monkeypatch.setenv("BANGFU_DATABASE_URL", url)
    monkeypatch.setenv("BANGFU_DEFAULT_LANGUAGE", "zh_CN")
    monkeypatch.delenv("BANGFU_BOT_USERNAME", raising=False)
    monkeypatch.delenv("BANGFU_RULES_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    return url


def test_export_prints_the_period(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("import", str(TEMPLATES_DIR / "sample_roster.xlsx")) == 0
    capsys.readouterr()
    assert run("export", "visits", "difficulties", "-o", str(tmp_path / "l.xlsx")) == 0
    today = local_today(SystemClock("Asia/Shanghai"))
    out = capsys.readouterr().out
    assert f"导出期间：{today.replace(day=1).isoformat()} 至 {today.isoformat()}（visits, difficulties）" in out
    assert run("export", "visits", "--from", "2026-01-01", "--to", "2026-06-30", "-o", str(tmp_path / "l.xlsx")) == 0
    assert "导出期间：2026-01-01 至 2026-06-30" in capsys.readouterr().out


def test_invite_without_bot_username(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("import", str(TEMPLATES_DIR / "sample_roster.xlsx")) == 0
    capsys.readouterr()
    assert run("invite", "--person", "17000001003") == 0
    out = capsys.readouterr().out
    assert "BANGFU_BOT_USERNAME" in out and "https://t.me/" not in out and "/start " in out
    monkeypatch.setenv("BANGFU_BOT_USERNAME", "qingshi_bot")
    assert run("invite", "--person", "17000001003") == 0
    assert "https://t.me/qingshi_bot?start=" in capsys.readouterr().out


def test_report_command_uses_the_county_rules_file(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import openpyxl

    assert run("import", str(TEMPLATES_DIR / "sample_roster.xlsx")) == 0
    county = tmp_path / "county.toml"
    county.write_text("[village_days]\ntarget = 4\n", encoding="utf-8")
    targets = {}
    for rules in (None, county):
        if rules:
            monkeypatch.setenv("BANGFU_RULES_FILE", str(rules))
        out = tmp_path / f"rep-{'county' if rules else 'shipped'}"
        assert run("report", "--month", "2026-09", "--team", "石桥村驻村工作队", "-o", str(out)) == 0
        [xlsx] = out.glob("*.xlsx")
        sheet = openpyxl.load_workbook(xlsx).worksheets[1]
        targets[bool(rules)] = {row[7] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert targets == {False: {round(2 * 30 / 7)}, True: {round(4 * 30 / 7)}}  # village-day target per cadre
