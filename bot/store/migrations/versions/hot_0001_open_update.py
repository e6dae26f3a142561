"""bangfu_open(): an update's first round trip on PostgreSQL (bot/core/pg_hot.py), as one function call

The function takes the user's session-level advisory lock, waits until the update that held it before has
committed (on a transaction-level advisory lock that update's finish statement took), and only then
reads — each statement of a VOLATILE PL/pgSQL function under READ COMMITTED takes a fresh snapshot, which
one plain statement cannot do after waiting. SQLite has no such function (its hot path needs none).

Revision ID: hot_0001
Revises: 0001
Create Date: 2026-11-29 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "hot_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("hotpath",)
# processed_updates.bot_id, rate_limits, accounts.memo (the account row it returns as the model has it)
depends_on: str | Sequence[str] | None = ("dlv_0001", "chatsec_0001", "memo_0001")

# A set of records: the caller names the columns (`AS t(...)`, built by bot/core/pg_hot.py from the catalog),
# so the function need not change when a column is added to one of these tables. The columns: the state,
# the two counts, then every column of accounts, people and dialog_states in the tables' own order (NULL when
# there is no such row). The state: 0 the update was handled before (nothing done, the lock not kept); 1 go on (the lock kept, the
# speaker's rows returned; a first-time account created); 2 over a message budget (the count and the update
# id recorded, the lock not kept). o_n / o_gn: this minute's count for the account / the group, when counted.
OPEN = """
CREATE FUNCTION bangfu_open(
    p_ns integer, p_key integer,
    p_channel varchar, p_external_id varchar, p_chat_id varchar, p_name varchar, p_now timestamptz,
    p_bot_id varchar, p_update_id varchar,
    p_budget_key varchar, p_window timestamptz, p_budget integer,
    p_group_key varchar, p_group_budget integer
) RETURNS SETOF record LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_found boolean;
    o_n integer;
    o_gn integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- every statement below must see what was committed before it started
        RAISE EXCEPTION 'bangfu_open needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    -- This call's own commit need not wait for its WAL to reach the disk (a count, a new account, an update
    -- over the budget recorded): the update's finish statement commits synchronously after it, flushing the
    -- WAL up to there, this commit included; should the server crash before that, the update was not
    -- recorded as handled and is handled again when redelivered.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- One user's updates take turns (a session lock: kept after this call, released by the update's
    -- finish statement).
    PERFORM pg_advisory_lock(p_ns, p_key);
    -- The update that had the lock let it go inside its finish statement, before its COMMIT, having taken
    -- the transaction-level lock (p_ns + 1, p_key) first, which ends only with its transaction: wait here
    -- for it, so that what follows sees that transaction committed (or rolled back). Held by this call to
    -- its own commit.
    PERFORM pg_advisory_xact_lock(p_ns + 1, p_key);
    v_found := EXISTS (SELECT 1 FROM accounts WHERE channel = p_channel AND external_id = p_external_id);
    IF p_update_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM processed_updates
        WHERE channel = p_channel AND bot_id = p_bot_id AND update_id = p_update_id
    ) THEN
        PERFORM pg_advisory_unlock(p_ns, p_key);
        RETURN QUERY SELECT 0, o_n, o_gn, a.*, p.*, d.* FROM (SELECT 1) AS one
            LEFT JOIN accounts AS a ON false LEFT JOIN people AS p ON false LEFT JOIN dialog_states AS d ON false;
        RETURN;
    END IF;
    IF p_budget_key IS NOT NULL THEN
        INSERT INTO rate_limits AS r (key, window_start, count, strikes) VALUES (p_budget_key, p_window, 1, 0)
        ON CONFLICT (key) DO UPDATE SET
            count = CASE WHEN r.window_start = excluded.window_start THEN r.count + 1 ELSE 1 END,
            window_start = excluded.window_start
        RETURNING r.count INTO o_n;
    END IF;
    IF p_group_key IS NOT NULL AND (o_n IS NULL OR o_n <= p_budget) THEN
        INSERT INTO rate_limits AS r (key, window_start, count, strikes) VALUES (p_group_key, p_window, 1, 0)
        ON CONFLICT (key) DO UPDATE SET
            count = CASE WHEN r.window_start = excluded.window_start THEN r.count + 1 ELSE 1 END,
            window_start = excluded.window_start
        RETURNING r.count INTO o_gn;
    END IF;
    IF o_n > p_budget OR o_gn > p_group_budget THEN
        -- Over a budget: counted and recorded as handled (answered at most once), nothing else. The lock
        -- (p_ns + 1, p_key) is held until this call commits, after the user's lock is let go.
        IF p_update_id IS NOT NULL THEN
            INSERT INTO processed_updates (channel, bot_id, update_id, at)
            VALUES (p_channel, p_bot_id, p_update_id, p_now) ON CONFLICT DO NOTHING;
        END IF;
        PERFORM pg_advisory_unlock(p_ns, p_key);
        RETURN QUERY SELECT 2, o_n, o_gn, a.*, p.*, d.* FROM (SELECT 1) AS one
            LEFT JOIN accounts AS a ON false LEFT JOIN people AS p ON false LEFT JOIN dialog_states AS d ON false;
        RETURN;
    END IF;
    IF NOT v_found THEN  -- first contact: the account (unbound), committed with this call
        INSERT INTO accounts (channel, external_id, chat_id, display_name, unreachable, created_at)
        VALUES (p_channel, p_external_id, p_chat_id, p_name, false, p_now)
        ON CONFLICT (channel, external_id) DO NOTHING;
    END IF;
    RETURN QUERY
        SELECT 1, o_n, o_gn, a.*, p.*, d.*
        FROM accounts AS a
        LEFT JOIN people AS p ON p.id = a.person_id
        LEFT JOIN dialog_states AS d ON d.account_id = a.id AND d.active
        WHERE a.channel = p_channel AND a.external_id = p_external_id
        LIMIT 1;
END
$$
"""

SIGNATURE = (
    "bangfu_open(integer, integer, varchar, varchar, varchar, varchar, timestamptz, varchar, varchar, "
    "varchar, timestamptz, integer, varchar, integer)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(OPEN)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
