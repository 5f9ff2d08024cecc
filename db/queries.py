"""Queries on users, conversations and messages. They take a Session and never commit.

The statements run on every conversation turn are built once, with bound parameters, and
executed with the values: building a statement per call cost more than running it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from sqlalchemy import Insert, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from db import totals
from db.dialects import insert_for
from db.models import Base, Conversation, Message, Response, Turn, User, utcnow


def insert_unless_exists(
    session: Session, model: type[Base], values: dict[str, Any], *, unique: Sequence[str]
) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING; the new row's primary key, or None when `unique` exists.

    The database decides, so two processes racing for the same row cannot both win, and no
    exception (which would spoil the transaction on PostgreSQL) is involved.
    """
    table = model.__table__
    _check_columns(table, values)
    statement = _insert_ignoring_conflicts(session.get_bind().dialect.name, table, tuple(unique))
    return session.execute(statement, values).scalar_one_or_none()


def insert_or_update(
    session: Session, model: type[Base], key: dict[str, Any], values: dict[str, Any]
) -> None:
    """Create the row identified by `key` (a unique constraint) with `values`, or update it.

    The insert comes first, so two sessions racing to create the row cannot both fail.
    """
    if insert_unless_exists(session, model, key | values, unique=tuple(key)) is None:
        session.execute(
            update(model)
            .where(*(getattr(model, name) == value for name, value in key.items()))
            .values(**values)
        )


def _check_columns(table: Table, values: dict[str, Any]) -> None:
    """Refuse names that are not columns: an INSERT without `.values()` would drop them."""
    unknown = values.keys() - table.c.keys()
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(sorted(unknown))}")


@functools.cache
def _insert_ignoring_conflicts(dialect: str, table: Table, unique: tuple[str, ...]) -> Insert:
    # Core inserts fill in the models' Python-side defaults (uuid, created_at) themselves.
    return (
        insert_for(dialect, table)
        .on_conflict_do_nothing(index_elements=list(unique))
        .returning(*table.primary_key.columns)
    )


def get_user(session: Session, team_id: str, slack_user_id: str) -> User | None:
    """The user row for a Slack member, if there is one."""
    return session.scalars(
        select(User).where(User.team_id == team_id, User.slack_user_id == slack_user_id)
    ).one_or_none()


_USER_ID = select(User.id).where(
    User.team_id == bindparam("team_id"), User.slack_user_id == bindparam("slack_user_id")
)


def ensure_user(session: Session, team_id: str, slack_user_id: str) -> tuple[int, bool]:
    """The id of the member's `users` row, created bare (no profile yet) when missing; and
    whether this session created it (it exists for others only once the session commits)."""
    key = {"team_id": team_id, "slack_user_id": slack_user_id}
    new_id = insert_unless_exists(
        session, User, key | {"username": slack_user_id}, unique=("team_id", "slack_user_id")
    )
    if new_id is not None:
        return new_id, True
    return session.execute(_USER_ID, key).scalar_one(), False


class Thread(NamedTuple):
    """What a turn needs of a thread's conversation."""

    id: int
    default_model: str
    origin: str  # `bot.conversations.turn.Origin`
    history: str  # `bot.conversations.turn.History`


_THREAD = select(
    Conversation.id, Conversation.default_model, Conversation.origin, Conversation.history
).where(
    Conversation.team_id == bindparam("team_id"),
    Conversation.channel_id == bindparam("channel_id"),
    Conversation.thread_ts == bindparam("thread_ts"),
)


def get_thread(session: Session, team_id: str, channel_id: str, thread_ts: str) -> Thread | None:
    """The conversation of one Slack thread, if there is one."""
    row = session.execute(
        _THREAD, {"team_id": team_id, "channel_id": channel_id, "thread_ts": thread_ts}
    ).one_or_none()
    return None if row is None else Thread(*row)


def start_conversation(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    default_model: str,
    user_id: int | None,
    title: str,
    origin: str = "mention",
    history: str = "complete",
) -> Thread | None:
    """Create the thread's conversation, answered by `default_model` until someone changes it;
    None when the thread already has one."""
    statement = _start_conversation(session.get_bind().dialect.name)
    row = session.execute(
        statement,
        {
            "team_id": team_id,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
            "default_model": default_model,
            "user_id": user_id,
            "title": title[:255],
            "origin": origin,
            "history": history,
        },
    ).one_or_none()
    return None if row is None else Thread(*row)


@functools.cache
def _start_conversation(dialect: str) -> Insert:
    table = Conversation.__table__
    return (
        insert_for(dialect, table)
        .values(
            team_id=bindparam("team_id"),
            channel_id=bindparam("channel_id"),
            thread_ts=bindparam("thread_ts"),
            user_id=bindparam("user_id"),
            title=bindparam("title"),
            default_model=bindparam("default_model"),
            origin=bindparam("origin"),
            history=bindparam("history"),
        )
        .on_conflict_do_nothing(index_elements=["team_id", "channel_id", "thread_ts"])
        .returning(table.c.id, table.c.default_model, table.c.origin, table.c.history)
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
    reply_to_id: int | None = None,
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
            "reply_to_id": reply_to_id,
        },
        unique=("conversation_id", "slack_ts"),
    )


class NewMessage(NamedTuple):
    """A message of a thread read from Slack, about to be stored."""

    user_id: int | None
    role: str
    content: str
    slack_ts: str


