"""Shortcuts taken for speed or memory give exactly what the plain computation gives (issue 16).

The golden corpus (test_golden.py) checks whole answers; these check the pieces on inputs the corpus does
not hold (any Unicode, combining marks, private-use characters, hostile mixes).
"""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from bot.policy.engine import PolicyEngine
from bot.policy.matcher import TYPO_FACTOR, W_COMBO, W_OBJECT_INTENT
from bot.policy.ngram import MODEL_FILE, NgramModel, _np_sum
from bot.policy.text import (
    _MONEY_BEFORE,
    _NFKD_ASCII,
    _NOT_MONEY_AFTER,
    _NUM_RUN,
    Normalizer,
    parse_number,
    read_amounts,
)


def _plain_simplify(norm: Normalizer, text: str) -> str:
    """Normalizer.simplify as it was: NFKC of the raw text, lower case, OpenCC only when needed."""
    text = unicodedata.normalize("NFKC", text).lower()
    if not norm._trad.isdisjoint(text):
        text = norm._cc.convert(text)
    return text


@pytest.mark.parametrize(
    "text",
    [
        "我妈住院，花了２万？能报多少！！",
        "ｅ\u0301 full width e then a combining acute",  # NFKC composes across the replaced character
        "Ａ\u030a",  # Å from a full-width A
        "…１２３，４５６",
        "\u3000医保\u00a0交多少",
        "ﬁ ① ² ㎏ ℃",
        "\ue000\U000f0000私用区",  # private-use characters stay as they are
        "醫保報銷，要帶什麼材料？",
        "",
    ],
)
def test_simplify_is_nfkc_of_the_raw_text(text: str) -> None:
    norm = Normalizer()
    assert norm.simplify(text) == _plain_simplify(norm, text)


def test_simplify_is_nfkc_of_the_raw_text_on_random_unicode() -> None:
    norm = Normalizer()
    rng = random.Random(16)
    # Every replaced character, with combining marks, CJK, Hangul (composes) and other symbols around them.
    pool = [chr(cp) for cp in _NFKD_ASCII]
    pool += [chr(cp) for cp in (*range(0x300, 0x370), *range(0x1100, 0x1176), *range(0xAC00, 0xAC20))]
    pool += [chr(cp) for cp in (*range(0x20, 0x180), *range(0x2000, 0x2100), *range(0x4E00, 0x4E80))]
    pool += ["醫", "報", "銷", "\u3000", "\ufeff", "\u200b"]
    for _ in range(20_000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 10)))
        assert norm.simplify(text) == _plain_simplify(norm, text), ascii(text)


def test_the_replacement_table_maps_to_the_nfkd_ascii_form() -> None:
    assert _NFKD_ASCII[ord("，")] == ","
    assert _NFKD_ASCII[ord("１")] == "1"
    assert ord("医") not in _NFKD_ASCII
    for cp, ascii_form in _NFKD_ASCII.items():
        assert unicodedata.normalize("NFKD", chr(cp)) == ascii_form and ascii_form.isascii()


def test_ngram_heads_share_the_stacked_weights_with_the_file_values() -> None:
    model = NgramModel.load(MODEL_FILE)
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        kind_w = z["kind_w"].astype(np.float32)
        topic_w = z["topic_w"].astype(np.float32)
    assert np.array_equal(model.kind.weights, kind_w)
    assert np.array_equal(model.topic.weights, topic_w)
    assert np.shares_memory(model.kind.weights, model._weights)
    assert np.shares_memory(model.topic.weights, model._weights)


def test_pinyin_syllables_are_one_object_each(engine: PolicyEngine) -> None:
    table = engine.matcher._pinyin
    assert len({id(py) for py in table.values()}) == len(set(table.values())) < 1000 < len(table)


