"""Running totals of the accounting: daily per member, channel and model, and per each of
them alone; monthly per scope.

`add` is called in the transaction that inserts each `responses` row, so the totals move
with the accounting and never drift from it; `rebuild` recomputes them from `responses` in
set-based statements (`python -m bot usage --rebuild-totals`, and the migration that created
them). Both count a response the same way, which a test holds them to.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    SQLColumnExpression,
    String,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from db.dialects import insert_for, rowcount
from db.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    Response,
    UsageDaily,
    UsageMonthly,
    User,
)
from db.usage_models import UsageDailyScope


@dataclass(frozen=True)
class Tally:
    """Counts and sums over a set of responses; `cost_usd` leaves out the unpriced ones.

    What the reports add up from `usage_daily`, and what a budget reads from `usage_monthly`
    (which keeps no prompt tokens: 0 there).
    """

    requests: int = 0
    errors: int = 0
    tokens_prompt: int = 0
    tokens_completion: int = 0
    tokens_total: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Tally)}
        )

    @staticmethod
    def summed(tallies: Iterable[Tally]) -> Tally:
        """The tallies added up (an empty Tally for none)."""
        return sum(tallies, Tally())


_DAILY = UsageDaily.__table__
_MONTHLY = UsageMonthly.__table__
_SCOPED = UsageDailyScope.__table__
_DAILY_KEY = ("team_id", "day", "user_id", "channel_id", "model_used")
_MONTHLY_KEY = ("team_id", "month", "scope", "scope_id")
_SCOPED_KEY = ("team_id", "day", "scope", "scope_id")
_DAILY_SUMS = (
    "requests",
    "errors",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "cost_usd",
    "unpriced",
)
_MONTHLY_SUMS = ("requests", "errors", "tokens_completion", "tokens_total", "cost_usd", "unpriced")
# What a response adds to its daily rows: every figure and the whole histogram (1 in its bucket,
# 0 in the rest), so that the statement is the same whatever the bucket.
_DAILY_FIGURES = (*_DAILY_SUMS, *LATENCY_COLUMNS)


def latency_bucket(ms: int) -> int:
    """The index of the completion-time bucket `ms` falls in."""
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms < bound:
            return index
    return len(LATENCY_BOUNDS_MS)


def month_of(day: date) -> date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def add(session: Session, response: Mapping[str, Any], *, slack_user_id: str | None) -> None:
    """Count one response (as given to the `responses` insert) in the totals."""
    at: datetime = response["created_at"]
    day = at.astimezone(UTC).date()
    cost = response.get("cost_usd")
    figures = {
        "requests": 1,
        "errors": int(response.get("status") == "error"),
        "tokens_prompt": response.get("tokens_prompt") or 0,
        "tokens_completion": response.get("tokens_completion") or 0,
        "tokens_total": response.get("tokens_total") or 0,
        "cost_usd": Decimal(0) if cost is None else cost,
        "unpriced": int(cost is None),
    }
    bucket = LATENCY_COLUMNS[latency_bucket(response.get("completion_time_ms") or 0)]
    daily = {
        "team_id": response["team_id"],
        "day": day,
        "user_id": response.get("user_id") or 0,
        "channel_id": response.get("channel_id") or "",
        "model_used": response["model_used"],
        **figures,
        **dict.fromkeys(LATENCY_COLUMNS, 0),
        bucket: 1,
    }
    _upsert(session, _DAILY, [daily], key=_DAILY_KEY, sums=_DAILY_FIGURES)
    # The three scopes always in this order, like the monthly rows below. The model's row of
    # the day is shared by every turn of the workspace with that model, but so is the
    # workspace's monthly row already: it adds no wait of its own (bench/ledger.py).
    common = {name: value for name, value in daily.items() if name not in _DAILY_KEY}
    scoped = [
        {"team_id": daily["team_id"], "day": day, "scope": scope, "scope_id": scope_id, **common}
        for scope, scope_id in (
            ("model", daily["model_used"]),
            ("user", str(daily["user_id"] or "")),
            ("channel", daily["channel_id"]),
        )
    ]
    _upsert(session, _SCOPED, scoped, key=_SCOPED_KEY, sums=_DAILY_FIGURES)
    scopes = [("workspace", "")]
    if response.get("channel_id"):
        scopes.append(("channel", response["channel_id"]))
    if slack_user_id:
        scopes.append(("user", slack_user_id))
    # Always in this order (workspace, channel, member): two transactions that lock the same
    # rows lock them in the same order, so they wait for each other rather than deadlock.
    sums = {name: figures[name] for name in _MONTHLY_SUMS}
    monthly = [
        {
            "team_id": response["team_id"],
            "month": month_of(day),
            "scope": scope,
            "scope_id": scope_id,
            "notified": False,
            **sums,
        }
        for scope, scope_id in scopes
    ]
    _upsert(session, _MONTHLY, monthly, key=_MONTHLY_KEY, sums=_MONTHLY_SUMS)


def _upsert(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    key: tuple[str, ...],
    sums: tuple[str, ...],
) -> None:
    """Add each of `rows` to its row's sums, or insert it.

    The statement is built once per table and SQLAlchemy caches its compiled form: built for
    each response, with its `excluded` columns, the totals cost 2 to 3 ms of CPU a response,
    most of its recording (bench/ledger.py). Several rows go as an executemany: a statement
    with a VALUES list is never cached, and compiling it each time cost more than it saved.
    """
    statement = _upsert_of(session.get_bind().dialect.name, table, key, sums)
    session.execute(statement, rows if len(rows) > 1 else rows[0])


@functools.cache
def _upsert_of(
    dialect: str, table: Table, key: tuple[str, ...], sums: tuple[str, ...]
) -> Executable:
    statement = insert_for(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )


# ----- rebuilding from `responses` -------------------------------------------------------------


def hold_back_recording(session: Session) -> None:
    """Make responses recorded from now on wait until this transaction ends (PostgreSQL).

    A response recorded during a rebuild could make it fail on a total it writes too (a
    unique violation, once its work is done): recording waits for the rebuild instead, as it
    does on SQLite, where `begin()` takes the write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE responses IN SHARE MODE"))


