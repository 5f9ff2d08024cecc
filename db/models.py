"""The schema: typed SQLAlchemy models that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


# Alembic's "The Importance of Naming Constraints": stable names make migrations portable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

intpk = Annotated[int, mapped_column(primary_key=True)]
slack_id = Annotated[str, mapped_column(String(32))]
model_name = Annotated[str, mapped_column(String(255))]
created = Annotated[datetime, mapped_column(DateTime(timezone=True), default=utcnow)]
updated = Annotated[
    datetime, mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
]
public_uuid = Annotated[uuid.UUID, mapped_column(Uuid, unique=True, default=uuid.uuid4)]


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every model below is declared with `__tablename__`, so it is mapped to a `Table`;
        # SQLAlchemy types `__table__` as any `FromClause` (a class may map a join or a select),
        # which hides `.insert()`, `.c` and the dialects' `insert(table)` from the checker.
        __table__: ClassVar[Table]


class User(Base):
    """A member of a Slack workspace who talked to the bot or set a model."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("team_id", "slack_user_id"),)

    id: Mapped[intpk]
    team_id: Mapped[slack_id]
    slack_user_id: Mapped[slack_id]
    username: Mapped[str] = mapped_column(String(255), default="")
    full_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # When name and admin flags were last read from Slack (`users.info`).
    profile_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[created]
    updated_at: Mapped[updated]


