"""message files

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:50:00.000000

The files shared with messages: what Slack said of each, and the text the bot read of PDFs
and text files (removed with its message, or when Slack says the file was deleted).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("slack_file_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("mimetype", sa.String(length=255), nullable=False),
        sa.Column("filetype", sa.String(length=32), nullable=False),
        sa.Column("pretty_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("needs_info", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('image', 'pdf', 'text', 'other')", name=op.f("ck_message_files_kind")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'read', 'unreadable', 'deleted')",
            name=op.f("ck_message_files_state"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_files_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_files")),
        sa.UniqueConstraint(
            "message_id", "slack_file_id", name=op.f("uq_message_files_message_id_slack_file_id")
        ),
    )
    op.create_index(op.f("ix_message_files_message_id"), "message_files", ["message_id"])
    op.create_index("ix_message_files_team_file", "message_files", ["team_id", "slack_file_id"])


def downgrade() -> None:
    op.drop_index("ix_message_files_team_file", table_name="message_files")
    op.drop_index(op.f("ix_message_files_message_id"), table_name="message_files")
    op.drop_table("message_files")