def rebuild(bind: Session | Connection, *, daily_scopes: bool = True) -> tuple[int, int]:
    """Recompute every total from `responses`; (daily rows, monthly rows) written.

    Run it in one transaction: readers see the old totals until it commits. The months whose
    80 % notice went out keep that mark, so a rebuild sends no notice twice. `daily_scopes=False`
    leaves `usage_daily_scopes` alone: the migration that created the other totals (0006)
    runs before that table exists.
    """
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    notified = [
        tuple(row)
        for row in bind.execute(
            select(*(_MONTHLY.c[name] for name in _MONTHLY_KEY)).where(_MONTHLY.c.notified)
        )
    ]
    bind.execute(delete(_DAILY))
    bind.execute(delete(_MONTHLY))
    if daily_scopes:
        bind.execute(delete(_SCOPED))
    day = _day(dialect)
    is_error = case((Response.status == "error", 1), else_=0)
    unpriced = case((Response.cost_usd.is_(None), 1), else_=0)
    buckets = []
    # No lower bound on the first bucket: `latency_bucket` puts anything under 50 ms there.
    lower: int | None = None
    for upper in (*LATENCY_BOUNDS_MS, None):
        within = [Response.completion_time_ms >= lower] if lower is not None else []
        if upper is not None:
            within.append(Response.completion_time_ms < upper)
        buckets.append(func.sum(case((and_(*within), 1), else_=0)))
        lower = upper
    daily = select(
        Response.team_id,
        day,
        func.coalesce(Response.user_id, 0),
        func.coalesce(Response.channel_id, ""),
        Response.model_used,
        func.count(),
        func.sum(is_error),
        func.sum(Response.tokens_prompt),
        func.sum(Response.tokens_completion),
        func.sum(Response.tokens_total),
        func.coalesce(func.sum(Response.cost_usd), 0),
        func.sum(unpriced),
        *buckets,
    ).group_by(
        Response.team_id,
        day,
        func.coalesce(Response.user_id, 0),
        func.coalesce(Response.channel_id, ""),
        Response.model_used,
    )
    # Written a day at a time, as they accumulate in life: a report reads a range of days,
    # from a third of the pages when they are not strewn over the table (a hash's order).
    daily = daily.order_by(day, Response.team_id)
    columns = [*_DAILY_KEY, *_DAILY_SUMS, *LATENCY_COLUMNS]
    daily_rows = rowcount(bind.execute(_DAILY.insert().from_select(columns, daily)))
    if daily_scopes:
        _fill_scopes(bind)

    month = _month(dialect)
    monthly_rows = 0
    sums = (
        func.count(),
        func.sum(is_error),
        func.sum(Response.tokens_completion),
        func.sum(Response.tokens_total),
        func.coalesce(func.sum(Response.cost_usd), 0),
        func.sum(unpriced),
        literal(False),
    )
    scopes: list[tuple[str, SQLColumnExpression[Any], list[ColumnElement[bool]]]] = [
        ("workspace", literal(""), []),
        ("channel", Response.channel_id, [Response.channel_id.is_not(None)]),
        ("user", User.slack_user_id, []),
    ]
    for scope, scope_id, conditions in scopes:
        source = select(Response.team_id, month, literal(scope), scope_id, *sums)
        if scope == "user":
            source = source.join(User, User.id == Response.user_id)
        grouping = [Response.team_id, month] + ([scope_id] if scope != "workspace" else [])
        source = source.where(*conditions).group_by(*grouping)
        monthly_rows += rowcount(
            bind.execute(
                _MONTHLY.insert().from_select([*_MONTHLY_KEY, *_MONTHLY_SUMS, "notified"], source)
            )
        )
    if notified:
        key = tuple_(*(_MONTHLY.c[name] for name in _MONTHLY_KEY))
        bind.execute(update(_MONTHLY).where(key.in_(notified)).values(notified=True))
    return daily_rows, monthly_rows