class Conversation(Base):
    """One Slack thread."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "thread_ts"),
        CheckConstraint("origin IN ('dm', 'mention', 'called_in')", name="origin"),
        CheckConstraint("history IN ('complete', 'needed', 'read', 'unreadable')", name="history"),
    )

    id: Mapped[intpk]
    uuid: Mapped[public_uuid]
    team_id: Mapped[slack_id]
    channel_id: Mapped[slack_id]
    thread_ts: Mapped[slack_id]
    title: Mapped[str] = mapped_column(String(255), default="")
    default_model: Mapped[model_name]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # How the bot came in, which decides whom it answers (`bot.conversations.turn.Origin`).
    origin: Mapped[str] = mapped_column(String(16), server_default="mention")
    # Whether the thread's earlier messages are stored (`bot.conversations.turn.History`).
    history: Mapped[str] = mapped_column(String(16), server_default="complete")
    created_at: Mapped[created]
    updated_at: Mapped[updated]

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Message(Base):
    """One turn of a conversation: a person's message or the bot's reply."""

    __tablename__ = "messages"
    __table_args__ = (
        # One Slack message is one row: this is what makes event handling idempotent.
        UniqueConstraint("conversation_id", "slack_ts"),
        CheckConstraint("role IN ('user', 'assistant', 'system')", name="role"),
    )

    id: Mapped[intpk]
    uuid: Mapped[public_uuid]
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    # The per-message model override, when the person asked for one.
    model: Mapped[str | None] = mapped_column(String(255))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    # A reply's question: history sorts a reply right after it, whenever it was stored.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[created]

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    user: Mapped[User | None] = relationship()


class MessageFile(Base):
    """A file shared with a message, and what the bot read of it.

    Its description comes with the message (stored before the acknowledgement); the text of a
    PDF or text file is filled in by the turn's worker and goes with its message (retention,
    deletions) or when Slack says the file was deleted. Images are never stored: only their
    size, so that their cost is known before they are fetched again.
    """

    __tablename__ = "message_files"
    __table_args__ = (
        UniqueConstraint("message_id", "slack_file_id"),
        CheckConstraint("state IN ('pending', 'read', 'unreadable', 'deleted')", name="state"),
        CheckConstraint("kind IN ('image', 'pdf', 'text', 'other')", name="kind"),
        Index("ix_message_files_team_file", "team_id", "slack_file_id"),
    )

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[slack_id]
    slack_file_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    mimetype: Mapped[str] = mapped_column(String(255), default="")
    filetype: Mapped[str] = mapped_column(String(32), default="")
    pretty_type: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int | None] = mapped_column(BigInteger)
    # url_private_download: fetched with the workspace's bot token, from Slack's hosts only.
    url: Mapped[str | None] = mapped_column(Text)
    needs_info: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    text: Mapped[str | None] = mapped_column(Text)  # a PDF's or text file's, once read
    note: Mapped[str | None] = mapped_column(Text)  # why it is unreadable, or how it was cut
    width: Mapped[int | None] = mapped_column(Integer)  # an image's, as sent to the model
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[created]


# What the usage reports read from each response (see db/usage_queries.py).
USAGE_REPORT_COLUMNS = [
    # First: the percentile query reads only this one, and PostgreSQL unpacks an index
    # entry's columns up to the last one a query needs.
    "completion_time_ms",
    "model_used",
    "user_id",
    "channel_id",
    "status",
    "tokens_prompt",
    "tokens_completion",
    "tokens_total",
    "cost_usd",
]


class Response(Base):
    """The accounting of one model call: who, which model, tokens, timings and cost."""

    __tablename__ = "responses"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'error')", name="status"),
        # Covering on PostgreSQL: the usage reports read a workspace's period from the index
        # alone (an index-only scan), never from the table. SQLite ignores the INCLUDE.
        Index(
            "ix_responses_team_created",
            "team_id",
            "created_at",
            postgresql_include=USAGE_REPORT_COLUMNS,
        ),
        Index("ix_responses_team_user_created", "team_id", "user_id", "created_at"),
        Index("ix_responses_team_model_created", "team_id", "model_used", "created_at"),
        Index("ix_responses_team_channel_created", "team_id", "channel_id", "created_at"),
    )

    id: Mapped[intpk]
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    team_id: Mapped[slack_id]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    # Kept here as well, so reports by channel need no join and survive deleted conversations.
    channel_id: Mapped[str | None] = mapped_column(String(32))
    model_used: Mapped[model_name]
    provider: Mapped[str | None] = mapped_column(String(64))
    tokens_prompt: Mapped[int] = mapped_column(Integer, default=0)
    tokens_completion: Mapped[int] = mapped_column(Integer, default=0)
    tokens_total: Mapped[int] = mapped_column(Integer, default=0)
    tokens_cached: Mapped[int | None] = mapped_column(Integer)
    tokens_reasoning: Mapped[int | None] = mapped_column(Integer)
    # True when the endpoint reported no usage and the counts above are our estimate.
    tokens_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    completion_time_ms: Mapped[int] = mapped_column(Integer, default=0)
    time_to_first_token_ms: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 8))
    is_streaming: Mapped[bool] = mapped_column(Boolean, default=True)
    query_size: Mapped[int] = mapped_column(Integer, default=0)
    response_size: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created]


class ToolCall(Base):
    """One tool call a turn made: which tool on which server, how long, how it ended, sizes.

    `arguments` and `result` hold content only while the turn's messages are kept (retention
    and deletions blank them); the rest is accounting and stays.
    """

    __tablename__ = "tool_calls"
    __table_args__ = (
        CheckConstraint("outcome IN ('ok', 'error', 'timeout')", name="outcome"),
        Index("ix_tool_calls_team_created", "team_id", "created_at"),
    )

    id: Mapped[intpk]
    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[slack_id]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    # The question and the reply whose content the arguments and result belong with.
    question_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    reply_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    tool: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(8))
    duration_ms: Mapped[int] = mapped_column(Integer)
    arguments_size: Mapped[int] = mapped_column(Integer)
    result_size: Mapped[int] = mapped_column(Integer)
    arguments: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created]


class ChannelSettings(Base):
    """Per-channel switches that admins control."""

    __tablename__ = "channel_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tools_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[updated]


class Turn(Base):
    """The work of answering one stored message, claimed by one bot process at a time.

    A turn is queued when its message is stored (before Slack gets its acknowledgement),
    running while a process holds its lease, and done once its outcome is recorded. A process
    that dies leaves a lease that runs out; another process (or the restarted one) takes it.
    """

    __tablename__ = "turns"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done')", name="state"),
        # What the dispatcher scans: the few unfinished turns, never the many done ones.
        Index(
            "ix_turns_unfinished",
            "conversation_id",
            "id",
            postgresql_where=text("state <> 'done'"),
            sqlite_where=text("state <> 'done'"),
        ),
    )

    id: Mapped[intpk]
    # NULL once its message is deleted while the turn runs: the turn still holds its share of
    # the budgets until its cost is recorded (db/retention.py deletes the other turns).
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(8), default="queued")
    # "answered", "failed", "refused", "model_set", "expired" or "deleted", once done.
    outcome: Mapped[str | None] = mapped_column(String(16))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The reply's first Slack message, saved as soon as it exists: a turn taken over after a
    # crash stops that stream before answering again.
    reply_ts: Mapped[str | None] = mapped_column(String(32))
    # What the turn may spend, held against the budgets that apply while it runs: other
    # turns are admitted only while what is spent plus what is held stays under a limit.
    reserved_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 8))
    reserved_tokens: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[created]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModelDefault(Base):
    """The default model of a workspace, a channel, or a user's DMs with the bot."""

    __tablename__ = "model_defaults"
    __table_args__ = (
        UniqueConstraint("team_id", "scope", "scope_id"),
        CheckConstraint("scope IN ('workspace', 'channel', 'user')", name="scope"),
    )

    id: Mapped[intpk]
    team_id: Mapped[slack_id]
    scope: Mapped[str] = mapped_column(String(16))
    # The channel id, the user id, or "" for the workspace.
    scope_id: Mapped[str] = mapped_column(String(32), default="")
    model: Mapped[model_name]
    set_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[updated]


class PendingOverride(Base):
    """A model chosen for a person's next message in one channel, used once."""

    __tablename__ = "pending_overrides"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "slack_user_id"),)

    id: Mapped[intpk]
    team_id: Mapped[slack_id]
    channel_id: Mapped[slack_id]
    slack_user_id: Mapped[slack_id]
    model: Mapped[model_name]
    created_at: Mapped[created]


