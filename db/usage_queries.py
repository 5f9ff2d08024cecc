"""Aggregate queries behind the usage reports. They take a Session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    exists,
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from db.models import Feedback, Response, User

# Percentile fractions are applied in integer arithmetic (see `_percentiles_by_window`).
_SCALE = 10_000
# Where PostgreSQL's date_bin() starts counting days: any UTC midnight.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


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
    # The percentile sort holds every duration of the period: with the default 4 MB it spills
    # to disk. JIT compiling costs more than it saves on queries that run for ~100 ms.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    session.execute(text("SET LOCAL jit = off"))


def breakdown(session: Session, usage: UsageFilter) -> Breakdown:
    """Tally the filtered responses in total and by model, user, channel and day."""
    rows = _base_rows(session, usage)
    # Two pairings, not four single keys: every hash set costs a lookup and seven aggregate
    # steps per row, while the pairs stay small (models x users, channels x days) and are
    # summed up in Python.
    model_user = (rows.c.model, rows.c.user_id)
    channel_day = (rows.c.channel, rows.c.day)
    if _dialect(session) == "postgresql":
        # One scan of the covering index, hashed both ways at once.
        statement = select(
            func.grouping(rows.c.model, rows.c.channel),
            *model_user,
            *channel_day,
            *_aggregates(rows),
        ).group_by(func.grouping_sets(tuple_(*model_user), tuple_(*channel_day)))
        pairs = [
            (row[0] == 0b01, *(row[1:3] if row[0] == 0b01 else row[3:5]), row[5:])
            for row in session.execute(statement)
        ]
    else:
        # SQLite has no GROUPING SETS; it serves small workspaces, so two passes are fine.
        pairs = []
        for is_model_user, pair in ((True, model_user), (False, channel_day)):
            statement = select(*pair, *_aggregates(rows)).group_by(*pair)
            pairs.extend(
                (is_model_user, row[0], row[1], row[2:]) for row in session.execute(statement)
            )
    # Plain lists while summing: thousands of pairs, and a Tally per step would show.
    sums: dict[tuple[str, Any], list[Any]] = {}
    for is_model_user, first, second, values in pairs:
        if is_model_user:
            keys = [("total", None), ("model", first), ("user", second)]
        else:
            keys = [("channel", first), ("day", _as_date(second))]
        for key in keys:
            into = sums.get(key)
            if into is None:
                sums[key] = [0 if value is None else value for value in values]
            else:
                for index, value in enumerate(values):
                    if value is not None:
                        into[index] += value
    result: dict[str, dict[Any, Tally]] = {"total": {}, "model": {}, "user": {}, "channel": {}}
    result["day"] = {}
    for (kind, key), values in sums.items():
        result[kind][key] = _tally(values)
    return Breakdown(
        total=result["total"].get(None, Tally()),
        by_model=result["model"],
        by_user=result["user"],
        by_channel=result["channel"],
        by_day=result["day"],
    )


@dataclass(frozen=True)
class Ratings:
    """Answers with at least one vote, and those with more thumbs up than down."""

    rated: int = 0
    positive: int = 0


def ratings_by_model(session: Session, usage: UsageFilter) -> dict[str, Ratings]:
    """The filtered answers' ratings by model: one grouped query over their feedback rows."""
    per_answer = (
        select(
            Response.model_used.label("model"),
            func.count().filter(Feedback.rating == "up").label("ups"),
            func.count().filter(Feedback.rating == "down").label("downs"),
        )
        .join(Feedback, Feedback.response_id == Response.id)
        .where(*_conditions(usage))
        .group_by(Response.id, Response.model_used)
        .subquery("per_answer")
    )
    statement = select(
        per_answer.c.model,
        func.count(),
        func.count().filter(per_answer.c.ups > per_answer.c.downs),
    ).group_by(per_answer.c.model)
    return {
        model: Ratings(rated=int(rated), positive=int(positive))
        for model, rated, positive in session.execute(statement)
    }


def completion_percentiles(
    session: Session, usage: UsageFilter, *, fractions: Sequence[float]
) -> tuple[float, ...] | None:
    """Percentiles of completion time in ms, interpolated as percentile_cont; None if no rows."""
    if _dialect(session) == "postgresql":
        # Ordered-set aggregates with the same ORDER BY share one sort.
        statement = select(
            *(
                func.percentile_cont(fraction).within_group(Response.completion_time_ms)
                for fraction in fractions
            )
        ).where(*_conditions(usage))
        row = session.execute(statement).one()
        return None if row[0] is None else tuple(float(value) for value in row)
    return _percentiles_by_window(session, usage, fractions)


def users_by_id(session: Session, ids: Sequence[int]) -> dict[int, User]:
    """The users rows with these ids."""
    if not ids:
        return {}
    return {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}


def user_ids_for(session: Session, slack_user_id: str, *, team_id: str | None = None) -> list[int]:
    """The ids of the users rows of a Slack member, in one workspace or in all of them."""
    statement = select(User.id).where(User.slack_user_id == slack_user_id)
    if team_id is not None:
        statement = statement.where(User.team_id == team_id)
    return list(session.scalars(statement.order_by(User.id)))


def users_named(session: Session, team_id: str, *, name: str) -> list[User]:
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


def models_used(session: Session, team_id: str, *, since: datetime) -> list[str]:
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
        # The start of the UTC day, by arithmetic on the stored instant: converting every row
        # to a date in a time zone (timezone('UTC', …)::date) costs a sixth of the whole report.
        return func.date_bin(timedelta(days=1), Response.created_at, _EPOCH)
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


def _as_date(value: datetime | str) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value.astimezone(UTC).date()


def _percentiles_by_window(
    session: Session, usage: UsageFilter, fractions: Sequence[float]
) -> tuple[float, ...] | None:
    # percentile_cont by hand, for SQLite: rank the durations, keep the one or two rows around
    # each fraction's position (n - 1) * p, and interpolate in Python. Integer arithmetic keeps
    # the SQL and the Python side in agreement on where each position falls.
    ranked = (
        select(
            Response.completion_time_ms.label("ms"),
            (func.row_number().over(order_by=Response.completion_time_ms) - 1).label("i"),
            func.count().over().label("n"),
        )
        .where(*_conditions(usage))
        .subquery("ranked")
    )
    wanted = []
    for fraction in fractions:
        low = (ranked.c.n - 1) * _scaled(fraction) // _SCALE
        wanted.append(or_(ranked.c.i == low, ranked.c.i == low + 1))
    statement = select(ranked.c.i, ranked.c.n, ranked.c.ms).where(or_(*wanted))
    rows = session.execute(statement).all()
    if not rows:
        return None
    by_index = {index: ms for index, _, ms in rows}
    count = rows[0].n
    points = []
    for fraction in fractions:
        low, rest = divmod((count - 1) * _scaled(fraction), _SCALE)
        value = float(by_index[low])
        if rest:
            value += (by_index[low + 1] - by_index[low]) * rest / _SCALE
        points.append(value)
    return tuple(points)


def _scaled(fraction: float) -> int:
    return round(fraction * _SCALE)
