"""bangfu_sent(): the outbox rows a runner delivered marked sent, found by their dedup key whatever the plan cache

The marks name their rows by dedup key (a unique index). PostgreSQL keeps one generic plan per prepared
statement and session, chosen from the table's size and statistics when it was first planned: planned while
the outbox was small (a new deployment, a fresh bench or test database, no ANALYZE yet), the marks were found
by a sequential scan of the whole outbox, or through the "due" index on (status, not_before) — every pending
row read, the whole backlog after a channel outage — on every update, for as long as the connection lived.
Inside this function the statement is planned with sequential scans off (its `SET` applies to its statements
only), and its status test is written so no index serves it (`status || ''`): the one plan left is the
unique index on dedup_key. The caller skips the call when there is no key (bot/core/pg_hot.py's finish
statement; bot/store/outbox_sql.py for the other paths). SQLite plans each statement afresh: no function.

Revision ID: hot_0002
Revises: hot_0001
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "hot_0002"
down_revision: str | Sequence[str] | None = "hot_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT = """
CREATE FUNCTION bangfu_sent(p_keys varchar[], p_at timestamptz) RETURNS integer
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $$
DECLARE
    v_n integer;
BEGIN
    UPDATE outbox SET status = 'sent', sent_at = p_at, last_error = ''
    WHERE dedup_key = ANY(p_keys) AND status || '' = 'pending';
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(SENT)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS bangfu_sent(varchar[], timestamptz)")