def add_messages_once(
    session: Session, conversation_id: int, messages: Sequence[NewMessage]
) -> int:
    """Record the messages not recorded yet (by Slack ts), in one statement; how many were new.

    One INSERT … ON CONFLICT DO NOTHING for them all. With one statement a message, the first
    text of a mention in a thread of 200 read from Slack came after 48-60 ms, against 33-42 ms
    (bench/threads.py, SQLite, two alternating runs on a loaded shared machine, 2026-12-08).
    """
    if not messages:
        return 0
    statement = _insert_ignoring_conflicts(
        session.get_bind().dialect.name, Message.__table__, ("conversation_id", "slack_ts")
    )
    rows = [
        {"conversation_id": conversation_id, "model": None, "reply_to_id": None, **m._asdict()}
        for m in messages
    ]
    return len(session.execute(statement, rows).all())


@dataclass(frozen=True)
class ResponseRecord:
    """A `responses` row about to be written: the accounting of one turn's model call(s)."""

    team_id: str
    model_used: str
    user_id: int | None = None
    conversation_id: int | None = None
    message_id: int | None = None
    channel_id: str | None = None
    provider: str | None = None
    tokens_prompt: int = 0
    tokens_completion: int = 0
    tokens_total: int = 0
    tokens_cached: int | None = None
    tokens_reasoning: int | None = None
    tokens_estimated: bool = False
    completion_time_ms: int = 0
    time_to_first_token_ms: int | None = None
    cost_usd: Decimal | None = None
    is_streaming: bool = True
    query_size: int = 0
    response_size: int = 0
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    # None: now. The totals' day is the row's own.
    created_at: datetime | None = None


_INSERT_RESPONSE = insert(Response.__table__).returning(Response.__table__.c.id)


def add_response(
    session: Session, record: ResponseRecord, *, slack_user_id: str | None = None
) -> int:
    """Record the accounting of one model call, and count it in the running totals; its id."""
    values = dataclasses.asdict(record)
    _check_columns(Response.__table__, values)
    if values["created_at"] is None:
        values["created_at"] = utcnow()
    response_id = session.execute(_INSERT_RESPONSE, values).scalar_one()
    totals.add(session, values, slack_user_id=slack_user_id)
    return response_id


_MESSAGE_MODEL = (
    update(Message)
    .where(Message.id == bindparam("message_id"))
    .values(model=bindparam("model"))
    .execution_options(synchronize_session=False)
)


def set_message_model(session: Session, message_id: int, model: str | None) -> None:
    """Answer message `message_id` with `model` (None: by the chain of defaults)."""
    session.execute(_MESSAGE_MODEL, {"message_id": message_id, "model": model})


def set_message_asked(
    session: Session, message_id: int, *, content: str, model: str | None
) -> None:
    """Store a message as it was asked: its text without a model choice, and that model."""
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(content=content, model=model)
        .execution_options(synchronize_session=False)
    )


def set_conversation_model(
    session: Session, *, conversation_id: int, message_id: int, model: str, note: str
) -> None:
    """Make `model` the conversation's default; its message `message_id` becomes `note`, kept
    in the thread's record and left out of what the model is shown."""
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(default_model=model)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(role="system", content=note)
        .execution_options(synchronize_session=False)
    )


class Said(NamedTuple):
    """One turn of a thread's history."""

    role: str
    content: str
    author: str | None  # the person's name; None for the bot's replies
    message_id: int | None = None
    slack_user_id: str | None = None  # the author's Slack id (None for the bot's replies)


# History follows the thread as Slack shows it: by the Slack ts of each message, a reply of the
# bot right after its question (by the question's ts, whenever and whether the reply reached
# Slack). Messages read from Slack after the bot was called in are stored after the mention
# that called it, and still come before it. A ts is ten digits, a dot and six (until 2286),
# so comparing them as strings orders them. Refused messages and notes such as "model
# changed" (role system) are left out.
_question = aliased(Message)
_anchor = func.coalesce(_question.slack_ts, Message.slack_ts)
_HISTORY = (
    select(
        Message.role,
        Message.content,
        User.full_name,
        User.username,
        User.slack_user_id,
        Message.id,
    )
    .outerjoin(_question, _question.id == Message.reply_to_id)
    .outerjoin(User, Message.user_id == User.id)
    .outerjoin(Turn, Turn.message_id == Message.id)
    .where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.role != "system",
        or_(_anchor < bindparam("upto_ts"), Message.id == bindparam("upto")),
        or_(Turn.outcome.is_(None), Turn.outcome != "refused"),
    )
    .order_by(_anchor, Message.reply_to_id.is_not(None), Message.id)
)


def thread_history(
    session: Session, conversation_id: int, *, upto: int, upto_ts: str
) -> list[Said]:
    """The conversation's messages before Slack ts `upto_ts`, then message `upto` (the turn's),
    with who wrote each."""
    rows = session.execute(
        _HISTORY, {"conversation_id": conversation_id, "upto": upto, "upto_ts": upto_ts}
    )
    return [
        Said(role, content, full or username, message_id=message_id, slack_user_id=user_id)
        for role, content, full, username, user_id, message_id in rows
    ]


def set_history(session: Session, conversation_id: int, history: str) -> None:
    """Note whether the conversation holds its thread's earlier messages."""
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(history=history)
        .execution_options(synchronize_session=False)
    )


def name_unnamed_user(session: Session, user_id: int, name: str) -> None:
    """Give a bare `users` row (an app's, which has no profile to read) the name it shows."""
    session.execute(
        update(User)
        .where(User.id == user_id, User.full_name == "")
        .values(full_name=name[:255], profile_refreshed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
