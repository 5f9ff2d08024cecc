"""tool calls and channel settings

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:50:00.000000

One row per tool call a turn made (MCP tools): the tool, its server, duration, outcome and
the sizes of its arguments and result, with their content while the turn's messages are kept.
And per-channel switches admins set: whether tools may be used there.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
# Re-chained onto the newest revision when merged beside other branches' revisions.
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("question_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("tool", sa.String(length=255), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("arguments_size", sa.Integer(), nullable=False),
        sa.Column("result_size", sa.Integer(), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ok', 'error', 'timeout')", name=op.f("ck_tool_calls_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_tool_calls_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["messages.id"],
            name=op.f("fk_tool_calls_question_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"],
            ["messages.id"],
            name=op.f("fk_tool_calls_reply_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_calls")),
    )
    op.create_index("ix_tool_calls_team_created", "tool_calls", ["team_id", "created_at"])
    op.create_index(op.f("ix_tool_calls_response_id"), "tool_calls", ["response_id"])
    op.create_index(op.f("ix_tool_calls_question_id"), "tool_calls", ["question_id"])
    op.create_index(op.f("ix_tool_calls_reply_id"), "tool_calls", ["reply_id"])
    op.create_table(
        "channel_settings",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("tools_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", name=op.f("pk_channel_settings")),
    )


def downgrade() -> None:
    op.drop_table("channel_settings")
    op.drop_index(op.f("ix_tool_calls_reply_id"), table_name="tool_calls")
    op.drop_index(op.f("ix_tool_calls_question_id"), table_name="tool_calls")
    op.drop_index(op.f("ix_tool_calls_response_id"), table_name="tool_calls")
    op.drop_index("ix_tool_calls_team_created", table_name="tool_calls")
    op.drop_table("tool_calls")
