"""A dashboard scope's ids as one SQL value: `column = ANY($1)` with one array parameter on PostgreSQL
(a county's 1,000 villages or teams compile, travel and plan as one value, and the statement is the same
whatever the scope's size), `column IN (...)` elsewhere (SQLite has no arrays; its scopes are small)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, false, true
from sqlalchemy.dialects.postgresql import ARRAY


def in_ids(dialect: str, column: Any, ids: Sequence[int] | None) -> Any:
    """A WHERE clause: `column` is one of `ids` (None: no restriction; empty: nothing)."""
    if ids is None:
        return true()
    if not ids:
        return false()
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(ids)
