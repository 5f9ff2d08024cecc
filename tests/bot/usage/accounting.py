"""The running totals held to the accounting: the same figures summed straight from `responses`.

The sums are computed here, in Python over the rows, rather than by `db.totals`' own
statements: what the totals are compared with must not share their mistakes. So are the
figures of a report of a whole workspace (read from the totals per scope) and of a report
narrowed to a model (read from the totals per member x channel x model).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db import totals
from db.models import LATENCY_COLUMNS, Response, UsageDaily, UsageMonthly, User
from db.usage_models import UsageDailyScope
from db.usage_queries import Breakdown, UsageFilter, breakdown

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


def from_responses(engine: Engine) -> tuple[Sums, Sums, Sums]:
    """(daily, monthly, per scope) totals as `responses` says they must be, GROUP BY here."""
    query = select(*_ROW, User.slack_user_id).outerjoin(User, User.id == Response.user_id)
    daily: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * len(_DAILY_SUMS))
    monthly: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * len(_MONTHLY_SUMS))
    scoped: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0] * len(_DAILY_SUMS))
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
        for row in (
            daily[(team, day, user or 0, channel or "", model)],
            scoped[(team, day, "model", model)],
            scoped[(team, day, "user", str(user or ""))],
            scoped[(team, day, "channel", channel or "")],
        ):
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
        {key: tuple(value) for key, value in scoped.items()},
    )


def stored(engine: Engine) -> tuple[Sums, Sums, Sums]:
    """(daily, monthly, per scope) totals as the tables hold them, shaped as `from_responses`."""
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
        scoped_rows = connection.execute(
            select(
                UsageDailyScope.team_id,
                UsageDailyScope.day,
                UsageDailyScope.scope,
                UsageDailyScope.scope_id,
                *(UsageDailyScope.__table__.c[name] for name in _DAILY_SUMS),
            )
        ).all()
    cost_at = _DAILY_SUMS.index("cost_usd")
    scoped = {
        tuple(row[:4]): tuple(_money(v) if i == cost_at else v for i, v in enumerate(row[4:]))
        for row in scoped_rows
    }
    daily = {
        tuple(row[:5]): tuple(_money(v) if i == cost_at else v for i, v in enumerate(row[5:]))
        for row in daily_rows
    }
    cost_at = _MONTHLY_SUMS.index("cost_usd")
    monthly = {
        tuple(row[:4]): tuple(_money(v) if i == cost_at else v for i, v in enumerate(row[4:]))
        for row in monthly_rows
    }
    return daily, monthly, scoped


def _everything(engine: Engine) -> list[set[tuple[Any, ...]]]:
    """Every column of the three tables, `notified` included, for comparing before and after."""
    with engine.connect() as connection:
        return [
            {tuple(row) for row in connection.execute(select(table.__table__))}
            for table in (UsageDaily, UsageMonthly, UsageDailyScope)
        ]


def assert_totals_match_responses(engine: Engine) -> None:
    """The totals equal the sums of `responses`, and a rebuild from it changes nothing; the
    reports read from them say what the rows say."""
    assert stored(engine) == from_responses(engine)
    assert_reports_match_responses(engine)

    before = _everything(engine)
    with engine.begin() as connection:
        totals.rebuild(connection)
    assert _everything(engine) == before


# ----- the reports' figures against the rows -------------------------------------------------


def assert_reports_match_responses(engine: Engine) -> None:
    """Every workspace's report (and all of them together) over whole days, over a period that
    cuts its first day, and narrowed to one model, equals the rows counted here."""
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(select(*_ROW))]
    if not rows:
        return
    moments = [_utc(row[1]) for row in rows]
    first = datetime.combine(min(moments).date(), time(), UTC)
    end = datetime.combine(max(moments).date(), time(), UTC) + timedelta(days=1)
    periods = [(first, end), (first + timedelta(hours=12, microseconds=1), end)]
    filters: list[dict[str, Any]] = [{"team_id": None}]
    filters += [{"team_id": team} for team in sorted({row[0] for row in rows})]
    filters.append({"team_id": rows[0][0], "model": rows[0][4]})
    with Session(engine) as session:
        for start, stop in periods:
            for narrowed in filters:
                usage = UsageFilter(start=start, end=stop, **narrowed)
                assert _counted(usage, rows) == _read(breakdown(session, usage)), (usage, rows)


_ROW = (
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
)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


Figures = dict[tuple[str, Any], tuple[Any, ...]]


def _counted(usage: UsageFilter, rows: list[tuple[Any, ...]]) -> tuple[Figures, list[int]]:
    """The report's lines (kind, key) -> figures, and its histogram, counted row by row."""
    lines: dict[tuple[str, Any], list[Any]] = defaultdict(lambda: [0] * 7)
    latency = [0] * len(LATENCY_COLUMNS)
    for team, at, user, channel, model, status, prompt, completion, total, cost, ms in rows:
        at = _utc(at)
        if not usage.start <= at < usage.end or usage.team_id not in (None, team):
            continue
        if usage.model not in (None, model):
            continue
        figures = [1, int(status == "error"), prompt, completion, total, _money(cost)]
        figures.append(int(cost is None))
        for key in (("total", None), ("model", model), ("user", user), ("channel", channel)):
            line = lines[key]
            for index, value in enumerate(figures):
                line[index] += value
        for index, value in enumerate(figures):
            lines["day", at.date()][index] += value
        latency[totals.latency_bucket(ms)] += 1
    return {key: tuple(value) for key, value in lines.items()}, latency


def _read(report: Breakdown) -> tuple[Figures, list[int]]:
    """The same shape from what `breakdown` read."""
    lines: Figures = {}
    keyed: list[tuple[str, dict[Any, Any]]] = [
        ("model", report.by_model),
        ("user", report.by_user),
        ("channel", report.by_channel),
        ("day", report.by_day),
    ]
    if report.total.requests:
        keyed.insert(0, ("total", {None: report.total}))
    for kind, tallies in keyed:
        for key, tally in tallies.items():
            lines[kind, key] = (
                tally.requests,
                tally.errors,
                tally.tokens_prompt,
                tally.tokens_completion,
                tally.tokens_total,
                _money(tally.cost_usd),
                tally.unpriced,
            )
    return lines, list(report.latency)
