"""Statements on the outbox table shared by the core (an update's sent-marks) and the scheduler's sender."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql

from bot.store.enums import OutboxStatus
from bot.store.models import Outbox

OUTBOX = cast(Table, Outbox.__table__)

#: "the row is still pending", written so that no index can serve it (`status || ''`), for statements that find
#: their row by its dedup key: PostgreSQL's generic plan for `dedup_key = $1 AND status = 'pending'`, made
#: while the outbox was small, went through the "due" index on (status, not_before) — every pending row read,
#: the whole backlog during a channel outage, which is when a runner hands messages over one by one
#: (tests/test_outbox_plan.py). SQLite plans each statement afresh and finds the row by key either way.
STILL_PENDING = OUTBOX.c.status.concat(literal_column("''")) == OutboxStatus.PENDING.value


def sent_by_keys(dialect: Any) -> Any:
    """The statement that marks sent the outbox rows still pending among `:keys` (a list of dedup keys), at
    `:now`. On PostgreSQL a call of `bangfu_sent` (migration hot_0002): one SQL text whatever the number of
    keys (one array parameter), and a plan that finds the rows by key whatever the session's plan cache
    holds (a generic plan made while the outbox was small scans it whole, or every pending row through the
    "due" index: tests/test_outbox_plan.py). Elsewhere (SQLite, which plans each statement afresh and finds
    them by key) an UPDATE with an expanding IN."""
    if dialect.name == "postgresql":
        keys = bindparam("keys", type_=postgresql.ARRAY(OUTBOX.c.dedup_key.type))
        return select(func.bangfu_sent(keys, bindparam("now", type_=OUTBOX.c.sent_at.type)))
    return (
        update(OUTBOX)
        .where(OUTBOX.c.dedup_key.in_(bindparam("keys", expanding=True)), OUTBOX.c.status == OutboxStatus.PENDING.value)
        .values(status=OutboxStatus.SENT.value, sent_at=bindparam("now"), last_error="")
    )
