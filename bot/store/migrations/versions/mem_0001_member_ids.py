"""household members' ID numbers: masked number and keyed hash (department lists match members too)

Revision ID: mem_0001
Revises: 0001
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mem_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("members_id",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("household_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_number", sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column("id_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_household_members_id_hash"), ["id_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("household_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_household_members_id_hash"))
        batch_op.drop_column("id_hash")
        batch_op.drop_column("id_number")
