"""Question normalisation and number reading: what villagers type, turned into something the matcher can use."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import NamedTuple

from opencc import OpenCC

# Words that carry no meaning for the topic ("请问", sentence particles). Removed after follow-up detection.
_FILLERS = (
    "请问一下",
    "请问",
    "请教一下",
    "我想问一下",
    "想问一下",
    "我想问",
    "想问下",
    "问一下",
    "问下",
    "打听一下",
    "麻烦问下",
    "麻烦",
    "你好",
    "您好",
    "老师",
    "领导",
    "同志",
    "谢谢你",
    "谢谢",
    "哈哈",
    "嗯嗯",
)
# Any of _FILLERS in a text, in one search. Only a test: the fillers are then removed one after another, in
# order, as before (one alternation would remove "谢谢你" from "谢谢你好" where the loop removes "你好" first).
_ANY_FILLER = re.compile("|".join(map(re.escape, _FILLERS))).search
_PARTICLES = frozenset("啊呀哦噢喔吧啦嘛咧嘞哇嗯哈呐")
_DROP_PARTICLES = dict.fromkeys(map(ord, _PARTICLES))  # str.translate table deleting them
_FOLLOWUP_START = ("那么", "那", "还有", "要是", "如果是", "如果", "换成", "改成")
_FOLLOWUP_END = ("呢", "的话", "咋样", "怎么样")

_NON_WORD = re.compile(r"[\W_]+")


def _nfkd_ascii() -> dict[int, str]:
    """Characters whose compatibility decomposition is plain ASCII ("，" → ",", "１" → "1", "…" → "...").

    Replacing them by it changes no NFKC result: NFKC decomposes every character (the replacement is what it
    would produce; ASCII decomposes to itself and has combining class 0, so canonical reordering and
    recomposition see the same sequence), then recomposes. Any subset of these characters is equally
    safe; only the blocks people type in are scanned (Latin-1 to CJK symbols, and the half/full-width
    forms), to keep the import cheap.
    """
    table: dict[int, str] = {}
    for cp in (*range(0x80, 0x3400), *range(0xFE00, 0x10000)):
        ch = chr(cp)
        decomposed = unicodedata.normalize("NFKD", ch)
        if decomposed != ch and decomposed.isascii():
            table[cp] = decomposed
    return table


_NFKD_ASCII = _nfkd_ascii()
_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUM_RUN = re.compile(r"[0-9.零〇一二两俩三四五六七八九十百千万几]+")
_NUMERALS = frozenset("0123456789零〇一二两俩三四五六七八九十百千万几")  # _NUM_RUN's characters but "."
# A number followed by one of these counts things other than money (mu of land, years, grades...).
_NOT_MONEY_AFTER = (*"亩岁年月天日周级只头个%号点名人口次倍档张层间户套辆台分角", "块地")
_MONEY_BEFORE = (
    "花了",
    "花",
    "用了",
    "费用",
    "医药费",
    "住院费",
    "掏了",
    "交了",
    "要了",
    "总共",
    "一共",
    "共",
)


class Normalized(NamedTuple):
    """A question after normalisation (a named tuple: made for every message, a frozen dataclass costs more)."""

    text: str  # simplified, half-width, lower-case, no emoji, punctuation or filler
    followup: bool  # looks like a follow-up ("那大病呢", "县医院呢")
    amounts: tuple[float, ...] = ()  # money amounts mentioned, in yuan


class Normalizer:
    """Full/half width, traditional→simplified, emoji and filler removal. Built once at load."""

    def __init__(self) -> None:
        self._cc = OpenCC("t2s")
        self._trad = _traditional_chars()

    def simplify(self, text: str) -> str:
        """Width- and script-normalised text, punctuation kept (used for KB terms too)."""
        if not unicodedata.is_normalized("NFKC", text):
            # Full-width punctuation ("，？") sends NFKC down its slow path; replaced first by what NFKC
            # decomposes it to (pure ASCII), the text usually passes NFKC's quick check. Same result:
            # see _NFKD_ASCII.
            text = unicodedata.normalize("NFKC", text.translate(_NFKD_ASCII))
        text = text.lower()
        # OpenCC is pure Python and slow; most questions are already simplified, so convert only when needed.
        if not self._trad.isdisjoint(text):
            text = self._cc.convert(text)
        return text

    def normalize(self, question: str, *, simplified: bool = False) -> Normalized:
        """Normalise a villager's question and pick out follow-up markers and amounts of money.

        simplified: the question already went through simplify() (the engine shares it with the n-gram model).
        """
        return self.normalize_words(question if simplified else self.simplify(question))[0]

    def normalize_words(self, simple: str) -> tuple[Normalized, str]:
        """normalize() of a simplified question, and its words before fillers are removed.

        The words are the letters and digits, runs of anything else made one space: the n-gram model reads
        them too (``ngram.prepare_words``), so the engine does this regex pass once for both.
        """
        # Letters and digits only: emoji, punctuation and spaces become separators.
        words = text = " ".join(_NON_WORD.sub(" ", simple).split())
        compact = text.replace(" ", "")
        followup = compact.startswith(_FOLLOWUP_START) or compact.endswith(_FOLLOWUP_END)
        amounts = tuple(read_amounts(compact))
        if _ANY_FILLER(text) is not None:  # one search; most messages hold no filler
            for f in _FILLERS:
                if f in text:
                    text = text.replace(f, " ")
        text = text.translate(_DROP_PARTICLES)
        text = " ".join(text.split())
        return Normalized(text=text, followup=followup, amounts=amounts), words


def _traditional_chars() -> frozenset[str]:
    """Characters OpenCC's t2s dictionary changes: the trigger for running the (slow) converter."""
    import opencc

    chars: set[str] = set()
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    with path.open(encoding="utf-8") as f:
        for line in f:
            key, _, values = line.rstrip("\n").partition("\t")
            # A character that is also its own simplified form must not trigger conversion needlessly.
            if len(key) == 1 and key not in values.split():
                chars.add(key)
    return frozenset(chars)


