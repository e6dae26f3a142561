"""cases: villagers' personal matters, hardships and call-back requests tracked to an answer

Revision ID: case_0001
Revises: 0001
Create Date: 2026-11-29 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "case_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("cases",)
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", ID, nullable=False),
        sa.Column("idem_key", sa.String(length=191), nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("household_id", ID, nullable=True),
        sa.Column("cadre_id", ID, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("question_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hardship", sa.Boolean(), nullable=False),
        sa.Column("topic", sa.String(length=48), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_cases_account_id_accounts")),
        sa.ForeignKeyConstraint(["cadre_id"], ["people.id"], name=op.f("fk_cases_cadre_id_people")),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_cases_household_id_households")),
        sa.ForeignKeyConstraint(
            ["question_id"], ["policy_questions.id"], name=op.f("fk_cases_question_id_policy_questions")
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_cases_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_cases_idem_key")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_cadre_id"), ["cadre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_team_id"))
        batch_op.drop_index(batch_op.f("ix_cases_household_id"))
        batch_op.drop_index(batch_op.f("ix_cases_cadre_id"))
        batch_op.drop_index(batch_op.f("ix_cases_account_id"))
        batch_op.drop_index("ix_cases_status_created")
    op.drop_table("cases")
