"""command receipts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:40:00.000000

One row per slash command delivered, keyed by Slack's trigger id, so a replayed command runs
once. Rows older than an hour are pruned by the application.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "command_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger_id", sa.String(length=255), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_receipts")),
        sa.UniqueConstraint("trigger_id", name=op.f("uq_command_receipts_trigger_id")),
    )
    op.create_index(
        op.f("ix_command_receipts_created_at"), "command_receipts", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_command_receipts_created_at"), table_name="command_receipts")
    op.drop_table("command_receipts")
