"""usage report indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:10:00.000000

The usage reports read a workspace's period from `ix_responses_team_created`; on PostgreSQL it
now carries (INCLUDE) every column they need, so they never touch the table. Reports for one
channel get their own index. SQLite ignores INCLUDE: there both indexes are plain.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from db.models: a migration must not change when the models do.
USAGE_REPORT_COLUMNS = [
    # First: the percentile query reads only this one, and PostgreSQL unpacks an index
    # entry's columns up to the last one a query needs.
    "completion_time_ms",
    "model_used",
    "user_id",
    "channel_id",
    "status",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "cost_usd",
]


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_team_created")
        batch_op.create_index(
            "ix_responses_team_created",
            ["team_id", "created_at"],
            unique=False,
            postgresql_include=USAGE_REPORT_COLUMNS,
        )
        batch_op.create_index(
            "ix_responses_team_channel_created",
            ["team_id", "channel_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_team_channel_created")
        batch_op.drop_index("ix_responses_team_created")
        batch_op.create_index("ix_responses_team_created", ["team_id", "created_at"], unique=False)
