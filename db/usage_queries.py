"""Aggregate queries behind the usage reports. They take a Session and never commit.

The reports read the running totals (db/totals.py) for the whole UTC days of a period, and
`responses` rows only for the part of a day at either end that the period cuts: a few rows per
day however long the bot has run, and the same figures as the rows. A report of a whole
workspace (or of every one) reads the day's totals per model, member and channel
(`usage_daily_scopes`); a narrower one the totals per member x channel x model (`usage_daily`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Table,
    case,
    func,
    literal,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from db.models import LATENCY_BOUNDS_MS, LATENCY_COLUMNS, Response, UsageDaily
from db.totals import Tally
from db.usage_models import UsageDailyScope

_DAY = timedelta(days=1)
_SCOPED = UsageDailyScope.__table__


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
    # True when `end` is the moment the report was asked for: nothing is recorded after it
    # yet, so the totals of its day count whole and no responses rows are read for it.
    ends_now: bool = False


@dataclass(frozen=True)
class Breakdown:
    """The totals of a filter, and the same figures by model, user, channel and UTC day."""

    total: Tally = field(default_factory=Tally)
    by_model: dict[str, Tally] = field(default_factory=dict)
    by_user: dict[int | None, Tally] = field(default_factory=dict)
    by_channel: dict[str | None, Tally] = field(default_factory=dict)
    by_day: dict[date, Tally] = field(default_factory=dict)
    # Requests per completion-time bucket (db.models.LATENCY_BOUNDS_MS) of the total.
    latency: tuple[int, ...] = (0,) * len(LATENCY_COLUMNS)


def room_to_hash(session: Session) -> None:
    """Let this PostgreSQL transaction hash a report's groups in memory (no-op elsewhere).

    With the default 4 MB work_mem the planner sorts the grouping sets instead, spilling to
    disk: the default report at 10M responses took 119 ms in that query, 37 ms with 64 MB.
    """
    if _dialect(session) == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def breakdown(session: Session, usage: UsageFilter) -> Breakdown:
    """Tally the filtered responses in total and by model, user, channel and day, and read
    the completion-time histogram of the total."""
    whole, pieces = _split(usage)
    # Keyed ("total", None), ("model", name), ("user", id), ("channel", id), ("day", date).
    sums: _Sums = {}
    latency = [0] * len(LATENCY_COLUMNS)
    if whole is not None and _whole_workspace(usage):
        _add_scoped_days(session, usage, whole, sums, latency)
        whole = None  # read: only the cut days are left
    parts: list[Select[*tuple[Any, ...]]] = []
    if whole is not None:
        parts.append(_daily_rows(usage, whole))
    parts.extend(_raw_rows(usage, piece) for piece in pieces)
    if parts:
        _add_grouped(session, parts, sums)
        for index, count in enumerate(_latency(session, usage, whole, pieces)):
            latency[index] += count
    result: dict[str, dict[Any, Tally]] = {kind: {} for kind in _KINDS}
    for (kind, key), values in sums.items():
        result[kind][key] = _tally(values)
    return Breakdown(
        total=result["total"].get(None, Tally()),
        by_model=result["model"],
        by_user=result["user"],
        by_channel=result["channel"],
        by_day=result["day"],
        latency=tuple(latency),
    )


# The figures of a report line being summed (_aggregates' order), by (kind, key): plain lists
# while summing, as thousands of pairs with a Tally per step would show.
_Sums = dict[tuple[str, Any], list[Any]]
_KINDS = ("total", "model", "user", "channel", "day")


def _add(sums: _Sums, key: tuple[str, Any], values: Sequence[Any]) -> None:
    into = sums.get(key)
    if into is None:
        sums[key] = [0 if value is None else value for value in values]
    else:
        for index, value in enumerate(values):
            if value is not None:
                into[index] += value


def _add_grouped(session: Session, parts: list[Select[*tuple[Any, ...]]], sums: _Sums) -> None:
    """Sum the rows of `parts` (usage_daily's and responses' in one shape) into `sums`."""
    rows = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("rows")
    # Two pairings, not four single keys: every hash set costs a lookup and seven aggregate
    # steps per row, while the pairs stay small (models x users, channels x days) and are
    # summed up in Python.
    model_user = (rows.c.model, rows.c.user_id)
    channel_day = (rows.c.channel, rows.c.day)
    if _dialect(session) == "postgresql":
        # One scan, hashed both ways at once.
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
    for is_model_user, first, second, values in pairs:
        # The totals count "no member" as 0 and "no channel" as "", for their primary key.
        if is_model_user:
            keys = [("total", None), ("model", first), ("user", second or None)]
        else:
            keys = [("channel", first or None), ("day", second)]
        for key in keys:
            _add(sums, key, values)


def _whole_workspace(usage: UsageFilter) -> bool:
    """Whether the filter is a period alone (of a workspace or all): the totals per scope hold
    every figure of its whole days."""
    return usage.user_ids is None and usage.channel_id is None and usage.model is None


def _add_scoped_days(
    session: Session, usage: UsageFilter, whole: tuple[date, date], sums: _Sums, latency: list[int]
) -> None:
    """Sum the whole days of a whole workspace's report from `usage_daily_scopes`.

    A few hundred rows a day however many members, channels and models pair up: the default
    report at 10 M responses in the bench read 34,753 `usage_daily` rows for its 30 days,
    grouped two ways and summed over 44 histogram columns (85 ms), and reads 7,569 here (5 ms).
    """
    where = [_SCOPED.c.day >= whole[0], _SCOPED.c.day <= whole[1]]
    if usage.team_id is not None:
        where.append(_SCOPED.c.team_id == usage.team_id)
    lines = (
        select(_SCOPED.c.scope, _SCOPED.c.scope_id, *_aggregates(_SCOPED))
        .where(*where)
        .group_by(_SCOPED.c.scope, _SCOPED.c.scope_id)
    )
    for scope, scope_id, *values in session.execute(lines):
        if scope == "model":
            _add(sums, ("total", None), values)
            _add(sums, ("model", scope_id), values)
        elif scope == "user":
            _add(sums, ("user", int(scope_id) if scope_id else None), values)
        else:
            _add(sums, ("channel", scope_id or None), values)
    # Each response counts once in the model rows: the days and the histogram from them.
    histogram = [func.sum(_SCOPED.c[name]) for name in LATENCY_COLUMNS]
    days = (
        select(_SCOPED.c.day, *_aggregates(_SCOPED), *histogram)
        .where(*where, _SCOPED.c.scope == "model")
        .group_by(_SCOPED.c.day)
    )
    width = len(_aggregates(_SCOPED))
    for day, *values in session.execute(days):
        _add(sums, ("day", day), values[:width])
        for index, count in enumerate(values[width:]):
            latency[index] += int(count or 0)


def percentile_ms(latency: Sequence[int], fraction: float) -> float | None:
    """The completion time below which `fraction` of the requests of a histogram fall.

    Linear within the bucket where that rank falls, as Prometheus' histogram_quantile reads
    its buckets: the figure is in the same bucket as the exact one, so within a quarter of it
    (each bound is 1.25 times the one before); under 50 ms within 50 ms. The last bucket has
    no upper bound: a rank there reads as its lower bound. None when the histogram is empty.
    """
    count = sum(latency)
    if not count:
        return None
    rank = fraction * count
    below = 0
    for index, in_bucket in enumerate(latency):
        if in_bucket and below + in_bucket >= rank:
            lower = LATENCY_BOUNDS_MS[index - 1] if index else 0
            if index == len(LATENCY_BOUNDS_MS):
                return float(lower)
            upper = LATENCY_BOUNDS_MS[index]
            return lower + (upper - lower) * max(rank - below, 0) / in_bucket
        below += in_bucket
    raise AssertionError("unreachable: the last non-empty bucket reaches the rank")


# ----- building blocks ---------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _utc(moment: datetime) -> datetime:
    # SQLite stores the wall-clock fields and drops the offset: compare in UTC, always.
    return moment.astimezone(UTC)


def conditions(
    usage: UsageFilter, *, start: datetime | None = None, end: datetime | None = None
) -> list[ColumnElement[bool]]:
    """The filter as conditions on `responses` (its own time range unless given one)."""
    return [
        Response.created_at >= _utc(start or usage.start),
        Response.created_at < _utc(end or usage.end),
        *_narrowed(usage, Response.__table__),
    ]


def _narrowed(usage: UsageFilter, table: Table) -> list[ColumnElement[bool]]:
    """The filter's workspace, members, channel and model, on `responses` or `usage_daily`
    (their columns share these names)."""
    conditions = []
    if usage.team_id is not None:
        conditions.append(table.c.team_id == usage.team_id)
    if usage.user_ids is not None:
        conditions.append(table.c.user_id.in_(usage.user_ids))
    if usage.channel_id is not None:
        conditions.append(table.c.channel_id == usage.channel_id)
    if usage.model is not None:
        conditions.append(table.c.model_used == usage.model)
    return conditions


# A part of one UTC day read from `responses`: the day, and [start, end) within it.
_Piece = tuple[date, datetime, datetime]


def _split(usage: UsageFilter) -> tuple[tuple[date, date] | None, list[_Piece]]:
    """The whole UTC days of the period (first, last) read from the totals, and the rest."""
    start, end = _utc(usage.start), _utc(usage.end)
    first = _next_midnight(start).date()
    # A period that ends now takes its last day's totals whole: nothing comes after now.
    stop = _next_midnight(end).date() if usage.ends_now else end.date()
    if first < stop:
        whole: tuple[date, date] | None = (first, stop - _DAY)
        edges = [(start, _midnight(first))]
        if not usage.ends_now:
            edges.append((_midnight(stop), end))
    else:
        whole, edges = None, [(start, end)]
    pieces = []
    for since, until in edges:
        while since < until:
            cut = min(until, _midnight(since.date() + _DAY))
            pieces.append((since.date(), since, cut))
            since = cut
    return whole, pieces


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _next_midnight(moment: datetime) -> datetime:
    """`moment` itself when it is a UTC midnight, else the midnight after it."""
    midnight = _midnight(moment.date())
    return midnight if midnight == moment else midnight + _DAY


def _daily_conditions(usage: UsageFilter, whole: tuple[date, date]) -> list[ColumnElement[bool]]:
    return [
        UsageDaily.day >= whole[0],
        UsageDaily.day <= whole[1],
        *_narrowed(usage, UsageDaily.__table__),
    ]


def _daily_rows(usage: UsageFilter, whole: tuple[date, date]) -> Select[*tuple[Any, ...]]:
    return select(
        UsageDaily.model_used.label("model"),
        UsageDaily.user_id.label("user_id"),
        UsageDaily.channel_id.label("channel"),
        UsageDaily.day.label("day"),
        UsageDaily.requests,
        UsageDaily.errors,
        UsageDaily.tokens_prompt,
        UsageDaily.tokens_completion,
        UsageDaily.tokens_total,
        UsageDaily.cost_usd,
        UsageDaily.unpriced,
    ).where(*_daily_conditions(usage, whole))


def _raw_rows(usage: UsageFilter, piece: _Piece) -> Select[*tuple[Any, ...]]:
    """One partial day's responses, each as a totals row of one request."""
    day, start, end = piece
    return select(
        Response.model_used.label("model"),
        func.coalesce(Response.user_id, 0).label("user_id"),
        func.coalesce(Response.channel_id, "").label("channel"),
        literal(day, Date).label("day"),
        literal(1).label("requests"),
        case((Response.status == "error", 1), else_=0).label("errors"),
        Response.tokens_prompt,
        Response.tokens_completion,
        Response.tokens_total,
        func.coalesce(Response.cost_usd, 0).label("cost_usd"),
        case((Response.cost_usd.is_(None), 1), else_=0).label("unpriced"),
    ).where(*conditions(usage, start=start, end=end))


