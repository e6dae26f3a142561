"""Resident ID numbers (身份证号) typed into free text are masked before anything is stored: a villager's
policy question, a cadre's reply, a visit note, a difficulty and its resolution. Like the roster
(`bot.io.validate.mask_id`), only the last four characters are kept.

Matched: 18-character numbers (17 digits and a digit or X) and the old 15-digit ones, also written
with spaces between the digits ("1101 0119 9003 0712 34") or in full-width digits, whose birth-date
part is a real date (so a long village or household code is left alone). Never matched: phone numbers
(11 digits), which cadres need, nor any run of digits longer or shorter than an ID.
"""

from __future__ import annotations

import re
from datetime import date

_X = "[\\dXxＸｘ]"
# Written together: a run of exactly 18 (or 15) digits; whatever follows a space is another matter.
_ID_RE = re.compile(rf"(?<!\d)(\d{{17}}{_X}|\d{{15}})(?![\dXxＸｘ])")
# Written in groups with spaces: the whole spaced run must be the number (so two phone numbers side
# by side never make one).
_SEP = "[ \u3000]?"
_SPACED_RE = re.compile(
    rf"(?<!\d)(?<!\d[ \u3000])(\d(?:{_SEP}\d){{14}}(?:(?:{_SEP}\d){{2}}{_SEP}{_X})?)(?![ \u3000]?[\dXxＸｘ])"
)
_SPACES = str.maketrans("", "", " \u3000")
_RUN_RE = re.compile(rf"\d(?:{_SEP}\d){{14}}")  # 15 digits, maybe spaced: the shortest ID


def _birth_ok(y: str, m: str, d: str) -> bool:
    try:
        return 1900 <= int(y) <= 2100 and date(int(y), int(m), int(d)) is not None
    except ValueError:
        return False


def _mask(m: re.Match[str]) -> str:
    raw = m.group(1)
    s = raw.translate(_SPACES)
    if len(s) == 18:
        ok = _birth_ok(s[6:10], s[10:12], s[12:14])
    else:  # 15 digits: 6 area, YYMMDD, 3 sequence (issued before 1999, all born in the 1900s)
        ok = _birth_ok("19" + s[6:8], s[8:10], s[10:12])
    if not ok:
        return raw
    tail = "".join(str(int(c)) if c.isdigit() else "X" for c in s[-4:])
    return "*" * (len(s) - 4) + tail


def mask_ids(text: str) -> str:
    """text with every resident ID number in it masked to its last four characters."""
    if not text or _RUN_RE.search(text) is None:  # the common case (one C-level scan): nothing to mask
        return text
    text = _ID_RE.sub(_mask, text)
    if " " in text or "\u3000" in text:
        text = _SPACED_RE.sub(_mask, text)
    return text


def stored_text(text: str) -> str:
    """Free text as it may be stored: ID numbers masked, NUL removed. PostgreSQL's text and jsonb cannot
    hold NUL (every save with one failed; found by tests/fuzz). Normalising control characters at the
    edge is issue 10 item 16 (t-chatsec); this is the minimal guard where free text is stored."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return mask_ids(text)
