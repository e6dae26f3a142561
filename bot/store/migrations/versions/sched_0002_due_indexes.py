"""scheduler: indexes for the set-based due computations (recent visits by date, check-ins by day)

Revision ID: sched_0002
Revises: sched_0001
Create Date: 2026-11-28 11:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "sched_0002"
down_revision: str | Sequence[str] | None = "sched_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_visits_date_household_cadre", ["visit_date", "household_id", "cadre_id"], unique=False
        )
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.create_index("ix_checkins_day_cadre", ["day", "cadre_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_index("ix_checkins_day_cadre")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_date_household_cadre")
