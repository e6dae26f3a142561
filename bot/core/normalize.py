"""Hostile text made harmless once, at the edge (issue 10 #16).

Everything a user typed or a client sent (text, command arguments, callback data, contact names and
phones, the speaker's name, file names) is cleaned before the core looks at it: C0 control characters
other than newline and tab are dropped (NUL breaks every save on PostgreSQL, VT or BEL break xlsx
exports), and the text is NFC-normalised (a decomposed "é" and a composed one compare equal, and a
name matches the roster however the phone's keyboard composed it).

Plain printable ASCII, by far the common case, is returned as it is without any further work.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from bot.core.types import Contact, Incoming, User

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")


def clean_text(value: str) -> str:
    """`value` without C0 controls (newline and tab kept), NFC-normalised."""
    if value.isascii() and value.isprintable():
        return value
    value = _CONTROL.sub("", value)
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return value


def _opt(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def normalize_incoming(inc: Incoming) -> Incoming:
    """The same update with every client-supplied string cleaned (the same object when nothing changed)."""
    changes: dict[str, object] = {}
    for name in ("text", "command", "callback_data"):
        value = getattr(inc, name)
        if value is not None and (cleaned := clean_text(value)) != value:
            changes[name] = cleaned
    if inc.args and (args := clean_text(inc.args)) != inc.args:
        changes["args"] = args
    user = inc.user
    if (name := clean_text(user.name)) != user.name or (
        user.username is not None and clean_text(user.username) != user.username
    ):
        changes["user"] = User(user.id, name, _opt(user.username), user.language_code)
    if (c := inc.contact) is not None:
        contact = Contact(clean_text(c.phone), _opt(c.user_id), clean_text(c.name))
        if contact != c:
            changes["contact"] = contact
    if inc.files:
        files = tuple(
            f if f.name is None or clean_text(f.name) == f.name else dataclasses.replace(f, name=clean_text(f.name))
            for f in inc.files
        )
        if files != inc.files:
            changes["files"] = files
    return dataclasses.replace(inc, **changes) if changes else inc  # type: ignore[arg-type]


__all__ = ["clean_text", "normalize_incoming"]
