"""visits: every kind a visit was (visits.kinds, a JSON list; `kind` stays the main one)

Revision ID: ux_0001
Revises: 0001
Create Date: 2026-11-29 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ux_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("chatux",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kinds", sa.JSON(), nullable=True))
    # Existing visits had one kind each.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE visits SET kinds = json_build_array(kind)")
    else:
        op.execute("UPDATE visits SET kinds = json_array(kind)")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.alter_column("kinds", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("kinds")