def _fill_scopes(bind: Session | Connection) -> None:
    """The daily totals per scope, summed from the daily totals just rebuilt (a tenth of the
    rows of `responses`: 1.2 M at 10 M responses in the bench)."""
    columns = [*_SCOPED_KEY, *_DAILY_SUMS, *LATENCY_COLUMNS]
    figures = [func.sum(_DAILY.c[name]) for name in (*_DAILY_SUMS, *LATENCY_COLUMNS)]
    user = case((_DAILY.c.user_id == 0, ""), else_=cast(_DAILY.c.user_id, String(32)))
    scopes: list[tuple[str, ColumnElement[Any], ColumnElement[Any]]] = [
        ("model", _DAILY.c.model_used, _DAILY.c.model_used),
        ("user", user, _DAILY.c.user_id),
        ("channel", _DAILY.c.channel_id, _DAILY.c.channel_id),
    ]
    for scope, scope_id, grouped_by in scopes:
        source = (
            select(_DAILY.c.team_id, _DAILY.c.day, literal(scope), scope_id, *figures)
            .group_by(_DAILY.c.team_id, _DAILY.c.day, grouped_by)
            .order_by(_DAILY.c.day, _DAILY.c.team_id)
        )
        bind.execute(_SCOPED.insert().from_select(columns, source))


def _day(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.timezone("UTC", Response.created_at), Date)
    # SQLite keeps UTC wall-clock text ('2026-11-01 12:00:00.000000'); date() cuts the day.
    return func.date(Response.created_at)


def _month(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.date_trunc("month", func.timezone("UTC", Response.created_at)), Date)
    return func.date(Response.created_at, "start of month")
