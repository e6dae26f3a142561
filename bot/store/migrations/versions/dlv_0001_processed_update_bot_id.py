"""processed updates keyed by channel, bot id and update id (processed_updates.bot_id)

Update ids are only unique per bot: a new token, or a Bot API server numbering from 1 again, must not
have its first updates dropped as redelivered. Rows recorded before this migration get bot_id "" (they
are pruned after 7 days anyway).

Revision ID: dlv_0001
Revises: 0001
Create Date: 2026-11-29 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dlv_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("delivery",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_updates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bot_id", sa.String(length=32), server_default="", nullable=False))
        batch_op.drop_constraint("pk_processed_updates", type_="primary")
        batch_op.create_primary_key("pk_processed_updates", ["channel", "bot_id", "update_id"])


def downgrade() -> None:
    # The old key cannot hold one update id seen by two bots: keep the rows of before the upgrade.
    op.execute("DELETE FROM processed_updates WHERE bot_id <> ''")
    with op.batch_alter_table("processed_updates", schema=None) as batch_op:
        batch_op.drop_constraint("pk_processed_updates", type_="primary")
        batch_op.create_primary_key("pk_processed_updates", ["channel", "update_id"])
        batch_op.drop_column("bot_id")