def parse_number(run: str) -> float | None:
    """Read "3千5", "两万", "一万二", "2.5万", "8000", "三十万" as a number; None when unreadable ("十几万")."""
    if not run or "几" in run:
        return None
    total = 0.0  # completed 万 groups
    section = 0.0  # inside the current 万 group
    num: float | None = None
    last_unit = 1
    after_unit = False
    i = 0
    while i < len(run):
        ch = run[i]
        if ch.isdigit() or ch == ".":
            j = i
            while j < len(run) and (run[j].isdigit() or run[j] == "."):
                j += 1
            try:
                num = float(run[i:j])
            except ValueError:
                return None
            i = j
            continue
        if ch in _CN_DIGITS:
            num = float(_CN_DIGITS[ch])
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            section += (num if num is not None else 1.0) * unit
            num, last_unit = None, unit
            after_unit = True
            i += 1
            continue
        elif ch == "万":
            total += (section + (num if num is not None else (0.0 if section else 1.0))) * 10000
            section, num, last_unit = 0.0, None, 10000
            after_unit = True
            i += 1
            continue
        else:
            return None
        i += 1
    if num is not None:
        if after_unit and last_unit > 1 and num < 10 and float(num).is_integer():
            # "3千5" is 3500 and "一万二" is 12000: a lone digit after a unit means the next unit down.
            num = num * last_unit / 10
        section += num
    value = total + section
    return value if value > 0 else None


def read_amounts(text: str) -> list[float]:
    """Money amounts in a question: numbers with 万/千 or of 100 and more, not counting mu, years, grades."""
    out: list[float] = []
    if _NUMERALS.isdisjoint(text):
        return out  # no digit or numeral: no run for the search below to find (a lone "." is skipped)
    for m in _NUM_RUN.finditer(text):
        run = m.group(0).strip(".")
        if not run or run in {"一", "两", "二", "十", "百", "千", "万"}:
            continue
        before = text[max(0, m.start() - 3) : m.start()]
        after = text[m.end() : m.end() + 2]
        if before.endswith("百分之") or after.startswith(_NOT_MONEY_AFTER):
            continue
        # Money only with 万/千, a money word or plain digits: checked before reading the number (no side
        # effects, the same amounts).
        if not (
            "万" in run
            or "千" in run
            or after.startswith(("元", "块"))
            or before.endswith(_MONEY_BEFORE)
            or run.isdigit()
        ):
            continue
        value = parse_number(run)
        if value is not None and value >= 100:
            out.append(value)
    return out
