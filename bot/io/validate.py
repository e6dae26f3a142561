"""Cell parsers for roster files: phones, ID-card numbers, dates, numbers, yes/no and enum labels.

Each parser takes a raw cell value (str, int, float, date, datetime or None) and returns the clean
value or raises `BadValue` carrying a message key of the io catalog, so the caller can say which sheet,
row and column is wrong in the reader's language.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import mul
from typing import Any

from bot.store.enums import HOUSEHOLD_STATUS_ZH, POVERTY_CAUSE_ZH, HouseholdStatus, PovertyCause, Role


class BadValue(ValueError):
    """A cell value that does not parse; key is an io.po message id, args its format fields."""

    def __init__(self, key: str, **args: object) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
# Area codes: 010 and 02x are three digits, every other one four; local numbers 7-8 digits.
LANDLINE_RE = re.compile(r"^(0(?:10|2\d|[3-9]\d{2}))-?(\d{7,8})(?:-(\d{1,6}))?$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
MASKED_ID_RE = re.compile(r"^\*{14}\d{3}[\dX]$")
EXCEL_EPOCH = date(1899, 12, 30)


def text(value: Any) -> str:
    """A cell as trimmed text; numbers that Excel stored as floats lose their '.0'."""
    if value is None:
        return ""
    if type(value) is str:  # the common case first: this runs for every cell of a roster
        return (value.replace("\u3000", " ") if "\u3000" in value else value).strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).replace("\u3000", " ").strip()


def is_blank(value: Any) -> bool:
    return text(value) == ""


_PHONE_SPLIT = re.compile(r"[/／,，、;；]|\s{2,}")


def phone(value: Any) -> str | None:
    """A mainland mobile (11 digits) or a landline normalised to 0AAA-NNNNNNN[-EXT]; None when blank.

    Rosters often list two numbers in one cell ("138…/0871-…"): the first valid one is kept.
    """
    s = text(value)
    if not s:
        return None
    parts = [p for p in _PHONE_SPLIT.split(s) if p.strip()]
    if len(parts) > 1:
        for part in parts:
            try:
                return _one_phone(part)
            except BadValue:
                continue
        raise BadValue("io.err.phone", value=s)
    return _one_phone(s)


def _one_phone(s: str) -> str:
    s = re.sub(r"[\s()（）]", "", s).replace("—", "-").replace("－", "-")
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("86") and len(s) == 13:
        s = s[2:]
    digits = s.replace("-", "")
    if MOBILE_RE.match(digits):
        return digits
    m = LANDLINE_RE.match(s) or LANDLINE_RE.match(digits)
    if m and not s.startswith("1"):
        area, local, ext = m.groups()
        return f"{area}-{local}" + (f"-{ext}" if ext else "")
    raise BadValue("io.err.phone", value=s)


def id_checksum_ok(number: str) -> bool:
    """GB 11643: the 18th character is the ISO 7064 MOD 11-2 check of the first 17 digits."""
    if len(number) != 18 or not (number[:17].isascii() and number[:17].isdigit()):
        return False
    total = sum(map(mul, map(int, number[:17]), ID_WEIGHTS))
    return ID_CHECK[total % 11] == number[17].upper()


def mask_id(number: str) -> str:
    """Keep only the last four characters: enough to tell people apart on a visit."""
    return "*" * 14 + number[-4:]


def id_number(value: Any, *, full: bool = False) -> str | None:
    """An 18-digit resident ID checked against GB 11643 and its birth date; masked unless full.

    An already-masked number (as our own exports write it) is accepted as it is, so exports re-import.
    """
    s = text(value).upper().replace(" ", "")
    if not s:
        return None
    if MASKED_ID_RE.match(s):
        return s
    if not s.isascii() or len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        raise BadValue("io.err.id_format", value=s)
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise BadValue("io.err.id_birth", value=s) from None
    if not id_checksum_ok(s):
        raise BadValue("io.err.id_checksum", value=s)
    return s if full else mask_id(s)


_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def day(value: Any) -> date | None:
    """A date from an Excel date cell, an Excel serial number or text such as 2026-11-03, 2026年11月3日."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 20000 <= value <= 80000:  # Excel serial day numbers, 1954..2119
            return EXCEL_EPOCH + timedelta(days=int(value))
        s = text(value)
    else:
        s = text(value)
    if not s:
        return None
    m = _DATE_RE.match(s)
    if m is None and re.fullmatch(r"\d{8}", s):
        m = re.match(r"(\d{4})(\d{2})(\d{2})", s)
    if m is None:
        raise BadValue("io.err.date", value=s)
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise BadValue("io.err.date", value=s) from None


