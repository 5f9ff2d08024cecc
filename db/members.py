"""Queries on the `users` rows of Slack members. They take a Session and never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from db.models import User, utcnow


def store_profile(
    session: Session,
    team_id: str,
    slack_user_id: str,
    *,
    username: str,
    full_name: str,
    email: str | None,
    is_admin: bool,
    is_active: bool,
) -> None:
    """Write what the workspace says about a member onto their row, marked fresh now."""
    session.execute(
        update(User)
        .where(User.team_id == team_id, User.slack_user_id == slack_user_id)
        .values(
            username=username[:255],
            full_name=full_name[:255],
            email=email,
            is_admin=is_admin,
            is_active=is_active,
            profile_refreshed_at=utcnow(),
            updated_at=utcnow(),
        )
    )


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
