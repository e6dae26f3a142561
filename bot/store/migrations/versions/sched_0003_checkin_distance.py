"""check-ins: how far from the village's recorded point each was made (checkins.distance_m)

Revision ID: sched_0003
Revises: sched_0002
Create Date: 2026-11-28 14:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sched_0003"
down_revision: str | Sequence[str] | None = "sched_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("distance_m", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_column("distance_m")
