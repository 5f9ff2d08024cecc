"""answer feedback

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:20:00.000000

One row per person and answer: the thumbs up or down they last clicked under it. The unique
constraint (its leading column) also serves the reports' join from responses; the index on
the voter serves their Home tab.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
# Re-chained onto the newest revision when merged beside other branches' 0003/0004.
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rating IN ('up', 'down')", name=op.f("ck_feedback_rating")),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_feedback_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint(
            "response_id",
            "team_id",
            "slack_user_id",
            name=op.f("uq_feedback_response_id_team_id_slack_user_id"),
        ),
    )
    op.create_index(
        "ix_feedback_team_user_updated",
        "feedback",
        ["team_id", "slack_user_id", "updated_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_team_user_updated", table_name="feedback")
    op.drop_table("feedback")
