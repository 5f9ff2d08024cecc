"""usage daily scopes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:45:00.000000

The day's totals of each workspace per model, per member and per channel, beside the totals per
member x channel x model: a report of a whole workspace reads a few hundred rows a day instead
of every pairing. Filled here from `usage_daily` (the same figures, summed one scope at a
time), so an existing installation reports the same figures after the upgrade as before it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same 44 completion-time buckets as usage_daily (0006).
LATENCY = [f"latency_{k:02d}" for k in range(44)]
SUMS = [
    "requests",
    "errors",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "cost_usd",
    "unpriced",
    *LATENCY,
]
# scope: (its id as text, what the rows are grouped by); "" is no member or no channel.
SCOPES = {
    "model": ("model_used", "model_used"),
    "user": ("CASE WHEN user_id = 0 THEN '' ELSE CAST(user_id AS VARCHAR(32)) END", "user_id"),
    "channel": ("channel_id", "channel_id"),
}


def upgrade() -> None:
    op.create_table(
        "usage_daily_scopes",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=255), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("tokens_prompt", sa.BigInteger(), nullable=False),
        sa.Column("tokens_completion", sa.BigInteger(), nullable=False),
        sa.Column("tokens_total", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(18, 8), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in LATENCY),
        sa.CheckConstraint(
            "scope IN ('model', 'user', 'channel')", name=op.f("ck_usage_daily_scopes_scope")
        ),
        sa.PrimaryKeyConstraint(
            "team_id", "day", "scope", "scope_id", name=op.f("pk_usage_daily_scopes")
        ),
    )
    op.create_index("ix_usage_daily_scopes_day", "usage_daily_scopes", ["day"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # Responses recorded meanwhile wait for the fill (SQLite's write lock does the same).
        op.execute("LOCK TABLE usage_daily IN SHARE MODE")
    columns = ", ".join(["team_id", "day", "scope", "scope_id", *SUMS])
    sums = ", ".join(f"SUM({name})" for name in SUMS)
    for scope, (scope_id, grouped_by) in SCOPES.items():
        op.execute(
            f"INSERT INTO usage_daily_scopes ({columns}) "
            f"SELECT team_id, day, '{scope}', {scope_id}, {sums} FROM usage_daily "
            f"GROUP BY team_id, day, {grouped_by}"
        )


def downgrade() -> None:
    op.drop_index("ix_usage_daily_scopes_day", table_name="usage_daily_scopes")
    op.drop_table("usage_daily_scopes")
