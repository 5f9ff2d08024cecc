"""The running totals held to the accounting: the same figures summed straight from `responses`.

The sums are computed here, in Python over the rows, rather than by `db.totals`' own
statements: what the totals are compared with must not share their mistakes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from db import totals
from db.models import LATENCY_COLUMNS, Response, UsageDaily, UsageMonthly, User

_CENTS = Decimal("0.00000001")
_DAILY_SUMS = (
    "requests",
    "errors",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "cost_usd",
    "unpriced",
    *LATENCY_COLUMNS,
)
_MONTHLY_SUMS = ("requests", "errors", "tokens_completion", "tokens_total", "cost_usd", "unpriced")

Sums = dict[tuple[Any, ...], tuple[Any, ...]]


def _day(at: datetime) -> date:
    # SQLite hands back naive datetimes, stored in UTC.
    return at.date() if at.tzinfo is None else at.astimezone(UTC).date()


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(_CENTS)


def from_responses(engine: Engine) -> tuple[Sums, Sums]:
    """(daily, monthly) totals as `responses` says they must be, GROUP BY done here."""
    query = select(
        Response.team_id,
        Response.created_at,
        Response.user_id,
        Response.channel_id,
        Response.model_used,
        Response.status,
        Response.tokens_prompt,
        Response.tokens_completion,
        Response.tokens_total,
        Response.cost_usd,
        Response.completion_time_ms,
        User.slack_user_id,
    ).outerjoin(User, User.id == Response.user_id)
    daily: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * len(_DAILY_SUMS))
    monthly: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * len(_MONTHLY_SUMS))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    for team, at, user, channel, model, status, prompt, completion, total, cost, ms, member in rows:
        day = _day(at)
        figures = {
            "requests": 1,
            "errors": int(status == "error"),
            "tokens_prompt": prompt,
            "tokens_completion": completion,
            "tokens_total": total,
            "cost_usd": _money(cost),
            "unpriced": int(cost is None),
            LATENCY_COLUMNS[totals.latency_bucket(ms)]: 1,
        }
        row = daily[(team, day, user or 0, channel or "", model)]
        for index, name in enumerate(_DAILY_SUMS):
            row[index] += figures.get(name, 0)
        scopes = [("workspace", "")]
        if channel:
            scopes.append(("channel", channel))
        if member:
            scopes.append(("user", member))
        for scope, scope_id in scopes:
            row = monthly[(team, day.replace(day=1), scope, scope_id)]
            for index, name in enumerate(_MONTHLY_SUMS):
                row[index] += figures[name]
    return (
        {key: tuple(value) for key, value in daily.items()},
        {key: tuple(value) for key, value in monthly.items()},
    )


def stored(engine: Engine) -> tuple[Sums, Sums]:
    """(daily, monthly) totals as the tables hold them, in the shape of `from_responses`."""
    daily_columns = [UsageDaily.__table__.c[name] for name in _DAILY_SUMS]
    monthly_columns = [UsageMonthly.__table__.c[name] for name in _MONTHLY_SUMS]
    with engine.connect() as connection:
        daily_rows = connection.execute(
            select(
                UsageDaily.team_id,
                UsageDaily.day,
                UsageDaily.user_id,
                UsageDaily.channel_id,
                UsageDaily.model_used,
                *daily_columns,
            )
        ).all()
        monthly_rows = connection.execute(
            select(
                UsageMonthly.team_id,
                UsageMonthly.month,
                UsageMonthly.scope,
                UsageMonthly.scope_id,
                *monthly_columns,
            )
        ).all()
    cost_at = _DAILY_SUMS.index("cost_usd")
    daily = {
        tuple(row[:5]): tuple(_money(v) if i == cost_at else v for i, v in enumerate(row[5:]))
        for row in daily_rows
    }
    cost_at = _MONTHLY_SUMS.index("cost_usd")
    monthly = {
        tuple(row[:4]): tuple(_money(v) if i == cost_at else v for i, v in enumerate(row[4:]))
        for row in monthly_rows
    }
    return daily, monthly


def _everything(engine: Engine) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Every column of both tables, `notified` included, for comparing before and after."""
    with engine.connect() as connection:
        daily = connection.execute(select(UsageDaily.__table__)).all()
        monthly = connection.execute(select(UsageMonthly.__table__)).all()
    return {tuple(row) for row in daily}, {tuple(row) for row in monthly}


def assert_totals_match_responses(engine: Engine) -> None:
    """The totals equal the sums of `responses`, and a rebuild from it changes nothing."""
    expected_daily, expected_monthly = from_responses(engine)
    daily, monthly = stored(engine)
    assert daily == expected_daily
    assert monthly == expected_monthly

    before = _everything(engine)
    with engine.begin() as connection:
        totals.rebuild(connection)
    assert _everything(engine) == before
