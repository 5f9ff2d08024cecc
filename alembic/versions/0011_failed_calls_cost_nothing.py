"""failed calls cost nothing

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:50:00.000000

A model call refused before any text came (a bad key, a rate limit, a timeout, an endpoint
error) was recorded with no cost, which the reports and the budgets count as "unpriced": a
model with no known price. It is an error that cost nothing: such rows get a cost of 0, and
the running totals stop counting them as unpriced. Only data changes; the downgrade leaves
it (the old code reads a cost of 0 as it reads any other).
"""

from collections import Counter
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Table shapes as of this revision, not the application's models (which move on).
_META = sa.MetaData()
_RESPONSES = sa.Table(
    "responses",
    _META,
    sa.Column("id", sa.Integer),
    sa.Column("team_id", sa.String),
    sa.Column("user_id", sa.Integer),
    sa.Column("channel_id", sa.String),
    sa.Column("model_used", sa.String),
    sa.Column("tokens_total", sa.Integer),
    sa.Column("tokens_estimated", sa.Boolean),
    sa.Column("cost_usd", sa.Numeric(14, 8)),
    sa.Column("response_size", sa.Integer),
    sa.Column("status", sa.String),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
_USERS = sa.Table(
    "users", _META, sa.Column("id", sa.Integer), sa.Column("slack_user_id", sa.String)
)
_DAILY = sa.Table(
    "usage_daily",
    _META,
    sa.Column("team_id", sa.String),
    sa.Column("day", sa.Date),
    sa.Column("user_id", sa.Integer),
    sa.Column("channel_id", sa.String),
    sa.Column("model_used", sa.String),
    sa.Column("unpriced", sa.Integer),
)
_MONTHLY = sa.Table(
    "usage_monthly",
    _META,
    sa.Column("team_id", sa.String),
    sa.Column("month", sa.Date),
    sa.Column("scope", sa.String),
    sa.Column("scope_id", sa.String),
    sa.Column("unpriced", sa.Integer),
)
# A call refused before any text: an error with no tokens, no text and no cost.
_FAILED_BEFORE_TEXT = (
    _RESPONSES.c.status == "error",
    _RESPONSES.c.cost_usd.is_(None),
    _RESPONSES.c.tokens_total == 0,
    _RESPONSES.c.response_size == 0,
)


def upgrade() -> None:
    bind = op.get_bind()
    day: sa.ColumnElement[object]
    if bind.dialect.name == "postgresql":
        day = sa.cast(sa.func.timezone("UTC", _RESPONSES.c.created_at), sa.Date)
    else:
        day = sa.func.date(_RESPONSES.c.created_at)  # SQLite keeps UTC wall-clock text
    rows = bind.execute(
        sa.select(
            _RESPONSES.c.team_id,
            day,
            _RESPONSES.c.user_id,
            _RESPONSES.c.channel_id,
            _RESPONSES.c.model_used,
            _USERS.c.slack_user_id,
        )
        .select_from(_RESPONSES.outerjoin(_USERS, _USERS.c.id == _RESPONSES.c.user_id))
        .where(*_FAILED_BEFORE_TEXT)
    ).all()
    # Counted as db/totals.py counts a response: daily by member, channel and model ("no
    # member" is 0, "no channel" ""), monthly for the workspace, the channel and the member.
    daily: Counter[tuple[str, date, int, str, str]] = Counter()
    monthly: Counter[tuple[str, date, str, str]] = Counter()
    for team_id, on, user_id, channel_id, model, slack_user_id in rows:
        on = on if isinstance(on, date) else date.fromisoformat(str(on)[:10])
        daily[(team_id, on, user_id or 0, channel_id or "", model)] += 1
        month = on.replace(day=1)
        monthly[(team_id, month, "workspace", "")] += 1
        if channel_id:
            monthly[(team_id, month, "channel", channel_id)] += 1
        if slack_user_id:
            monthly[(team_id, month, "user", slack_user_id)] += 1
    for (team_id, on, user_id, channel_id, model), count in daily.items():
        bind.execute(
            sa.update(_DAILY)
            .where(
                _DAILY.c.team_id == team_id,
                _DAILY.c.day == on,
                _DAILY.c.user_id == user_id,
                _DAILY.c.channel_id == channel_id,
                _DAILY.c.model_used == model,
            )
            .values(unpriced=_less(_DAILY.c.unpriced, count))
        )
    for (team_id, month, scope, scope_id), count in monthly.items():
        bind.execute(
            sa.update(_MONTHLY)
            .where(
                _MONTHLY.c.team_id == team_id,
                _MONTHLY.c.month == month,
                _MONTHLY.c.scope == scope,
                _MONTHLY.c.scope_id == scope_id,
            )
            .values(unpriced=_less(_MONTHLY.c.unpriced, count))
        )
    bind.execute(
        sa.update(_RESPONSES).where(*_FAILED_BEFORE_TEXT).values(cost_usd=0, tokens_estimated=False)
    )


def _less(column: sa.Column[int], count: int) -> sa.ColumnElement[int]:
    # Never below zero, should the totals have been rebuilt or trimmed meanwhile.
    return sa.case((column > count, column - count), else_=0)


def downgrade() -> None:
    # Nothing to undo: a cost of 0 reads as "cost nothing" before this revision too.
    pass
