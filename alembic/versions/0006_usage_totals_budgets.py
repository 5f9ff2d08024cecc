"""usage totals and budgets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:00:00.000000

Daily totals per workspace, day, member, channel and model (with a completion-time
histogram), monthly spend per workspace, channel and member, the budgets that limit it, and
what a running turn holds against them. The totals are filled from `responses` here, so an
existing installation reports the same figures after the upgrade as before it. A running turn
now outlives its deleted message (its link set to NULL), so that it keeps holding its share
of the budgets until its cost is recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 43 bucket bounds (50 ms times 1.25**k) make 44 buckets; db/models.py names the same columns.
LATENCY_BUCKETS = 44


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("reserved_usd", sa.Numeric(14, 8), nullable=True))
        batch.add_column(sa.Column("reserved_tokens", sa.BigInteger(), nullable=True))
        # A running turn outlives its deleted message, and keeps holding its share.
        batch.alter_column("message_id", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint("fk_turns_message_id_messages", type_="foreignkey")
        batch.create_foreign_key(
            "fk_turns_message_id_messages", "messages", ["message_id"], ["id"], ondelete="SET NULL"
        )

    op.create_table(
        "usage_daily",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("model_used", sa.String(length=255), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("tokens_prompt", sa.BigInteger(), nullable=False),
        sa.Column("tokens_completion", sa.BigInteger(), nullable=False),
        sa.Column("tokens_total", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(18, 8), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        *(
            sa.Column(f"latency_{k:02d}", sa.Integer(), nullable=False)
            for k in range(LATENCY_BUCKETS)
        ),
        sa.PrimaryKeyConstraint(
            "team_id", "day", "user_id", "channel_id", "model_used", name=op.f("pk_usage_daily")
        ),
    )
    op.create_index(
        "ix_usage_daily_team_user_day", "usage_daily", ["team_id", "user_id", "day"], unique=False
    )
    op.create_index(
        "ix_usage_daily_team_channel_day",
        "usage_daily",
        ["team_id", "channel_id", "day"],
        unique=False,
    )
    op.create_index("ix_usage_daily_day", "usage_daily", ["day"], unique=False)

    op.create_table(
        "usage_monthly",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("tokens_completion", sa.BigInteger(), nullable=False),
        sa.Column("tokens_total", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(18, 8), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "scope IN ('workspace', 'channel', 'user')", name=op.f("ck_usage_monthly_scope")
        ),
        sa.PrimaryKeyConstraint(
            "team_id", "month", "scope", "scope_id", name=op.f("pk_usage_monthly")
        ),
    )

    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=32), nullable=False),
        sa.Column("limit_usd", sa.Numeric(14, 2), nullable=True),
        sa.Column("limit_tokens", sa.BigInteger(), nullable=True),
        sa.Column("set_by", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "scope IN ('workspace', 'channel', 'user', 'default_user')",
            name=op.f("ck_budgets_scope"),
        ),
        sa.CheckConstraint(
            "limit_usd IS NOT NULL OR limit_tokens IS NOT NULL",
            name=op.f("ck_budgets_some_limit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint(
            "team_id", "scope", "scope_id", name=op.f("uq_budgets_team_id_scope_scope_id")
        ),
    )

    # Existing accounting, summed into the new totals (db/totals.py rebuilds them the same way).
    from db.totals import rebuild

    rebuild(op.get_bind(), daily_scopes=False)  # usage_daily_scopes comes with 0012


def downgrade() -> None:
    op.drop_table("budgets")
    op.drop_table("usage_monthly")
    op.drop_index("ix_usage_daily_day", table_name="usage_daily")
    op.drop_index("ix_usage_daily_team_channel_day", table_name="usage_daily")
    op.drop_index("ix_usage_daily_team_user_day", table_name="usage_daily")
    op.drop_table("usage_daily")
    op.execute("DELETE FROM turns WHERE message_id IS NULL")
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("fk_turns_message_id_messages", type_="foreignkey")
        batch.create_foreign_key(
            "fk_turns_message_id_messages", "messages", ["message_id"], ["id"], ondelete="CASCADE"
        )
        batch.alter_column("message_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("reserved_tokens")
        batch.drop_column("reserved_usd")
