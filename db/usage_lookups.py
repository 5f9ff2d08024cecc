"""Lookups around the usage reports: what was used at all, and the answers' ratings.

They take a Session and never commit; db/usage_queries.py holds the report's tallies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from db.models import Feedback, Response, UsageDaily
from db.usage_models import UsageDailyScope
from db.usage_queries import UsageFilter, conditions


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
        .where(*conditions(usage))
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


def has_usage(
    session: Session,
    team_id: str,
    *,
    user_id: int | None = None,
    channel_id: str | None = None,
    model: str | None = None,
) -> bool:
    """Whether any response at all (any time) matches: tells an unknown name from a quiet one."""
    if model is not None:
        # `responses` has an index on the workspace's models; the totals have none.
        table: Any = Response
        where = [Response.team_id == team_id, Response.model_used == model]
    else:
        # The totals: a member's rows there are a few a day, whereas in `responses` a busy
        # channel the member never used is read to its end (0.6 s at 10M responses, bench).
        table = UsageDaily
        where = [UsageDaily.team_id == team_id]
    if user_id is not None:
        where.append(table.user_id == user_id)
    if channel_id is not None:
        where.append(table.channel_id == channel_id)
    return bool(session.scalar(select(exists().where(*where))))


def models_used(session: Session, team_id: str, *, since: datetime) -> list[str]:
    """The models the workspace used since `since` (from its UTC day on), by name."""
    # From the day's totals per model: a year of a busy workspace's responses is millions of
    # rows to scan, of its daily totals per member x channel x model 400,000 (bench).
    return list(
        session.scalars(
            select(UsageDailyScope.scope_id)
            .where(
                UsageDailyScope.team_id == team_id,
                UsageDailyScope.day >= since.astimezone(UTC).date(),
                UsageDailyScope.scope == "model",
            )
            .distinct()
            .order_by(UsageDailyScope.scope_id)
        )
    )
