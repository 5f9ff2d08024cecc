"""Queries that remove or rewrite conversation content. They take a Session and never commit.

Deleting a `messages` row leaves its `responses` row in place with the link set to NULL (ON
DELETE SET NULL): accounting outlives content. Its turn goes with it, unless it is running:
a running turn keeps its row, unlinked, and so its share of the budgets, until it records.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from db import tool_calls
from db.dialects import rowcount
from db.models import Conversation, Message, Turn

# Any fixed number: every Switchboard process asks for the same one.
PURGE_LOCK_KEY = 0x5357_4244_5055_5247 & 0x7FFF_FFFF_FFFF_FFFF


def _stored_message(team_id: str, channel_id: str, thread_ts: str | None, ts: str) -> Any:
    """The id of the stored message with Slack ts `ts` in that channel (and thread, if known)."""
    where = [
        Conversation.team_id == team_id,
        Conversation.channel_id == channel_id,
        Message.slack_ts == ts,
    ]
    if thread_ts is not None:
        where.append(Conversation.thread_ts == thread_ts)
    # A Slack ts is unique within a channel, so the thread only narrows the search.
    return (
        select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*where)
    )


def delete_message(
    session: Session, *, team_id: str, channel_id: str, thread_ts: str | None, ts: str
) -> int:
    """Delete the stored message(s) with this Slack ts; how many there were.

    A conversation's title is its first message's text: deleting that message blanks it.
    """
    ids = list(session.scalars(_stored_message(team_id, channel_id, thread_ts, ts)))
    if not ids:
        return 0
    _retitle(session, team_id=team_id, channel_id=channel_id, thread_ts=ts, title="")
    tool_calls.forget_content(session, ids)
    session.execute(
        delete(Turn)
        .where(Turn.message_id.in_(ids), Turn.state != "running")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Message).where(Message.id.in_(ids)).execution_options(synchronize_session=False)
    )
    return len(ids)


def edit_message(
    session: Session, *, team_id: str, channel_id: str, thread_ts: str | None, ts: str, text: str
) -> int:
    """Replace the content of a person's stored message; how many rows changed.

    Only `user` rows: the bot's own replies are its record, and `system` rows are notes.
    """
    result = session.execute(
        update(Message)
        .where(
            Message.id.in_(_stored_message(team_id, channel_id, thread_ts, ts).scalar_subquery()),
            Message.role == "user",
        )
        .values(content=text)
        .execution_options(synchronize_session=False)
    )
    changed = rowcount(result)
    if changed:
        _retitle(session, team_id=team_id, channel_id=channel_id, thread_ts=ts, title=text[:255])
    return int(changed)


def turn_exists(session: Session, turn_id: int) -> bool:
    """Whether the turn is still there (its message was not deleted)."""
    return session.scalar(select(exists().where(Turn.id == turn_id))) or False


def message_exists(session: Session, message_id: int) -> bool:
    """Whether the message is still there (not deleted in Slack meanwhile)."""
    return session.scalar(select(exists().where(Message.id == message_id))) or False


def conversation_exists(session: Session, conversation_id: int) -> bool:
    """Whether the conversation is still there (not purged)."""
    return session.scalar(select(exists().where(Conversation.id == conversation_id))) or False


# --- purging old content -------------------------------------------------------------------
def _unfinished_turn() -> Any:
    return exists().where(Turn.message_id == Message.id, Turn.state != "done")


def _purgeable_messages(cutoff: datetime, team_id: str | None) -> list[Any]:
    where = [Message.created_at < cutoff, ~_unfinished_turn()]
    if team_id is not None:
        where.append(
            exists().where(
                Conversation.id == Message.conversation_id, Conversation.team_id == team_id
            )
        )
    return where


def old_message_ids(
    session: Session, *, cutoff: datetime, team_id: str | None, after: int, limit: int
) -> list[int]:
    """Ids above `after`, in order, of up to `limit` messages older than `cutoff` that may go.

    Walks the primary key: ids grow with time, so old messages come first, and each batch
    starts where the previous one ended.
    """
    return list(
        session.scalars(
            select(Message.id)
            .where(Message.id > after, *_purgeable_messages(cutoff, team_id))
            .order_by(Message.id)
            .limit(limit)
        )
    )


def delete_messages(session: Session, ids: list[int], *, cutoff: datetime) -> int:
    """Delete these messages, unless their turn became unfinished meanwhile; how many went."""
    # A message kept back below (its turn unfinished) has no calls recorded yet: none lost.
    tool_calls.forget_content(session, ids)
    session.execute(
        delete(Turn)
        .where(Turn.message_id.in_(ids), Turn.state == "done")
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        delete(Message)
        .where(Message.id.in_(ids), Message.created_at < cutoff, ~_unfinished_turn())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def count_old_messages(session: Session, *, cutoff: datetime, team_id: str | None) -> int:
    """How many messages a purge with this cut-off would remove."""
    return (
        session.scalar(
            select(func.count()).select_from(Message).where(*_purgeable_messages(cutoff, team_id))
        )
        or 0
    )


def _conversation_filter(cutoff: datetime, team_id: str | None) -> list[Any]:
    where: list[Any] = [Conversation.created_at < cutoff]
    if team_id is not None:
        where.append(Conversation.team_id == team_id)
    return where


def empty_conversation_ids(
    session: Session, *, cutoff: datetime, team_id: str | None, after: int, limit: int
) -> list[int]:
    """Ids above `after` of up to `limit` conversations older than `cutoff` with no messages.

    They are locked (`FOR UPDATE SKIP LOCKED` on PostgreSQL): a message being stored in one
    holds a key-share lock on it, so that conversation is skipped, and any message stored
    from now on waits for this transaction. `delete_empty_conversations` then checks again.
    """
    return list(
        session.scalars(
            select(Conversation.id)
            .where(
                Conversation.id > after,
                *_conversation_filter(cutoff, team_id),
                ~exists().where(Message.conversation_id == Conversation.id),
            )
            .order_by(Conversation.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def delete_empty_conversations(session: Session, ids: list[int]) -> int:
    """Delete these conversations if they still have no messages; how many went."""
    result = session.execute(
        delete(Conversation)
        .where(
            Conversation.id.in_(ids), ~exists().where(Message.conversation_id == Conversation.id)
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def count_conversations_left_empty(
    session: Session, *, cutoff: datetime, team_id: str | None
) -> int:
    """How many conversations a purge with this cut-off would remove (none of theirs kept)."""
    kept = aliased(Message)
    stays = exists().where(
        kept.conversation_id == Conversation.id,
        or_(
            kept.created_at >= cutoff,
            exists().where(and_(Turn.message_id == kept.id, Turn.state != "done")),
        ),
    )
    return (
        session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(*_conversation_filter(cutoff, team_id), ~stays)
        )
        or 0
    )


def titled_conversation_ids(
    session: Session, *, cutoff: datetime, team_id: str | None, after: int, limit: int
) -> list[int]:
    """Ids above `after` of up to `limit` conversations older than `cutoff` with a title."""
    return list(
        session.scalars(
            select(Conversation.id)
            .where(
                Conversation.id > after,
                *_conversation_filter(cutoff, team_id),
                Conversation.title != "",
            )
            .order_by(Conversation.id)
            .limit(limit)
        )
    )


def blank_titles(session: Session, ids: list[int]) -> int:
    """Blank the titles (their first message's text) of these conversations; how many."""
    result = session.execute(
        update(Conversation)
        .where(Conversation.id.in_(ids))
        .values(title="")
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


@contextmanager
def purge_lock(session: Session) -> Iterator[bool]:
    """Whether this session got the purge lock (always, on SQLite), held until the block ends.

    A PostgreSQL session-level advisory lock, on a connection in autocommit so that no
    transaction stays open while the purge runs its batches on other connections; it goes
    with the connection if the process dies.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield True
        return
    connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    got = bool(connection.scalar(select(func.pg_try_advisory_lock(PURGE_LOCK_KEY))))
    try:
        yield got
    finally:
        if got:
            connection.scalar(select(func.pg_advisory_unlock(PURGE_LOCK_KEY)))


def _retitle(
    session: Session, *, team_id: str, channel_id: str, thread_ts: str, title: str
) -> None:
    """Set the title of the conversation `thread_ts` starts (its first message is the title)."""
    session.execute(
        update(Conversation)
        .where(
            Conversation.team_id == team_id,
            Conversation.channel_id == channel_id,
            Conversation.thread_ts == thread_ts,
        )
        .values(title=title)
        .execution_options(synchronize_session=False)
    )