class WorkspaceSettings(Base):
    """Per-workspace switches that admins control."""

    __tablename__ = "workspace_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_defaults_admins_only: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[updated]


class CommandReceipt(Base):
    """A slash command's trigger id, kept about an hour so a replayed command runs once."""

    __tablename__ = "command_receipts"

    id: Mapped[intpk]
    # Slack's trigger ids are unique per invocation: the database decides which delivery runs.
    trigger_id: Mapped[str] = mapped_column(String(255), unique=True)
    team_id: Mapped[slack_id]
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class Feedback(Base):
    """One person's thumbs up or down on one answer; their latest click counts."""

    __tablename__ = "feedback"
    __table_args__ = (
        # One vote per person per answer: a second click updates it.
        UniqueConstraint("response_id", "team_id", "slack_user_id"),
        CheckConstraint("rating IN ('up', 'down')", name="rating"),
        # A person's own votes, for their Home tab.
        Index("ix_feedback_team_user_updated", "team_id", "slack_user_id", "updated_at"),
    )

    id: Mapped[intpk]
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    # The voter's own workspace: in a shared channel it may differ from the answer's.
    team_id: Mapped[slack_id]
    slack_user_id: Mapped[slack_id]
    rating: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[created]
    updated_at: Mapped[updated]


# Completion-time buckets of the daily totals, in ms: bucket 0 is [0, 50), bucket k is
# [BOUNDS[k-1], BOUNDS[k]), the last is [BOUNDS[-1], ∞). Each bound is 1.25 times the one
# before (rounded to whole ms), so a percentile read from the totals is within about a
# quarter of its value (see the README for the exact bound).
LATENCY_BOUNDS_MS = tuple(round(50 * 1.25**k) for k in range(43))
LATENCY_COLUMNS = tuple(f"latency_{k:02d}" for k in range(len(LATENCY_BOUNDS_MS) + 1))


class DayFigures:
    """What a day's running totals add up, whatever they are grouped by (a mixin)."""

    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    tokens_prompt: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_completion: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_total: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8), default=0)
    unpriced: Mapped[int] = mapped_column(Integer, default=0)


def with_latency_columns(table: type[Base]) -> None:
    """Give a mapped class of day totals its completion-time histogram columns."""
    for column in LATENCY_COLUMNS:
        setattr(table, column, mapped_column(column, Integer, nullable=False, default=0))


class UsageDaily(DayFigures, Base):
    """The responses of one UTC day, summed per workspace, member, channel and model.

    Written in the transaction that records each response, so the reports read a few rows per
    day however long the bot has run. `user_id` 0 and `channel_id` "" stand for none: a
    primary key cannot hold NULL.
    """

    __tablename__ = "usage_daily"
    __table_args__ = (
        Index("ix_usage_daily_team_user_day", "team_id", "user_id", "day"),
        Index("ix_usage_daily_team_channel_day", "team_id", "channel_id", "day"),
        Index("ix_usage_daily_day", "day"),
    )

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # The users row (no foreign key: totals outlive the members they count).
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_used: Mapped[str] = mapped_column(String(255), primary_key=True)


with_latency_columns(UsageDaily)


class UsageMonthly(Base):
    """What a workspace, a channel or a member spent in one UTC month: what budgets read.

    Kept beside the daily totals, in the same transaction, so a budget check reads one row
    per limit. `notified` is set once the 80 % notice of the month went out.
    """

    __tablename__ = "usage_monthly"
    __table_args__ = (CheckConstraint("scope IN ('workspace', 'channel', 'user')", name="scope"),)

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    # "" for the workspace, the channel id, or the member's Slack user id.
    scope_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    # Failed and refused turns: an answer's expected size is tokens_completion over the rest.
    errors: Mapped[int] = mapped_column(Integer, default=0)
    tokens_completion: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_total: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8), default=0)
    unpriced: Mapped[int] = mapped_column(Integer, default=0)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)


class Budget(Base):
    """A monthly limit in USD and/or tokens on a workspace, a channel or members."""

    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("team_id", "scope", "scope_id"),
        CheckConstraint("scope IN ('workspace', 'channel', 'user', 'default_user')", name="scope"),
        CheckConstraint("limit_usd IS NOT NULL OR limit_tokens IS NOT NULL", name="some_limit"),
    )

    id: Mapped[intpk]
    team_id: Mapped[slack_id]
    scope: Mapped[str] = mapped_column(String(16))
    # "" for the workspace and the default per member, the channel id, or the Slack user id.
    scope_id: Mapped[str] = mapped_column(String(32), default="")
    limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    limit_tokens: Mapped[int | None] = mapped_column(BigInteger)
    # The admin who set it (None when set from the command line).
    set_by: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[updated]


# The installations' tables and the daily totals per scope live in modules of their own;
# importing them here puts them in `Base.metadata`, which Alembic compares against the
# migrations.
from db import install_models, usage_models  # noqa: E402, F401
