"""Statements on the outbox table shared by the core (an update's sent-marks) and the scheduler's sender."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, any_, bindparam, update
from sqlalchemy.dialects import postgresql

from bot.store.enums import OutboxStatus
from bot.store.models import Outbox

OUTBOX = cast(Table, Outbox.__table__)


def sent_by_keys(dialect: Any) -> Any:
    """The statement that marks sent the outbox rows still pending among `:keys` (a list of dedup keys), at
    `:now`. On PostgreSQL one SQL text whatever the number of keys (`dedup_key = ANY(:keys)`, one array
    parameter): an expanding `IN (:keys)` renders a text per count of keys, each one prepared again on every
    pooled connection and kept in its statement cache. Elsewhere (SQLite) the expanding IN."""
    column = OUTBOX.c.dedup_key
    if dialect.name == "postgresql":
        keys = column == any_(bindparam("keys", type_=postgresql.ARRAY(column.type)))
    else:
        keys = column.in_(bindparam("keys", expanding=True))
    return (
        update(OUTBOX)
        .where(keys, OUTBOX.c.status == OutboxStatus.PENDING.value)
        .values(status=OutboxStatus.SENT.value, sent_at=bindparam("now"), last_error="")
    )
