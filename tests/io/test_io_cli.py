"""The import/export/report command line, run in-process against a SQLite file."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from io_helpers import roster_bytes

from bot.io.cli import main
from bot.io.format import HOUSEHOLDS
from bot.io.template import TEMPLATES_DIR, sample_rows

SAMPLE = str(TEMPLATES_DIR / "sample_roster.xlsx")


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return int(e.value.code or 0)


@pytest.fixture
def db(new_sqlite_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = new_sqlite_url()
    monkeypatch.setenv("BANGFU_DATABASE_URL", url)
    monkeypatch.setenv("BANGFU_DEFAULT_LANGUAGE", "zh_CN")
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    return url


def test_import_export_report(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("import", "--template", str(tmp_path / "t.xlsx")) == 0
    assert openpyxl.load_workbook(tmp_path / "t.xlsx").sheetnames[0] == "说明"

    assert run("import", SAMPLE) == 0
    out = capsys.readouterr().out
    assert "导入完成" in out and "农户：新增 30" in out

    rows = sample_rows()
    i = [c.key for c in HOUSEHOLDS.columns].index("phone")
    rows["households"][2][i] = "12345"
    rows["households"][0][[c.key for c in HOUSEHOLDS.columns].index("address")] = "新地址"
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(roster_bytes(rows))
    assert run("import", str(bad)) == 1
    err = capsys.readouterr()
    assert "『农户』第4行『联系电话』不是有效的手机号或座机号：12345" in err.err
    assert "没有导入任何数据" in err.out

    assert run("import", str(bad), "--skip-bad", str(tmp_path / "rejected.xlsx")) == 0
    out = capsys.readouterr().out
    assert "跳过了 1 行" in out and "新地址" in out
    rejected = openpyxl.load_workbook(tmp_path / "rejected.xlsx")["农户"]
    assert rejected.cell(2, 1).value == 4

    ledger = tmp_path / "out" / "ledger.xlsx"
    assert (
        run(
            "export",
            "households",
            "visits",
            "--from",
            "2026-01-01",
            "--to",
            "2026-11-30",
            "--team",
            "石桥村驻村工作队",
            "-o",
            str(ledger),
        )
        == 0
    )
    wb = openpyxl.load_workbook(ledger)
    assert "农户" in wb.sheetnames and "走访记录" in wb.sheetnames
    assert {r[1] for r in wb["农户"].iter_rows(min_row=2, values_only=True)} == {"999999101201"}

    assert run("export", "visits", "--team", "没有这个队", "-o", str(ledger)) == 1
    assert "找不到工作队" in capsys.readouterr().out

    assert run("export", "visits", "--with-photos", "-o", str(tmp_path / "v.xlsx")) == 0
    assert (tmp_path / "v.zip").exists()

    assert run("report", "--month", "2026-11", "-o", str(tmp_path / "rep")) == 0
    files = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert len(files) == 4 and sum(f.endswith(".png") for f in files) == 2
    assert run("report", "--month", "11月", "-o", str(tmp_path / "rep")) == 1


def test_import_not_a_spreadsheet(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    assert run("import", str(junk)) == 1
    assert "不是表格文件" in capsys.readouterr().err
    assert run("import", str(tmp_path / "missing.xlsx")) == 1
    assert "找不到文件" in capsys.readouterr().err


def test_template_round_trips_through_openpyxl(tmp_path: Path) -> None:
    from bot.io.template import template_workbook

    wb = openpyxl.load_workbook(io.BytesIO(template_workbook()))
    assert wb.sheetnames == ["说明", "村庄", "工作队", "干部", "农户", "家庭成员", "结对"]
    assert [c.value for c in wb["农户"][1]][:3] == ["户编号", "村编码", "村名称"]
    assert wb["农户"].freeze_panes == "A2"