_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}


def _cn_number(s: str) -> int:
    """一 … 九十九 written in Chinese numerals (村民小组 are often 三组, 十二组)."""
    if "十" not in s:
        n = 0
        for c in s:
            n = n * 10 + _CN_DIGITS[c]
        return n
    tens, _, ones = s.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        raise KeyError(s)  # 十十, 二二十: no number
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def integer(value: Any, *, lo: int = 0, hi: int = 10**9, unit: str = "") -> int | None:
    """A whole number in [lo, hi]; a trailing unit such as 人 or 组 is tolerated."""
    if type(value) is int:  # what a number cell reads as: skip the text handling
        if not lo <= value <= hi:
            raise BadValue("io.err.integer_range", value=value, lo=lo, hi=hi)
        return value
    s = text(value)
    if not s:
        return None
    for u in (unit, "人", "组", "口", "年"):
        if u and s.endswith(u):
            s = s[: -len(u)].strip()
    s = s.removeprefix("第")
    if s and all(c in _CN_DIGITS for c in s):
        try:
            s = str(_cn_number(s))
        except KeyError:  # 十十, 二二十: numerals that spell no number (found by tests/fuzz)
            raise BadValue("io.err.integer", value=text(value)) from None
    try:
        f = float(s)
    except ValueError:
        raise BadValue("io.err.integer", value=text(value)) from None
    if not f.is_integer() or not lo <= f <= hi:
        raise BadValue("io.err.integer_range", value=text(value), lo=lo, hi=hi)
    return int(f)


def year(value: Any) -> int | None:
    """A year, also taken from a date or a 1990-05 style birth month."""
    if isinstance(value, datetime | date):
        return value.year
    s = text(value)
    if not s:
        return None
    m = re.match(r"^(\d{4})(?:\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?)?\s*月?)?$", s)
    if m is None:
        raise BadValue("io.err.year", value=s)
    y = int(m.group(1))
    if not 1900 <= y <= 2100:
        raise BadValue("io.err.year", value=s)
    return y


def money(value: Any) -> Decimal | None:
    """An amount in yuan with two decimals; thousands separators and a trailing 元 are tolerated."""
    s = text(value).replace(",", "").replace("，", "").removesuffix("元").strip()
    if not s:
        return None
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise BadValue("io.err.money", value=text(value)) from None
    if not d.is_finite() or d < 0 or d >= Decimal("1e10"):
        raise BadValue("io.err.money", value=text(value))
    return d.quantize(Decimal("0.01"))


def coordinate(value: Any, *, lo: float, hi: float) -> float | None:
    """A latitude or longitude in decimal degrees within [lo, hi]."""
    s = text(value)
    if not s:
        return None
    try:
        f = float(s)
    except ValueError:
        raise BadValue("io.err.coordinate", value=s) from None
    if not lo <= f <= hi:
        raise BadValue("io.err.coordinate", value=s)
    return f


def latitude(value: Any) -> float | None:
    return coordinate(value, lo=-90, hi=90)


def longitude(value: Any) -> float | None:
    return coordinate(value, lo=-180, hi=180)


YES = {"是", "有", "y", "yes", "true", "1", "√", "✓", "对"}
NO = {"否", "无", "n", "no", "false", "0", "×", "不是"}


def yes_no(value: Any) -> bool | None:
    s = text(value).lower()
    if not s:
        return None
    if s in YES:
        return True
    if s in NO:
        return False
    raise BadValue("io.err.yes_no", value=text(value))


def gender(value: Any) -> str | None:
    s = text(value)
    if not s:
        return None
    if s in ("男", "男性", "m", "M"):
        return "男"
    if s in ("女", "女性", "f", "F"):
        return "女"
    raise BadValue("io.err.gender", value=s)


