"""scheduler: marks table (rules already run per period, last-alert hashes)

Revision ID: sched_0001
Revises: 0001
Create Date: 2026-11-28 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sched_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("scheduler",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_marks",
        sa.Column("key", sa.String(length=191), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_scheduler_marks")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_marks")