def test_scores_sum_typo_object_and_combo_weights_as_before(engine: PolicyEngine) -> None:
    # The same float sums, in the same order, as the defaultdict the scores used to be.
    matcher = engine.matcher
    scores, hits = matcher.score("医报一年交多少")
    assert [(h.term, h.typo) for h in hits] == [("一年交", ""), ("医保", "医报")]
    # exact hint, then the typo at 0.9, then the combo 医保 + 交 read from the corrected text
    assert scores["medical.enrollment"] == 1.0 + 1.0 * TYPO_FACTOR + W_COMBO
    assert scores["medical.inpatient"] == matcher.index["医保"]["medical.inpatient"] * TYPO_FACTOR
    # An object word counts more only when the question asks for a benefit (补贴), once per topic.
    assert matcher.score("买拖拉机有补贴吗")[0]["subsidy.machinery"] == 1.0 + W_OBJECT_INTENT
    assert matcher.score("拖拉机拖拉机有补贴吗")[0]["subsidy.machinery"] == 1.0 + W_OBJECT_INTENT
    assert matcher.score("拖拉机坏了去哪修")[0] == {"subsidy.machinery": 1.0}
    assert matcher.score("今天天气") == ({}, [])


@pytest.mark.parametrize("size", [*range(1, 40), 64, 127, 128, 129, 300])
def test_pairwise_sum_is_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    for scale in (1e-300, 1e-3, 1.0, 1e12):
        for _ in range(200):
            values = rng.exponential(scale, size)
            assert _np_sum(values.tolist()) == np.add.reduce(values), (size, scale)


def test_softmax_matches_the_plain_numpy_softmax_to_the_bit() -> None:
    model = NgramModel.load(MODEL_FILE)
    k = len(model.kind.classes)
    for prepared in ["我妈住院花了0万能报多少", "谢谢", "", "x", "医保 交多少 钱", "公路坏了 谁管"]:
        kinds, topics = model.predict(prepared)
        feats = model._features(prepared)
        if feats is None:
            z = model._bias.copy()
        else:
            ids, vals = feats
            z = (vals @ model._weights[ids]).astype(np.float64) + model._bias
        for head, got in ((z[:k], kinds), (z[k:], topics)):
            e = np.exp(head - head.max())
            e /= e.sum()
            assert list(got.values()) == e.tolist(), prepared


def _read_amounts_as_before(text: str) -> list[float]:
    """read_amounts before the speed work: the number read first, then the money tests."""
    out: list[float] = []
    for m in _NUM_RUN.finditer(text):
        run = m.group(0).strip(".")
        if not run or run in {"一", "两", "二", "十", "百", "千", "万"}:
            continue
        before = text[max(0, m.start() - 3) : m.start()]
        after = text[m.end() : m.end() + 2]
        if before.endswith("百分之") or after.startswith(_NOT_MONEY_AFTER):
            continue
        value = parse_number(run)
        if value is None:
            continue
        big_unit = any(u in run for u in "万千")
        money_word = after.startswith(("元", "块")) or before.endswith(_MONEY_BEFORE)
        if value >= 100 and (big_unit or money_word or run.isdigit()):
            out.append(value)
    return out


def test_amounts_are_read_as_before_on_random_number_talk() -> None:
    rng = random.Random(12)
    pieces = [
        *"0123456789.零〇一二两俩三四五六七八九十百千万几",
        "元",
        "块",
        "花了",
        "共",
        "百分之",
        "亩",
        "岁",
        "住院",
        "医保",
        "%",
    ]
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        assert read_amounts(text) == _read_amounts_as_before(text), text


def _prefixes_as_before(matcher: object, text: str, covered: list[bool]) -> list[tuple[str, str]]:
    """TopicMatcher._prefixes before the speed work: every position, left to right."""
    prefixes = matcher._prefix_index  # type: ignore[attr-defined]
    out: list[tuple[str, str]] = []
    i = 0
    while i + 3 <= len(text):
        term = prefixes.get(text[i : i + 3])
        if term is not None and not any(covered[i : i + 3]):
            out.append((term, text[i : i + 3]))
            covered[i : i + 3] = [True, True, True]
            i += 3
        else:
            i += 1
    return out


def test_clipped_names_are_found_as_before(engine: PolicyEngine) -> None:
    matcher = engine.matcher
    starts = sorted(matcher._prefix_index)
    assert "公益岗" in starts or "雨露计" in starts
    rng = random.Random(3)
    pieces = [*starts[:40], *"的了我要公益岗雨露计危房改补", "公公益岗", "雨雨露计划"]
    for _ in range(5_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        covered = [rng.random() < 0.2 for _ in text]
        before = list(covered)
        expected = _prefixes_as_before(matcher, text, before)
        got = matcher._prefixes(text, covered)
        assert [(h.term, h.typo) for h in got] == expected, text
        assert covered == before, text
