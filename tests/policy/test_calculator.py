"""The inpatient estimate: working shown from county figures, or an honest 'needs local figures'."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.policy.engine import PolicyEngine

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_estimate_all_levels_with_working(county_engine: PolicyEngine) -> None:
    a = county_engine.answer("老汉住院花了3千5报得了多少", now=NOW)
    assert a.topic == "medical.inpatient"
    assert "乡镇卫生院：（3500 − 起付线200）× 85% = 2805元，自己约出695元" in a.text
    assert "县级医院：（3500 − 起付线500）× 75% = 2250元，自己约出1250元" in a.text
    assert "市级及以上医院：（3500 − 起付线1000）× 60% = 1500元，自己约出2000元" in a.text
    assert "不是承诺" in a.text
    assert "示例县（虚构）2026年" in a.text


def test_estimate_level_from_question_cap_and_deductible(county_engine: PolicyEngine) -> None:
    a = county_engine.answer("在镇医院住院花了一万二", now=NOW)
    assert "乡镇卫生院：（12000 − 起付线200）× 85% = 10030元" in a.text
    assert "县级医院" not in a.text.split("粗算")[1]
    capped = county_engine.answer("住县医院花了三十万能报多少", now=NOW)
    assert "最多报150000元，自己约出150000元" in capped.text
    small = county_engine.answer("在市医院住院花了800块", now=NOW)
    assert "800元没超过起付线1000元" in small.text


def test_estimate_in_english(county_engine: PolicyEngine) -> None:
    a = county_engine.answer("住院花了两万", lang="en", now=NOW)
    assert "County hospital: (20,000 − deductible 500) × 75% = 14,625 yuan" in a.text


def test_national_figures_do_not_invent_an_estimate(engine: PolicyEngine) -> None:
    a = engine.answer("我妈住院花了两万能报多少", now=NOW)
    assert a.topic == "medical.inpatient"
    assert "得用当地的起付线、报销比例和封顶线" in a.text
    assert "20000元" in a.text
    assert "× " not in a.text  # no made-up calculation
    plain = engine.answer("住院报销比例是多少", now=NOW)
    assert "粗算一下（" not in plain.text and "得用当地" not in plain.text
