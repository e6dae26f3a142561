"""Stray input: a lone number or an "ok" typed where it means nothing (after a dialog has finished,
or where buttons are expected). It is answered with a hint, never taken as a policy question or saved
as a record's text."""

from __future__ import annotations

import unicodedata

# Acknowledgements that end a conversation rather than start one.
ACK_WORDS = frozenset(
    {
        "好", "好的", "好滴", "好嘞", "好吧", "嗯", "嗯嗯", "哦", "噢", "行", "可以", "收到", "知道了", "明白",
        "是", "是的", "对", "对的", "ok", "okay", "k", "y", "yes", "n", "no", "嗯好", "好好",
    }
)  # fmt: skip
_TRIM = "。.,，!！?？~～ 　、…"


def normalize(text: str) -> str:
    """Full-width folded to ASCII (１→1, ＯＫ→ok), trailing punctuation and spaces gone, lower case."""
    return unicodedata.normalize("NFKC", text).strip().strip(_TRIM).lower()


def is_number(text: str) -> bool:
    """A bare number such as "1", "２" or "3." (what someone types to pick the n-th button)."""
    s = normalize(text)
    return 0 < len(s) <= 4 and s.isdigit()


def is_stray(text: str) -> bool:
    """A lone number or an acknowledgement: nothing to answer or to forward."""
    s = normalize(text)
    return not s or is_number(s) or s in ACK_WORDS
