"""Marking sent the outbox rows a runner delivered must cost the same with ten rows in the outbox or ten
thousand, and with ten thousand of them still pending.

The marks find their rows by dedup key (a unique index). PostgreSQL keeps one generic plan per prepared
statement and session, chosen when the statement was first planned: made while the outbox was small (a new
deployment, a fresh database, no ANALYZE yet: autovacuum off or not come round), the plan read the whole
outbox with a sequential scan, or every pending row through the "due" index on (status, not_before), on every
update for as long as the connection lived — each update slower the longer the queue it was meant to shrink.
`bangfu_sent` (migration hot_0002) is planned with sequential scans off and a status test no index serves;
a runner's hand-over of one message (by key) has that status test too (`outbox_sql.STILL_PENDING`). These
tests drive the real core, the sender's statement and the runner's hand-over on a database with a backlog
and no statistics, then read PostgreSQL's own counters of how the outbox was read.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.bootstrap import App
from bot.core.types import Incoming, Reply, User
from bot.runners.delivery import OutboxConfirmations
from bot.store.outbox_sql import sent_by_keys
from tests.pg import require_pg

PENDING = 3000
STATS = (
    "SELECT t.seq_scan, t.n_tup_upd, t.n_tup_ins, "
    "(SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'ix_outbox_due'), "
    "(SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'uq_outbox_dedup_key') "
    "FROM pg_stat_user_tables AS t WHERE t.relname = 'outbox'"
)


async def _stats(url: str, until: Any = None) -> tuple[int, int, int, int, int]:
    """The outbox's read counters (sequential scans, rows updated, rows inserted, scans of the due index, of the
    dedup-key index), waiting until `until(counters)` holds: a backend reports its counts when it exits, a
    moment after its client has closed the connection."""
    engine = create_async_engine(url)
    try:
        for _ in range(100):
            async with engine.connect() as conn:
                row = (await conn.execute(text(STATS))).one()
            counters = tuple(int(v or 0) for v in row)
            if until is None or until(counters):
                return counters  # type: ignore[return-value]
            await asyncio.sleep(0.05)
        raise AssertionError(f"the server's counters never showed the work: {counters}")
    finally:
        await engine.dispose()


async def _add_pending(url: str, keys: list[str]) -> None:
    """Pending outbox rows with these dedup keys, as messages waiting for the sender."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO outbox (dedup_key, account_id, channel, chat_id, rule, payload, status, not_before, "
                     "attempts, last_error, created_at) SELECT k, NULL, 'telegram', 'b', 'reply', '{}', 'pending', "
                     "now(), 1, '', now() FROM unnest(CAST(:keys AS varchar[])) AS k"),
                {"keys": keys},
            )
    finally:
        await engine.dispose()


def _postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's plans")
    require_pg()


@pytest.fixture
async def backlog(db_url: str) -> str:
    """The test's PostgreSQL database with a backlog of pending outbox rows and no statistics (never analysed,
    as on a server whose autovacuum has not come round yet)."""
    _postgres_only(db_url)
    await _add_pending(db_url, [f"backlog:{i}" for i in range(1, PENDING + 1)])
    await _stats(db_url, lambda c: c[2] >= PENDING)
    return db_url


async def test_an_updates_sent_marks_read_no_pending_backlog(backlog: str, app: App) -> None:
    """The real core on PostgreSQL: each update marks sent the reply before it (the runner confirmed it), ten
    updates in a row on one pooled connection (a generic plan from the sixth on): each mark lands, and not
    one of them read the outbox whole or went through the backlog of pending rows."""
    app.core.use_outbox(30.0, lambda r: {"text": r.text, "chat_id": r.chat_id})
    before = await _stats(backlog)
    keys: list[str] = []
    for i in range(10):
        result = await app.core.handle(
            Incoming("telegram", User("71", "x"), "71", update_id=f"71-{i}", text="/help", command="help")
        )
        for action in result.actions:
            if isinstance(action, Reply) and action.outbox_key:
                keys.append(action.outbox_key)
                app.core.confirm_sent(action.outbox_key)
    await app.core.flush_sent()
    await app.engine.dispose()  # the pooled backends exit: their counters reach the server
    after = await _stats(backlog, lambda c: c[1] - before[1] >= len(keys))
    assert after[0] == before[0], "an update read the whole outbox"
    assert after[3] == before[3], "an update went through the pending rows (the due index)"
    async with app.core.sessions() as s:
        statuses = dict((await s.execute(
            text("SELECT dedup_key, status FROM outbox WHERE dedup_key = ANY(:k)"), {"k": keys})).all())
        pending = (await s.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending'"))).scalar_one()
    assert keys and all(statuses[k] == "sent" for k in keys), statuses
    assert pending == PENDING  # the backlog untouched
    assert after[4] > before[4]


async def test_the_senders_marks_find_their_rows_by_key(backlog: str, app: App) -> None:
    """The statement the other paths use (`sent_by_keys`: a runner's marks with no update coming, the core off
    its hot path), run again and again on one connection as a prepared statement: the rows it names marked,
    others left, and the backlog never read."""
    stmt = sent_by_keys(app.engine.dialect)
    before = await _stats(backlog)
    engine = create_async_engine(backlog)
    try:
        async with engine.connect() as conn:
            for i in range(1, 9):
                await conn.execute(stmt, {"keys": [f"backlog:{i}"], "now": datetime.now(UTC)})
                await conn.commit()
            await conn.execute(stmt, {"keys": ["backlog:1", "backlog:9", "no such key"], "now": datetime.now(UTC)})
            await conn.commit()
    finally:
        await engine.dispose()
    after = await _stats(backlog, lambda c: c[1] - before[1] >= 9)
    assert after[0] == before[0] and after[3] == before[3]
    engine = create_async_engine(backlog)
    try:
        async with engine.connect() as conn:
            marked = (await conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'sent'"))).scalar_one()
    finally:
        await engine.dispose()
    assert marked == 9  # backlog:1..9, each once
    assert after[1] - before[1] == 9


async def test_a_runner_hands_messages_over_by_key_as_the_backlog_grows(db_url: str, app: App) -> None:
    """A channel outage: the runner hands each message it could not send over to the outbox sender
    (`OutboxConfirmations.hand_over`, one statement per message, by dedup key). Its plan is made on this
    connection while the outbox is small (before the outage); then the backlog grows. Not one hand-over may go
    through the pending rows (the due index), before or after."""
    _postgres_only(db_url)
    confirmations = OutboxConfirmations(app.core)
    await _add_pending(db_url, [f"early:{i}" for i in range(8)])
    before = await _stats(db_url, lambda c: c[2] >= 8)
    for i in range(8):  # before the outage: the statement's plan is made and kept on this connection
        await confirmations.hand_over(f"early:{i}", 30.0, "429 Too Many Requests")
    await _add_pending(db_url, [f"outage:{i}" for i in range(PENDING)])
    for i in range(5):
        await confirmations.hand_over(f"outage:{i}", 30.0, "429 Too Many Requests")
    await app.engine.dispose()
    after = await _stats(db_url, lambda c: c[1] - before[1] >= 13 and c[2] >= PENDING + 8)
    assert after[1] - before[1] == 13  # each hand-over updated its own row
    assert after[3] == before[3], "a hand-over went through the pending rows (the due index)"
    assert after[0] == before[0], "a hand-over read the whole outbox"
    assert confirmations.stats.handed_over == 13
