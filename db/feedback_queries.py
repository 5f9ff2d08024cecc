"""Queries on answer feedback. They take a Session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Conversation, Feedback, Message, Response, utcnow
from db.queries import insert_or_update


def answer_at(session: Session, *, team_id: str, channel_id: str, message_ts: str) -> int | None:
    """The id of the completed answer (its `responses` row) posted as message `message_ts`."""
    return session.scalars(
        select(Response.id)
        .join(Message, Response.message_id == Message.id)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(
            Conversation.team_id == team_id,
            Conversation.channel_id == channel_id,
            Message.slack_ts == message_ts,
            Message.role == "assistant",
            Response.status == "ok",
        )
    ).first()


def set_vote(
    session: Session, *, response_id: int, team_id: str, slack_user_id: str, rating: str
) -> None:
    """Store a person's vote on an answer, replacing the one they gave before."""
    insert_or_update(
        session,
        Feedback,
        {"response_id": response_id, "team_id": team_id, "slack_user_id": slack_user_id},
        {"rating": rating, "updated_at": utcnow()},
    )


def votes_cast(
    session: Session, *, team_id: str, slack_user_id: str, since: datetime
) -> dict[str, int]:
    """How many answers a person rated up and down since `since` (by when they last voted)."""
    rows = session.execute(
        select(Feedback.rating, func.count())
        .where(
            Feedback.team_id == team_id,
            Feedback.slack_user_id == slack_user_id,
            Feedback.updated_at >= since,
        )
        .group_by(Feedback.rating)
    )
    return {rating: int(count) for rating, count in rows}
