"""Fuzz targets without a database: the date parser, the roster validators, the roster reader and the
policy parser. Each may refuse an input (None, BadValue, RosterError, a decline) but never crash."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.io import validate as v
from bot.io.reader import RosterError, read_roster
from bot.services.dates import parse_date
from tests.fuzz.budget import INPUTS, fuzz_settings
from tests.fuzz.strategies import ODD_DIGITS, dateish, digits, hostile, mixed, texts

TODAY = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
DATE_WORDS = st.sampled_from(["今天", "昨天", "前天", "大前天", "月", "日", "号", "年", "-", ".", "/", " ", "　"])


@fuzz_settings("dates")
@given(text=st.one_of(texts, mixed(digits, DATE_WORDS, dateish)), today=TODAY)
def test_parse_date(text: str, today: date) -> None:
    INPUTS["dates"] += 1
    result = parse_date(text, today)
    assert result is None or isinstance(result, date)


CELLS = st.one_of(
    st.none(),
    texts,
    mixed(digits, hostile, st.sampled_from(["元", "人", "组", "第", "十", "一", "二", "两", "万", ",", ".", "e", "X", "年", "月"])),
    st.integers(),
    st.floats(),
    st.decimals(allow_nan=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    # ID-shaped strings with odd digits where int() would choke
    st.text(alphabet="0123456789X" + ODD_DIGITS, min_size=17, max_size=19),
)
VALIDATORS = [
    v.text,
    v.is_blank,
    v.phone,
    v.id_number,
    lambda x: v.id_number(x, full=True),
    v.day,
    v.integer,
    lambda x: v.integer(x, lo=1, hi=99, unit="人"),
    v.year,
    v.money,
    v.latitude,
    v.longitude,
    v.yes_no,
    v.gender,
    v.status,
    v.poverty_causes,
    v.role,
]


@fuzz_settings("validators")
@given(cell=CELLS, which=st.integers(0, len(VALIDATORS) - 1))
def test_validators(cell: Any, which: int) -> None:
    INPUTS["validators"] += 1
    try:
        VALIDATORS[which](cell)
    except v.BadValue:
        pass


def _sample_xlsx() -> bytes:
    from bot.io.template import TEMPLATES_DIR

    return (TEMPLATES_DIR / "sample_roster.xlsx").read_bytes()


SAMPLE = _sample_xlsx()


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["bytes", "csv", "mutated", "rezipped"]))
    name = draw(st.sampled_from(["r.xlsx", "r.csv", "r.txt", "roster"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000)), name
    if kind == "csv":
        rows = draw(st.lists(st.lists(st.one_of(texts, digits), max_size=8), max_size=8))
        sep = draw(st.sampled_from([",", "\t", ";"]))
        enc = draw(st.sampled_from(["utf-8", "gb18030", "utf-16"]))
        header = sep.join(["户编号", "户主姓名", "村编码", "身份证号", "联系电话"])
        body = "\n".join(sep.join(r) for r in rows)
        return (header + "\n" + body).encode(enc, errors="replace"), name
    if kind == "mutated":  # a real workbook with a few bytes changed
        data = bytearray(SAMPLE)
        for pos, byte in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=8)):
            data[pos] = byte
        return bytes(data), name
    # a real workbook whose sheet XML has a span of it replaced by generated text
    with zipfile.ZipFile(io.BytesIO(SAMPLE)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    target = draw(st.sampled_from(sorted(n for n in members if n.endswith(".xml"))))
    xml = members[target]
    a = draw(st.integers(0, len(xml)))
    b = draw(st.integers(a, min(len(xml), a + 200)))
    members[target] = xml[:a] + draw(st.one_of(texts, hostile)).encode("utf-8", errors="replace") + xml[b:]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, content in members.items():
            z.writestr(n, content)
    return buf.getvalue(), name


@fuzz_settings("reader")
@given(file=files())
def test_read_roster(file: tuple[bytes, str]) -> None:
    INPUTS["reader"] += 1
    data, name = file
    try:
        read_roster(data, name)
    except RosterError:
        pass


@pytest.fixture(scope="module")
def policy() -> Any:
    from bot.core.services import policy_engine
    from bot.settings import Settings

    s = Settings(telegram_token=None)
    return policy_engine(s.knowledge_dir, s.county)


POLICY_WORDS = st.sampled_from(
    ["住院", "报销", "多少", "医保", "低保", "县医院", "呢", "三万", "2万元", "百分之八十", "?", "？", "大病", "养老", "补贴"]
)
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
DECISIONS = ("answer", "clarify", "decline", "forward")  # PolicyAnswer.decision


@fuzz_settings("policy")
@given(
    first=st.one_of(texts, mixed(POLICY_WORDS, digits, hostile)),
    second=st.one_of(texts, mixed(POLICY_WORDS, digits, hostile)),
    lang=st.sampled_from(["zh_CN", "en", "xx"]),
    topic=st.one_of(st.text(max_size=20), st.sampled_from(["hospital", "dibao", "medical"])),
)
def test_policy_answer(policy: Any, first: str, second: str, lang: str, topic: str) -> None:
    INPUTS["policy"] += 2
    a = policy.answer(first, lang, None, now=NOW)
    assert a.decision in DECISIONS
    b = policy.answer(second, lang, a.context or None, now=NOW)  # a follow-up in the first one's context
    assert b.decision in DECISIONS
    policy.answer_topic(topic, lang, b.context or None, now=NOW)


def test_decimal_guard() -> None:
    """A signalling NaN must not reach a comparison (Decimal raises on it)."""
    with pytest.raises(v.BadValue):
        v.money(Decimal("sNaN"))
