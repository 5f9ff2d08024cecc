"""Queries on tool calls and per-channel switches. They take a Session and never commit."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from db.models import ChannelSettings, Response, ToolCall, utcnow
from db.queries import insert_or_update
from db.usage_queries import UsageFilter


@dataclass(frozen=True)
class ToolCallRecord:
    """A `tool_calls` row about to be written."""

    response_id: int
    team_id: str
    channel_id: str | None
    question_id: int | None
    reply_id: int | None
    tool: str
    server: str
    outcome: str
    duration_ms: int
    arguments_size: int
    result_size: int
    arguments: str | None
    result: str | None
    created_at: datetime


def add_tool_calls(session: Session, records: Sequence[ToolCallRecord]) -> None:
    """Write a turn's tool calls."""
    if records:
        session.execute(insert(ToolCall), [dataclasses.asdict(r) for r in records])


def forget_content(session: Session, message_ids: Sequence[int]) -> int:
    """Blank the arguments and results of the calls made for these messages (deleted, or
    purged); how many rows were touched. The accounting stays."""
    if not message_ids:
        return 0
    result = session.execute(
        update(ToolCall)
        .where(
            or_(ToolCall.question_id.in_(message_ids), ToolCall.reply_id.in_(message_ids)),
            or_(ToolCall.arguments.is_not(None), ToolCall.result.is_not(None)),
        )
        .values(arguments=None, result=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class ToolStats:
    """Calls of one tool over a period."""

    tool: str
    server: str
    calls: int
    errors: int  # failed or timed out
    p95_ms: int


def tool_stats(session: Session, usage: UsageFilter) -> list[ToolStats]:
    """Calls, errors and the 95th-percentile duration per tool, most called first, of the
    turns a usage report counts (its period, workspace, channel, members, model)."""
    query = select(ToolCall.tool, ToolCall.server, ToolCall.outcome, ToolCall.duration_ms).where(
        ToolCall.created_at >= usage.start, ToolCall.created_at < usage.end
    )
    if usage.team_id is not None:
        query = query.where(ToolCall.team_id == usage.team_id)
    if usage.channel_id is not None:
        query = query.where(ToolCall.channel_id == usage.channel_id)
    if usage.user_ids is not None or usage.model is not None:
        query = query.join(Response, Response.id == ToolCall.response_id)
        if usage.user_ids is not None:
            query = query.where(Response.user_id.in_(usage.user_ids))
        if usage.model is not None:
            query = query.where(Response.model_used == usage.model)
    durations: dict[tuple[str, str], list[int]] = defaultdict(list)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    for tool, server, outcome, duration in session.execute(query):
        durations[(tool, server)].append(duration)
        errors[(tool, server)] += outcome != "ok"
    stats = [
        ToolStats(tool, server, len(times), errors[(tool, server)], _p95(times))
        for (tool, server), times in durations.items()
    ]
    return sorted(stats, key=lambda s: (-s.calls, s.tool, s.server))


def _p95(values: list[int]) -> int:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    rank = max(1, -(-95 * len(ordered) // 100))
    return ordered[rank - 1]


def tools_enabled(session: Session, team_id: str, channel_id: str) -> bool:
    """Whether tools may be used in this channel (they may unless an admin turned them off)."""
    enabled = session.scalar(
        select(ChannelSettings.tools_enabled).where(
            ChannelSettings.team_id == team_id, ChannelSettings.channel_id == channel_id
        )
    )
    return True if enabled is None else bool(enabled)


def set_tools_enabled(
    session: Session, team_id: str, channel_id: str, *, enabled: bool, by: str | None
) -> None:
    """Turn tools on or off in one channel."""
    insert_or_update(
        session,
        ChannelSettings,
        {"team_id": team_id, "channel_id": channel_id},
        {"tools_enabled": enabled, "updated_by": by, "updated_at": utcnow()},
    )
