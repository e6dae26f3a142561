"""web dashboard speed: precomputed per-team figures (team_figures), indexes for the difficulty list and
the household lists sorted by village

Revision ID: webperf_0001
Revises: 0001
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "webperf_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("webperf",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_figures",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=48), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("week", "team_id", "name", "key", name=op.f("pk_team_figures")),
    )
    with op.batch_alter_table("difficulties", schema=None) as batch_op:
        batch_op.create_index("ix_difficulties_created_id", ["created_at", "id"], unique=False)
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.create_index("ix_villages_name_id", ["name", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.drop_index("ix_villages_name_id")
    with op.batch_alter_table("difficulties", schema=None) as batch_op:
        batch_op.drop_index("ix_difficulties_created_id")
    op.drop_table("team_figures")
