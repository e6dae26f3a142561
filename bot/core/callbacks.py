"""Typed button payloads: one small codec for callback data instead of f-strings and split(":").

A button family is a `Callback`: a prefix (the route that handles it), optionally a fixed action word,
and typed fields. `pack` builds the data (and refuses anything over Telegram's 64 bytes); `parse` gives
the typed values back or None for anything malformed: another prefix or action, a wrong number of
fields, non-ASCII digits ("１２" or "١٢" are digits to str.isdigit but never an id of ours), a word
outside its set, data over 64 bytes. Callback data comes from the client: parse, never trust.

    VISIT_REMINDER = Callback("rm", "visit", ID)
    VISIT_REMINDER.pack(12)              -> "rm:visit:12"
    VISIT_REMINDER.parse("rm:visit:12")  -> (12,)
    VISIT_REMINDER.parse("rm:visit:x")   -> None
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 64  # Telegram's limit on callback_data
SEP = ":"

_DIGITS = re.compile(r"[0-9]{1,18}")
_HEX = re.compile(r"[0-9a-f]{1,16}")
_WORD = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_MONTH = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Field:
    """One typed field: how it is read from untrusted text (None: refused) and written."""

    name: str
    read: Callable[[str], Any | None]
    write: Callable[[Any], str] = str
    rest: bool = False  # takes the remainder of the data, separators included (must come last)


def _id(raw: str) -> int | None:
    if not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if value > 0 else None


def _count(raw: str) -> int | None:
    return int(raw) if _DIGITS.fullmatch(raw) and len(raw) < 6 else None


def _word(raw: str) -> str | None:
    return raw if _WORD.fullmatch(raw) else None


def _token(raw: str) -> str | None:
    return raw if _HEX.fullmatch(raw) else None


def _month(raw: str) -> str | None:
    return raw if _MONTH.fullmatch(raw) else None


def _text(raw: str) -> str | None:
    return raw if raw.isprintable() else None


ID = Field("id", _id)  # a positive row id, ASCII digits
COUNT = Field("count", _count)  # a small non-negative number (a page)
WORD = Field("word", _word)  # an identifier: [A-Za-z0-9_.-]
TOKEN = Field("token", _token)  # a dialog nonce: lowercase hex
MONTH = Field("month", _month)  # a calendar month, "2026-11"
REST = Field("rest", _text, rest=True)  # printable text to the end (a dialog's own button value)


def one_of(*words: str) -> Field:
    """A field that is one of a fixed set of words."""
    allowed = frozenset(words)
    return Field("/".join(words), lambda raw: raw if raw in allowed else None)


def _too_long(data: str) -> bool:
    # A character is at most 4 bytes in UTF-8: short data need not be encoded to be measured.
    return len(data) > MAX_BYTES // 4 and len(data.encode()) > MAX_BYTES


class CallbackError(ValueError):
    """A payload that cannot be packed (too long, or a value its field would not read back)."""


@dataclass(frozen=True)
class Callback:
    """One button family: prefix, an optional fixed action word, typed fields."""

    prefix: str
    action: str | None = None
    fields: tuple[Field, ...] = ()

    def __init__(self, prefix: str, action: str | None = None, *fields: Field) -> None:
        if not _WORD.fullmatch(prefix) or (action is not None and not _WORD.fullmatch(action)):
            raise CallbackError(f"bad prefix or action: {prefix!r} {action!r}")
        if any(f.rest for f in fields[:-1]):
            raise CallbackError("a rest field must come last")
        object.__setattr__(self, "prefix", prefix)
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "stem", prefix if action is None else f"{prefix}{SEP}{action}")

    stem: str = field(init=False, repr=False)  # prefix and action ("rm:visit"): all of a field-less payload

    def pack(self, *values: Any) -> str:
        """The callback data for these values; refuses what parse would refuse."""
        fields = self.fields
        if len(values) != len(fields):
            raise CallbackError(f"{self.stem}: {len(fields)} fields, {len(values)} values")
        parts = [self.stem]
        for f, v in zip(fields, values, strict=True):
            raw = f.write(v)
            if (SEP in raw and not f.rest) or f.read(raw) is None:
                raise CallbackError(f"{self.stem}: {v!r} is not a valid {f.name}")
            parts.append(raw)
        data = SEP.join(parts)
        if _too_long(data):
            raise CallbackError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def join(self, *raw: str) -> str:
        """Callback data from field texts already known good (the engine's own nonce, a dialog's constant
        values), checked for length only: the hot path of every dialog keyboard. Untrusted or computed
        values go through `pack`."""
        data = SEP.join((self.stem, *raw))
        if _too_long(data):
            raise CallbackError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def parse(self, data: str | None) -> tuple[Any, ...] | None:
        """The typed values of data, or None if it is not a well-formed payload of this family."""
        if data is None or _too_long(data):
            return None
        fields = self.fields
        if not fields:
            return () if data == self.stem else None
        stem = self.stem
        if not data.startswith(stem) or data[len(stem) : len(stem) + 1] != SEP:
            return None
        body = data[len(stem) + 1 :]
        n = len(fields)
        raw = body.split(SEP, n - 1) if fields[-1].rest else body.split(SEP)
        if len(raw) != n:
            return None
        values = []
        for f, r in zip(fields, raw, strict=True):
            v = f.read(r)
            if v is None:
                return None
            values.append(v)
        return tuple(values)

    def matches(self, data: str | None) -> bool:
        return self.parse(data) is not None


def prefix_of(data: str | None) -> str:
    """The route prefix of callback data ("" when there is none)."""
    return (data or "").partition(SEP)[0]
