"""Aggregate queries behind the usage reports. They take a Session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    cast,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

from db.models import Response, User

# Percentile fractions are applied in integer arithmetic (see `_percentiles_by_window`).
_SCALE = 10_000


@dataclass(frozen=True)
class UsageFilter:
    """Which responses a report counts: a time range and, optionally, narrower criteria."""

    start: datetime
    end: datetime
    # None counts every workspace: only the operators' command line does that.
    team_id: str | None = None
    user_ids: tuple[int, ...] | None = None
    channel_id: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class Tally:
    """Counts and sums over a set of responses; `cost_usd` leaves out the unpriced ones."""

    requests: int = 0
    errors: int = 0
    tokens_prompt: int = 0
    tokens_completion: int = 0
    tokens_total: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0


@dataclass(frozen=True)
class Breakdown:
    """The totals of a filter, and the same figures by model, user, channel and UTC day."""

    total: Tally = field(default_factory=Tally)
    by_model: dict[str, Tally] = field(default_factory=dict)
    by_user: dict[int | None, Tally] = field(default_factory=dict)
    by_channel: dict[str | None, Tally] = field(default_factory=dict)
    by_day: dict[date, Tally] = field(default_factory=dict)


def prepare_report_transaction(session: Session) -> None:
    """Tune the current PostgreSQL transaction for one large aggregate read (no-op elsewhere)."""
    if _dialect(session) != "postgresql":
        return
    # The percentile sorts hold every duration of the period: with the default 4 MB they
    # spill to disk. JIT compiling costs more than it saves on a query that runs ~100 ms.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    session.execute(text("SET LOCAL jit = off"))


def breakdown(session: Session, usage: UsageFilter) -> Breakdown:
    """Tally the filtered responses in total and by model, user, channel and day."""
    rows = _base_rows(session, usage)
    keys = {"model": rows.c.model, "user": rows.c.user_id, "channel": rows.c.channel}
    keys["day"] = rows.c.day
    result: dict[str, dict[Any, Tally]] = {kind: {} for kind in ("total", *keys)}
    if _dialect(session) == "postgresql":
        # One scan of the index, hashed five ways at once.
        grouping = func.grouping(*keys.values())
        sets = func.grouping_sets(tuple_(), *(tuple_(column) for column in keys.values()))
        statement = select(grouping, *keys.values(), *_aggregates(rows)).group_by(sets)
        bit = {"total": 0b1111, "model": 0b0111, "user": 0b1011, "channel": 0b1101, "day": 0b1110}
        kind_of = {mask: kind for kind, mask in bit.items()}
        for row in session.execute(statement):
            kind = kind_of[row[0]]
            key = None if kind == "total" else row[1 + list(keys).index(kind)]
            result[kind][key] = _tally(row[5:])
    else:
        # SQLite has no GROUPING SETS; it serves small workspaces, so five passes are fine.
        total = session.execute(select(*_aggregates(rows))).one()
        result["total"][None] = _tally(total)
        for kind, column in keys.items():
            for row in session.execute(select(column, *_aggregates(rows)).group_by(column)):
                result[kind][row[0]] = _tally(row[1:])
    by_day = {_as_date(day): tally for day, tally in result["day"].items()}
    return Breakdown(
        total=result["total"].get(None, Tally()),
        by_model=result["model"],
        by_user=result["user"],
        by_channel=result["channel"],
        by_day=by_day,
    )


def completion_percentiles(
    session: Session, usage: UsageFilter, fractions: Sequence[float]
) -> dict[str | None, tuple[float, ...]]:
    """Percentiles of completion time (ms, interpolated) by model; the key None is all models."""
    if _dialect(session) == "postgresql":
        return _percentiles_by_ordered_set(session, usage, fractions)
    return _percentiles_by_window(session, usage, fractions)


def users_by_id(session: Session, ids: Sequence[int]) -> dict[int, User]:
    """The users rows with these ids."""
    if not ids:
        return {}
    return {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}


def user_ids_for(session: Session, slack_user_id: str, team_id: str | None = None) -> list[int]:
    """The ids of the users rows of a Slack member, in one workspace or in all of them."""
    statement = select(User.id).where(User.slack_user_id == slack_user_id)
    if team_id is not None:
        statement = statement.where(User.team_id == team_id)
    return list(session.scalars(statement.order_by(User.id)))


def users_named(session: Session, team_id: str, name: str) -> list[User]:
    """The workspace's users whose username or full name is `name`, ignoring case."""
    lowered = name.lower()
    return list(
        session.scalars(
            select(User)
            .where(
                User.team_id == team_id,
                or_(func.lower(User.username) == lowered, func.lower(User.full_name) == lowered),
            )
            .order_by(User.id)
        )
    )


def has_usage(
    session: Session,
    team_id: str,
    *,
    user_id: int | None = None,
    channel_id: str | None = None,
    model: str | None = None,
) -> bool:
    """Whether any response at all (any time) matches: tells an unknown name from a quiet one."""
    conditions = [Response.team_id == team_id]
    if user_id is not None:
        conditions.append(Response.user_id == user_id)
    if channel_id is not None:
        conditions.append(Response.channel_id == channel_id)
    if model is not None:
        conditions.append(Response.model_used == model)
    return bool(session.scalar(select(exists().where(*conditions))))