# The bucket of a response's completion time, as db.totals.latency_bucket finds it.
_BUCKET = case(
    *(
        (Response.completion_time_ms < bound, index)
        for index, bound in enumerate(LATENCY_BOUNDS_MS)
    ),
    else_=len(LATENCY_BOUNDS_MS),
)


def _latency(
    session: Session, usage: UsageFilter, whole: tuple[date, date] | None, pieces: list[_Piece]
) -> tuple[int, ...]:
    """The completion-time histogram of the filter: the totals' buckets plus the raw rows'."""
    counts = [0] * len(LATENCY_COLUMNS)
    if whole is not None:
        sums = session.execute(
            select(*(func.sum(UsageDaily.__table__.c[name]) for name in LATENCY_COLUMNS)).where(
                *_daily_conditions(usage, whole)
            )
        ).one()
        counts = [int(value or 0) for value in sums]
    for _, start, end in pieces:
        statement = (
            select(_BUCKET, func.count())
            .where(*conditions(usage, start=start, end=end))
            .group_by(_BUCKET)
        )
        for bucket, requests in session.execute(statement):
            counts[bucket] += requests
    return tuple(counts)


def _aggregates(rows: Any) -> tuple[ColumnElement[Any], ...]:
    """The sums of a report line, over a subquery's or a totals table's columns."""
    return (
        func.sum(rows.c.requests),
        func.sum(rows.c.errors),
        func.sum(rows.c.tokens_prompt),
        func.sum(rows.c.tokens_completion),
        func.sum(rows.c.tokens_total),
        func.sum(rows.c.cost_usd),
        func.sum(rows.c.unpriced),
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
