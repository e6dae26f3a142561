"""board: an index for the dashboard's monitoring board (open cases per step, soonest due first)

Each column of /monitoring reads its first cards as one index range (open, step, step_due, id) instead
of sorting every open case of the scope.

Revision ID: board_0001
Revises: 0001
Create Date: 2026-11-29 13:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "board_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("boardperf",)
depends_on: str | Sequence[str] | None = ("mon_0001",)


def upgrade() -> None:
    with op.batch_alter_table("monitor_cases", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_cases_board", ["open", "step", "step_due", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitor_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_cases_board")