STATUS_ALIASES: dict[str, HouseholdStatus] = {
    **{label: status for status, label in HOUSEHOLD_STATUS_ZH.items()},
    **{status.value: status for status in HouseholdStatus},
    # Old rosters' words still import (as the old status), though no template offers them.
    "未脱贫": HouseholdStatus.POOR,
    "贫困": HouseholdStatus.POOR,
    "贫困户": HouseholdStatus.POOR,
    "未脱贫户": HouseholdStatus.POOR,
    "脱贫": HouseholdStatus.LIFTED,
    "已脱贫": HouseholdStatus.LIFTED,
    "已脱贫户": HouseholdStatus.LIFTED,
    "稳定脱贫": HouseholdStatus.LIFTED,
    "脱贫不享受政策": HouseholdStatus.LIFTED,
    "脱贫享受政策": HouseholdStatus.LIFTED,
    "监测对象": HouseholdStatus.MONITORED,
    "脱贫不稳定户": HouseholdStatus.MONITORED,
    "边缘易致贫户": HouseholdStatus.MONITORED,
    "突发严重困难户": HouseholdStatus.MONITORED,
    "防返贫监测户": HouseholdStatus.MONITORED,
    "监测户": HouseholdStatus.MONITORED,
    "一般": HouseholdStatus.GENERAL,
    "非贫困户": HouseholdStatus.GENERAL,
}


def status(value: Any) -> str | None:
    s = text(value)
    if not s:
        return None
    found = STATUS_ALIASES.get(s) or STATUS_ALIASES.get(s.lower())
    if found is None:
        raise BadValue("io.err.status", value=s, allowed="、".join(HOUSEHOLD_STATUS_ZH.values()))
    return found.value


CAUSE_ALIASES: dict[str, PovertyCause] = {
    **{label: cause for cause, label in POVERTY_CAUSE_ZH.items()},
    **{cause.value: cause for cause in PovertyCause},
    "病": PovertyCause.ILLNESS,
    "残": PovertyCause.DISABILITY,
    "学": PovertyCause.SCHOOLING,
    "灾": PovertyCause.DISASTER,
    "缺地": PovertyCause.LAND,
    "缺耕地": PovertyCause.LAND,
    "缺劳动力": PovertyCause.LABOUR,
    "缺技能": PovertyCause.SKILLS,
    "交通落后": PovertyCause.TRANSPORT,
    "交通条件差": PovertyCause.TRANSPORT,
    "发展动力不足": PovertyCause.MOTIVATION,
    "自身动力不足": PovertyCause.MOTIVATION,
    "内生动力不足": PovertyCause.MOTIVATION,
    "缺乏内生动力": PovertyCause.MOTIVATION,
}
_CAUSE_SPLIT = re.compile(r"[、,，;；/\\|\s]+|和|及")


def poverty_causes(value: Any) -> list[str]:
    """One or more causes of poverty, separated by 、，; etc.; 因病致贫 and 因病 are the same cause."""
    s = text(value)
    out: list[str] = []
    for part in _CAUSE_SPLIT.split(s):
        if not part:
            continue
        label = part.removesuffix("致贫") if part.endswith("致贫") and len(part) > 2 else part
        cause = CAUSE_ALIASES.get(label) or CAUSE_ALIASES.get(part) or CAUSE_ALIASES.get(label.lower())
        if cause is None:
            raise BadValue("io.err.cause", value=part, allowed="、".join(POVERTY_CAUSE_ZH.values()))
        if cause.value not in out:
            out.append(cause.value)
    return out


ROLE_ALIASES: dict[str, Role] = {
    "帮扶干部": Role.CADRE,
    "干部": Role.CADRE,
    "帮扶责任人": Role.CADRE,
    "队员": Role.CADRE,
    "工作队员": Role.CADRE,
    "工作队长": Role.LEADER,
    "队长": Role.LEADER,
    "第一书记": Role.LEADER,
    "第一书记兼工作队长": Role.LEADER,
    "乡镇联系人": Role.TOWNSHIP,
    "乡镇干部": Role.TOWNSHIP,
    "包村干部": Role.TOWNSHIP,
    "县级干部": Role.COUNTY,
    "县乡村振兴局": Role.COUNTY,
    "管理员": Role.ADMIN,
    **{r.value: r for r in Role if r is not Role.VILLAGER},
}

ROLE_ZH: dict[str, str] = {
    Role.CADRE: "帮扶干部",
    Role.LEADER: "工作队长",
    Role.TOWNSHIP: "乡镇联系人",
    Role.COUNTY: "县级干部",
    Role.ADMIN: "管理员",
}


def role(value: Any) -> str | None:
    s = text(value)
    if not s:
        return None
    found = ROLE_ALIASES.get(s) or ROLE_ALIASES.get(s.lower())
    if found is None:
        raise BadValue("io.err.role", value=s, allowed="、".join(ROLE_ZH.values()))
    return found.value
