"""Queries on users, conversations and messages. They take a Session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import Base, Conversation, Message, Response, User


def insert_unless_exists(
    session: Session, model: type[Base], values: dict[str, Any], *, unique: Sequence[str]
) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING; the new row's id, or None when `unique` already exists.

    The database decides, so two processes racing for the same row cannot both win, and no
    exception (which would spoil the transaction on PostgreSQL) is involved.
    """
    # Core inserts fill in the models' Python-side defaults (uuid, created_at) themselves.
    table = model.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement: Insert = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(unique))
        .returning(table.c.id)  # type: ignore[attr-defined]
    )
    return session.execute(statement).scalar_one_or_none()


def get_user(session: Session, team_id: str, slack_user_id: str) -> User | None:
    """The user row for a Slack member, if there is one."""
    return session.scalars(
        select(User).where(User.team_id == team_id, User.slack_user_id == slack_user_id)
    ).one_or_none()


def get_conversation(
    session: Session, team_id: str, channel_id: str, thread_ts: str
) -> Conversation | None:
    """The conversation of one Slack thread, if there is one."""
    return session.scalars(
        select(Conversation).where(
            Conversation.team_id == team_id,
            Conversation.channel_id == channel_id,
            Conversation.thread_ts == thread_ts,
        )
    ).one_or_none()


def create_conversation(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    default_model: str,
    user_id: int | None,
    title: str,
) -> int | None:
    """Create the thread's conversation; its id, or None when the thread already has one."""
    return insert_unless_exists(
        session,
        Conversation,
        {
            "team_id": team_id,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
            "default_model": default_model,
            "user_id": user_id,
            "title": title[:255],
        },
        unique=("team_id", "channel_id", "thread_ts"),
    )


def add_message_once(
    session: Session,
    *,
    conversation_id: int,
    user_id: int | None,
    role: str,
    content: str,
    slack_ts: str | None,
    model: str | None = None,
) -> int | None:
    """Record a message; None when this Slack message was recorded before (a retried event)."""
    return insert_unless_exists(
        session,
        Message,
        {
            "conversation_id": conversation_id,
            "user_id": user_id,
            "role": role,
            "content": content,
            "slack_ts": slack_ts,
            "model": model,
        },
        unique=("conversation_id", "slack_ts"),
    )


def add_response(session: Session, **values: Any) -> int:
    """Record the accounting of one model call; its id."""
    return session.execute(insert(Response).values(**values).returning(Response.id)).scalar_one()


def thread_history(session: Session, conversation_id: int) -> list[tuple[Message, User | None]]:
    """The conversation's turns in Slack's order, with who wrote each.

    Ordered by Slack ts, not by id: a reply is stored when it is complete, after questions
    asked while it was being written. Notes such as "model changed" (role system) are left out.
    """
    rows = session.execute(
        select(Message, User)
        .outerjoin(User, Message.user_id == User.id)
        .where(Message.conversation_id == conversation_id, Message.role != "system")
        .order_by(Message.slack_ts.asc().nulls_last(), Message.id)
    )
    return [(message, user) for message, user in rows]