def models_used(session: Session, team_id: str, since: datetime) -> list[str]:
    """The models the workspace used since `since`, by name."""
    return list(
        session.scalars(
            select(Response.model_used)
            .where(Response.team_id == team_id, Response.created_at >= _utc(since))
            .distinct()
            .order_by(Response.model_used)
        )
    )


# ----- building blocks ---------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _utc(moment: datetime) -> datetime:
    # SQLite stores the wall-clock fields and drops the offset: compare in UTC, always.
    return moment.astimezone(UTC)


def _conditions(usage: UsageFilter) -> list[ColumnElement[bool]]:
    conditions = [
        Response.created_at >= _utc(usage.start),
        Response.created_at < _utc(usage.end),
    ]
    if usage.team_id is not None:
        conditions.append(Response.team_id == usage.team_id)
    if usage.user_ids is not None:
        conditions.append(Response.user_id.in_(usage.user_ids))
    if usage.channel_id is not None:
        conditions.append(Response.channel_id == usage.channel_id)
    if usage.model is not None:
        conditions.append(Response.model_used == usage.model)
    return conditions


def _day(session: Session) -> ColumnElement[Any]:
    if _dialect(session) == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), Response.created_at), Date)
    # SQLite keeps UTC wall-clock text ('2026-11-01 12:00:00.000000'); date() cuts the day.
    return func.date(Response.created_at)


def _base_rows(session: Session, usage: UsageFilter) -> Any:
    return (
        select(
            Response.model_used.label("model"),
            Response.user_id,
            Response.channel_id.label("channel"),
            _day(session).label("day"),
            Response.status,
            Response.tokens_prompt,
            Response.tokens_completion,
            Response.tokens_total,
            Response.cost_usd,
        )
        .where(*_conditions(usage))
        .subquery("rows")
    )


def _aggregates(rows: Any) -> tuple[ColumnElement[Any], ...]:
    return (
        func.count(),
        func.count().filter(rows.c.status == "error"),
        func.coalesce(func.sum(rows.c.tokens_prompt), 0),
        func.coalesce(func.sum(rows.c.tokens_completion), 0),
        func.coalesce(func.sum(rows.c.tokens_total), 0),
        func.sum(rows.c.cost_usd),
        func.count().filter(rows.c.cost_usd.is_(None)),
    )


def _tally(values: Sequence[Any]) -> Tally:
    requests, errors, prompt, completion, total, cost, unpriced = values
    return Tally(
        requests=int(requests),
        errors=int(errors),
        tokens_prompt=int(prompt),
        tokens_completion=int(completion),
        tokens_total=int(total),
        cost_usd=Decimal(0) if cost is None else Decimal(cost),
        unpriced=int(unpriced),
    )


def _as_date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _percentiles_by_ordered_set(
    session: Session, usage: UsageFilter, fractions: Sequence[float]
) -> dict[str | None, tuple[float, ...]]:
    model = Response.model_used
    # Ordered-set aggregates with the same ORDER BY share one sort per group.
    columns = [
        func.percentile_cont(fraction).within_group(Response.completion_time_ms)
        for fraction in fractions
    ]
    statement: Select[Any] = (
        select(func.grouping(model), model, *columns)
        .where(*_conditions(usage))
        .group_by(func.rollup(model))
    )
    return {
        (None if row[0] else row[1]): tuple(float(value) for value in row[2:])
        for row in session.execute(statement)
    }


def _percentiles_by_window(
    session: Session, usage: UsageFilter, fractions: Sequence[float]
) -> dict[str | None, tuple[float, ...]]:
    # percentile_cont by hand: rank the durations, keep the one or two rows around each
    # fraction's position (n - 1) * p, and interpolate in Python. Integer arithmetic keeps the
    # SQL and the Python side in agreement on where each position falls.
    durations = (
        select(Response.model_used.label("model"), Response.completion_time_ms.label("ms"))
        .where(*_conditions(usage))
        .cte("durations")
    )

    def ranked(model: ColumnClause[Any] | None) -> Select[Any]:
        partition = [model] if model is not None else None
        return select(
            (model if model is not None else null()).label("model"),
            durations.c.ms,
            (func.row_number().over(partition_by=partition, order_by=durations.c.ms) - 1).label(
                "i"
            ),
            func.count().over(partition_by=partition).label("n"),
        )

    ranks = union_all(ranked(durations.c.model), ranked(None)).subquery("ranks")
    wanted = []
    for fraction in fractions:
        low = (ranks.c.n - 1) * round(fraction * _SCALE) // _SCALE
        wanted.append(or_(ranks.c.i == low, ranks.c.i == low + 1))
    statement = select(ranks.c.model, ranks.c.i, ranks.c.n, ranks.c.ms).where(or_(*wanted))
    values: dict[str | None, dict[int, int]] = {}
    counts: dict[str | None, int] = {}
    for model, index, count, ms in session.execute(statement):
        values.setdefault(model, {})[index] = ms
        counts[model] = count
    result = {}
    for model, by_index in values.items():
        n = counts[model]
        points = []
        for fraction in fractions:
            scaled = (n - 1) * round(fraction * _SCALE)
            low, rest = divmod(scaled, _SCALE)
            value = float(by_index[low])
            if rest:
                value += (by_index[low + 1] - by_index[low]) * rest / _SCALE
            points.append(value)
        result[model] = tuple(points)
    return result
