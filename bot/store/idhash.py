"""Resident ID numbers are never stored in full for matching: a keyed hash (HMAC-SHA256 with
`Settings.id_hash_key`) finds the same person in a department's list, the masked form is for display."""

from __future__ import annotations

import hashlib
import hmac
import re

_ID_RE = re.compile(r"^\d{17}[\dX]$")


def normalize_id(number: str) -> str | None:
    """The 18-character form (upper-case X, no spaces), or None when it is not one."""
    s = (number or "").strip().upper().replace(" ", "")
    return s if _ID_RE.match(s) else None


def id_hash(number: str, key: str) -> str | None:
    """HMAC-SHA256 (hex) of the normalized ID number, or None for no key or no valid number."""
    s = normalize_id(number)
    if s is None or not key:
        return None
    return hmac.new(key.encode(), s.encode(), hashlib.sha256).hexdigest()


def mask_id(number: str) -> str:
    """Only the last four characters: enough to tell people apart, useless to anyone else."""
    s = (number or "").strip().upper()
    return "*" * 14 + s[-4:]
