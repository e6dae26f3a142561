"""微信客服 and SMS: sync cursors, reply windows, door-card scenes, SMS sends (per-number limits)

Revision ID: kf_0001
Revises: 0001
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kf_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("kfsms",)
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kf_cursors",
        sa.Column("open_kfid", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("open_kfid"),
    )
    op.create_table(
        "kf_windows",
        sa.Column("external_userid", sa.String(length=64), nullable=False),
        sa.Column("open_kfid", sa.String(length=64), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_msg_time", sa.BigInteger(), nullable=False),
        sa.Column("last_msgid", sa.String(length=128), nullable=False),
        sa.Column("sent_since", sa.Integer(), nullable=False),
        sa.Column("held", sa.JSON(), nullable=False),
        sa.Column("undeliverable", sa.Integer(), nullable=False),
        sa.Column("sms_told_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("external_userid"),
    )
    op.create_table(
        "kf_scenes",
        sa.Column("scene", sa.String(length=32), nullable=False),
        sa.Column("village_id", ID, nullable=False),
        sa.Column("household_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"]),
        sa.ForeignKeyConstraint(["village_id"], ["villages.id"]),
        sa.PrimaryKeyConstraint("scene"),
        sa.UniqueConstraint("household_id"),
    )
    op.create_table(
        "sms_sends",
        sa.Column("id", ID, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("template", sa.String(length=48), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sms_sends_phone_at", "sms_sends", ["phone", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sms_sends_phone_at", table_name="sms_sends")
    op.drop_table("sms_sends")
    op.drop_table("kf_scenes")
    op.drop_table("kf_windows")
    op.drop_table("kf_cursors")
