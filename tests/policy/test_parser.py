"""Normalising, numbers, typos, follow-ups, clarifying and the answer text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.policy.engine import PolicyEngine
from bot.policy.text import Normalizer, parse_number, read_amounts

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("run", "value"),
    [
        ("两万", 20000),
        ("3千5", 3500),
        ("一万二", 12000),
        ("2.5万", 25000),
        ("三十万", 300000),
        ("8000", 8000),
        ("一万二千", 12000),
        ("两万五", 25000),
        ("一百二十", 120),
        ("十几万", None),
    ],
)
def test_numbers(run: str, value: float | None) -> None:
    assert parse_number(run) == value


def test_amounts_skip_land_years_and_percentages() -> None:
    assert read_amounts("我妈住院花了两万能报多少") == [20000]
    assert read_amounts("种了五十亩地有补贴没") == []
    assert read_amounts("60岁能领多少") == []
    assert read_amounts("能报百分之三十吗") == []
    assert read_amounts("wifi密码多少") == []


def test_normaliser_width_script_emoji_filler() -> None:
    n = Normalizer().normalize("請問，醫保費今年漲了沒有😭！！ＡＢＣ")
    assert n.text == "医保费今年涨了没有 abc"
    assert Normalizer().normalize("那大病呢？").followup


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("底保咋个申请", "welfare.dibao"),
        ("医报一年交好多", "medical.enrollment"),
        ("雨路计划", "education.rain_dew"),
        ("住院費用報銷比例", "medical.inpatient"),
        ("殘疾人護理補貼", "welfare.disability"),
    ],
)
def test_typos_and_traditional(engine: PolicyEngine, question: str, topic: str) -> None:
    a = engine.answer(question, now=NOW)
    # The keyword parser's topic leads; where the n-gram model reads it otherwise it is a question back.
    assert a.decision in ("answer", "clarify") and a.topic == topic


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("雨露计咋申请", "education.rain_dew"),
        ("危房改要啥条件", "subsidy.housing"),  # clipped formal names
        ("新农合报销多少钱", "medical.inpatient"),
        ("合作医疗一年多少钱", "medical.enrollment"),  # "!报" exclusion
        ("拖拉机补贴多少", "subsidy.machinery"),
    ],
)
def test_clipped_names_and_combos(engine: PolicyEngine, question: str, topic: str) -> None:
    a = engine.answer(question, now=NOW)
    # The keyword parser's topic leads; where the n-gram model reads it otherwise it is a question back.
    assert a.decision in ("answer", "clarify") and a.topic == topic


def test_objects_need_a_benefit_word(engine: PolicyEngine) -> None:
    for q in ("拖拉机坏了去哪修", "大学志愿怎么填", "厕所在哪里"):
        assert engine.answer(q, now=NOW).decision == "decline", q


def test_homophone_needs_one_right_character(engine: PolicyEngine) -> None:
    # "一包" sounds like 医保 but shares no character with it: not a typo of it.
    assert engine.answer("买一包烟多少钱", now=NOW).decision == "decline"


def test_followups_keep_context_for_a_few_minutes(county_engine: PolicyEngine) -> None:
    first = county_engine.answer("我妈住院花了两万能报多少", now=NOW)
    assert first.topic == "medical.inpatient"
    ctx = json.loads(json.dumps(first.context))  # the caller stores it as JSON
    second = county_engine.answer("县医院呢", context=ctx, now=NOW + timedelta(minutes=2))
    assert (second.decision, second.topic) == ("answer", "medical.inpatient")
    assert "县级医院：（20000 − 起付线500）× 75% = 14625元" in second.text
    assert "乡镇卫生院：" not in second.text  # only the level asked about
    third = county_engine.answer("那大病呢", context=second.context, now=NOW + timedelta(minutes=3))
    assert third.topic == "medical.serious_illness"
    new_bill = county_engine.answer("三万呢", context=second.context, now=NOW + timedelta(minutes=3))
    assert new_bill.topic == "medical.inpatient"
    assert "县级医院：（30000 − 起付线500）× 75% = 22125元" in new_bill.text  # level kept, bill replaced
    stale = county_engine.answer("县医院呢", context=second.context, now=NOW + timedelta(minutes=9))
    assert stale.decision == "decline"
    assert county_engine.answer("县医院呢", now=NOW).decision == "decline"


def test_clarify_then_button(engine: PolicyEngine) -> None:
    a = engine.answer("搬迁户找工作有帮扶吗", now=NOW)
    assert a.decision == "clarify"
    assert {t for t, _ in a.options} == {"subsidy.relocation", "employment.support"}
    assert all(label for _, label in a.options)
    picked = engine.answer_topic("employment.support", context=a.context, now=NOW)
    assert (picked.decision, picked.topic) == ("answer", "employment.support")
    forged = engine.answer_topic("medical.nonsense", context=a.context, now=NOW)
    assert forged.decision == "decline" and forged.topic == "none"
    assert "employment.support" in engine.topic_ids() and "medical.nonsense" not in engine.topic_ids()


def test_out_of_scope_is_declined(engine: PolicyEngine) -> None:
    for q in ("明天天气怎么样", "我想卖两头猪", "话费怎么充", "吃了没", "", "😀😀"):
        a = engine.answer(q, now=NOW)
        assert (a.decision, a.topic, a.options) == ("decline", "none", [])
        assert 0.0 <= a.confidence <= 1.0


def test_details_name_document_and_the_figures_year_only_when_figures_are_shown(engine: PolicyEngine) -> None:
    for tid, topic in engine.kb.topics.items():
        zh = engine.answer_topic(tid, "zh_CN", now=NOW).detail
        en = engine.answer_topic(tid, "en", now=NOW).detail
        assert str(topic.document["year"]) in zh
        assert "{" not in zh and "{" not in en, tid  # every parameter was filled
        shows = any(fig for _, fig in engine._body_lines(topic, "zh_CN"))
        assert ("全国" in zh and "年的标准" in zh and "以当地主管部门" in zh) == shows, tid
        assert ("national figures for" in en and "final word" in en) == shows, tid
    # A topic whose answer shows no figure has no "figures are for year X" footer.
    assert not any(fig for _, fig in engine._body_lines(engine.kb.topics["medical.settlement"], "zh_CN"))


def test_unconfirmed_and_local_figures_are_labelled(
    engine: PolicyEngine, county_engine: PolicyEngine
) -> None:
    machinery = engine.answer_topic("subsidy.machinery", now=NOW).detail
    assert "50000元（这是2021年的数，现在可能已调整" in machinery  # older than three years: not current
    farmland = engine.answer_topic("subsidy.farmland", now=NOW).detail
    assert "各地不一样，请看当地通知" in farmland  # VR: no national figure
    local = county_engine.answer_topic("subsidy.farmland", now=NOW).detail
    assert "100元/亩（示例数字，不是真实标准）" in local
    assert "示例县（虚构）" in local


def test_text_is_html_escaped(tmp_path, engine: PolicyEngine) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from tests.policy.conftest import KNOWLEDGE

    kb = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, kb)
    path = kb / "policies" / "welfare.dibao.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("农村低保是给", "<b>低保</b> & 是给"), encoding="utf-8"
    )
    a = PolicyEngine.load(kb).answer_topic("welfare.dibao", now=NOW)
    assert "&lt;b&gt;低保&lt;/b&gt; &amp; 是给" in a.text
    assert "<b>" not in a.text


def test_tokenizer_is_loaded_at_start(engine: PolicyEngine) -> None:
    tok = engine.matcher.tokenizer
    assert tok.initialized
    assert "起付线" in tok.FREQ  # the KB dictionary is in the private tokenizer
    import jieba

    assert tok is not jieba.dt


def test_inlined_segmentation_matches_jieba(engine: PolicyEngine) -> None:
    from tests.policy.conftest import read_set

    for _, q in read_set("devset.tsv") + read_set("freshset.tsv"):
        text = engine.normalizer.normalize(q).text
        expected = [w for w in engine.matcher.tokenizer.lcut(text, HMM=False) if w != " "]
        assert engine.matcher.tokens(text) == expected, q
