"""Hostile spreadsheets are refused before they are inflated, in bounded memory and time, with a
message in the reader's language; `bangfu import` says so and writes nothing."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile_files import (
    bzip2_member,
    deflate_bomb,
    long_cell,
    long_csv_field,
    lying_bomb,
    many_members,
    small_roster,
    sparse_rows,
)

from bot.i18n import Translator
from bot.io.cli import main
from bot.io.reader import RosterError, read_roster
from bot.io.roster import Problem

PEAK_LIMIT = 64 << 20  # bytes traced while reading one hostile file
TIME_LIMIT = 10.0  # seconds (generous: the box is shared; typical is well under a second)


def refused(data: bytes, name: str = "bomb.xlsx") -> tuple[RosterError, int, float]:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(RosterError) as e:
            read_roster(data, name)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return e.value, peak, elapsed


def test_deflate_bomb_is_refused_before_inflating(zh: Translator, en: Translator) -> None:
    data = deflate_bomb(2048)  # 2 GiB of sheet XML
    assert len(data) < 3 << 20
    err, peak, elapsed = refused(data)
    assert err.key == "io.err.zip_bomb"
    assert err.args_["size"] >= 2 << 30
    assert peak < PEAK_LIMIT and elapsed < TIME_LIMIT
    print(f"\ndeflate bomb: {len(data) / 2**20:.1f} MiB -> 2 GiB: refused, peak {peak / 2**20:.1f} MiB, {elapsed:.3f} s")
    zh_text = Problem(err.key, err.args_).render(zh)
    assert "压缩炸弹" in zh_text and "bomb.xlsx" in zh_text
    assert "zip bomb" in Problem(err.key, err.args_).render(en)


def test_lying_directory_is_read_only_up_to_the_declared_size() -> None:
    """zipfile never inflates past the declared size; the truncated sheet fails its CRC."""
    err, peak, elapsed = refused(lying_bomb(1024))
    assert err.key == "io.err.not_spreadsheet"
    assert peak < PEAK_LIMIT and elapsed < TIME_LIMIT


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (sparse_rows, "io.err.too_many_rows"),
        (long_cell, "io.err.cell_too_long"),
        (many_members, "io.err.zip_members"),
        (bzip2_member, "io.err.zip_method"),
    ],
)
def test_other_hostile_workbooks(make: Callable[[], bytes], key: str) -> None:
    err, peak, elapsed = refused(make())
    assert err.key == key
    assert peak < PEAK_LIMIT and elapsed < TIME_LIMIT


def test_csv_limits() -> None:
    err, _, _ = refused(long_csv_field(40_000), "r.csv")
    assert err.key == "io.err.cell_too_long"
    err, _, _ = refused(long_csv_field(200_000), "r.csv")  # past csv's own field limit
    assert err.key in ("io.err.cell_too_long", "io.err.not_spreadsheet")
    with pytest.raises(RosterError) as e:  # not traced: tracemalloc slows a million rows tenfold
        read_roster(("户编号,户主姓名\n" + "H1,a\n" * 1_100_000).encode(), "r.csv")
    assert e.value.key == "io.err.too_many_rows"


def test_file_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(65 << 20)  # sparse: 65 MiB on paper
    with pytest.raises(RosterError) as e:
        read_roster(path)
    assert e.value.key == "io.err.file_too_big"


def test_a_real_roster_still_reads() -> None:
    roster = read_roster(small_roster(), "ok.xlsx")
    assert roster.row_count == 2


def test_bangfu_import_refuses_a_bomb(
    new_sqlite_url: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BANGFU_DATABASE_URL", new_sqlite_url())
    monkeypatch.setenv("BANGFU_DEFAULT_LANGUAGE", "zh_CN")
    monkeypatch.chdir(tmp_path)
    bomb = tmp_path / "roster.xlsx"
    bomb.write_bytes(deflate_bomb(1024))
    with pytest.raises(SystemExit) as e:
        main(["import", str(bomb)])
    assert e.value.code == 1
    assert "压缩炸弹" in capsys.readouterr().err
