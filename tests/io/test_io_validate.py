"""Cell parsers: phones, ID-card numbers (GB 11643), dates, amounts, causes and statuses."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.io import validate as v
from bot.io.template import fake_id_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        (13800138000.0, "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("0871-5551234", "0871-5551234"),
        ("087165551234", "0871-65551234"),
        ("010-12345678", "010-12345678"),
        ("02012345678", "020-12345678"),
        ("0871-5551234-802", "0871-5551234-802"),
        ("13800138000/0871-5551234", "13800138000"),  # two numbers in one cell: the first valid one
        ("无，13800138000", "13800138000"),
        ("", None),
        (None, None),
    ],
)
def test_phone_accepts(raw: Any, expected: str | None) -> None:
    assert v.phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["12345", "12800138000", "1380013800", "138001380001", "0871-12", "电话", "110"]
)
def test_phone_refuses(raw: str) -> None:
    with pytest.raises(v.BadValue) as e:
        v.phone(raw)
    assert e.value.key == "io.err.phone"


def test_id_number_checksum_and_masking() -> None:
    # The worked example of GB 11643-1999 itself.
    assert v.id_checksum_ok("11010519491231002X")
    assert v.id_number("11010519491231002x", full=True) == "11010519491231002X"
    assert v.id_number("11010519491231002X") == "**************002X"
    rng = random.Random(3)
    for _ in range(50):
        good = fake_id_number(rng, date(1960, 1, 1))
        assert v.id_checksum_ok(good)
        wrong = good[:17] + ("X" if good[17] != "X" else "0")
        with pytest.raises(v.BadValue) as e:
            v.id_number(wrong)
        assert e.value.key == "io.err.id_checksum"
    with pytest.raises(v.BadValue) as e:
        v.id_number("110105194902300021")  # 30 February
    assert e.value.key == "io.err.id_birth"
    with pytest.raises(v.BadValue) as e:
        v.id_number("1101051949")
    assert e.value.key == "io.err.id_format"
    assert v.id_number("**************002X") == "**************002X"  # our own masked export


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (datetime(2026, 3, 1, 0, 0), date(2026, 3, 1)),
        ("2026-03-01", date(2026, 3, 1)),
        ("2026/3/1", date(2026, 3, 1)),
        ("2026.03.01", date(2026, 3, 1)),
        ("2026年3月1日", date(2026, 3, 1)),
        ("20260301", date(2026, 3, 1)),
        (46082, date(2026, 3, 1)),  # an Excel serial day number
        ("", None),
    ],
)
def test_dates(raw: Any, expected: date | None) -> None:
    assert v.day(raw) == expected


@pytest.mark.parametrize("raw", ["2026-02-30", "明年", "3/1", "2026-13-01"])
def test_bad_dates(raw: str) -> None:
    with pytest.raises(v.BadValue):
        v.day(raw)


def test_amounts_counts_causes_status() -> None:
    assert v.money("8,650元") == Decimal("8650.00")
    assert v.money(8650.5) == Decimal("8650.50")
    with pytest.raises(v.BadValue):
        v.money("-5")
    assert v.integer("4人") == 4
    assert v.integer("第3组") == 3
    assert (v.integer("三组"), v.integer("第十二组"), v.integer("二十"), v.integer("十")) == (3, 12, 20, 10)
    with pytest.raises(v.BadValue):
        v.integer("3.5")
    assert v.poverty_causes("因病致贫、缺劳动力，因病") == ["illness", "labour"]
    assert v.poverty_causes("交通条件落后;自身发展动力不足") == ["transport", "motivation"]
    with pytest.raises(v.BadValue) as e:
        v.poverty_causes("因懒")
    assert "因病" in str(e.value.args_["allowed"])
    assert v.status("脱贫不稳定户") == "monitored"
    assert v.status("已脱贫") == "lifted"
    assert v.role("第一书记") == "leader"
    assert v.yes_no("否") is False
    assert v.year("1968-05") == 1968
