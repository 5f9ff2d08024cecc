"""Purging old content on a real database: what goes, what stays, in batches, one at a time."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.retention import DailyPurge, RetentionService
from db import retention
from db.models import Conversation, Message, Response, ToolCall, Turn, UsageDaily, utcnow
from tests.accounting import record_response
from tests.bot.usage.accounting import assert_totals_match_responses

_ts = itertools.count(1)


def seed(
    sessions: sessionmaker[Session],
    *,
    days_old: float,
    team: str = "T1",
    questions: int = 1,
    last_turn: str = "done",
) -> int:
    """A conversation with `questions` answered questions, all `days_old` days old; its id.

    The last question's turn is left in state `last_turn`, unanswered unless it is done.
    """
    at = utcnow() - timedelta(days=days_old)
    with sessions.begin() as session:
        conversation = Conversation(
            team_id=team,
            channel_id="C1",
            thread_ts=f"{next(_ts)}.000000",
            title="first question",
            default_model="m",
            created_at=at,
        )
        session.add(conversation)
        session.flush()
        for number in range(questions):
            question = Message(
                conversation_id=conversation.id,
                role="user",
                content=f"question {number}",
                slack_ts=f"{next(_ts)}.000000",
                created_at=at,
            )
            session.add(question)
            session.flush()
            state = last_turn if number == questions - 1 else "done"
            session.add(Turn(message_id=question.id, conversation_id=conversation.id, state=state))
            if state != "done":
                continue
            reply = Message(
                conversation_id=conversation.id,
                role="assistant",
                content=f"answer {number}",
                slack_ts=f"{next(_ts)}.000000",
                reply_to_id=question.id,
                created_at=at,
            )
            session.add(reply)
            session.flush()
            record_response(
                session,
                message_id=reply.id,
                team_id=team,
                conversation_id=conversation.id,
                channel_id="C1",
                model_used="m",
                tokens_total=15,
                created_at=at,
            )
        return conversation.id


def rows(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_purge_removes_old_content_and_keeps_accounting(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    old = seed(sessions, days_old=100, questions=2)
    pending = seed(sessions, days_old=100, questions=2, last_turn="queued")
    running = seed(sessions, days_old=100, last_turn="running")
    recent = seed(sessions, days_old=10)

    purged = RetentionService(sessions).purge(timedelta(days=90))

    # old: all 4 messages; pending: 2 of its 3 (not the queued question); running: none.
    assert (purged.messages, purged.conversations, purged.dry_run) == (6, 1, False)
    with sessions() as session:
        left = session.execute(
            select(Message.conversation_id, Message.content).order_by(Message.id)
        ).all()
        assert [tuple(r) for r in left] == [
            (pending, "question 1"),
            (running, "question 0"),
            (recent, "question 0"),
            (recent, "answer 0"),
        ]
        conversations = session.execute(
            select(Conversation.id, Conversation.title).order_by(Conversation.id)
        ).all()
        assert [tuple(c) for c in conversations] == [
            (pending, ""),  # its first message's text, gone with it
            (running, ""),
            (recent, "first question"),
        ]
        assert old not in [c.id for c in conversations]
        responses = session.execute(
            select(Response.message_id, Response.conversation_id, Response.tokens_total)
        ).all()
    assert len(responses) == 4  # every one kept
    assert sorted((m is None, c is None) for m, c, _ in responses) == [
        (False, False),  # recent
        (True, False),  # pending's answer 0
        (True, True),  # old's two answers, and their conversation
        (True, True),
    ]
    assert {tokens for *_, tokens in responses} == {15}
    with sessions() as session:  # the running totals are accounting too
        assert session.scalar(select(func.sum(UsageDaily.requests))) == 4
    assert_totals_match_responses(engine)  # and the reports read from them
    assert rows(sessions, Turn) == 3  # the queued, the running and the recent one


def test_dry_run_counts_what_a_purge_removes_and_removes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, days_old=100, questions=2)
    seed(sessions, days_old=100, questions=2, last_turn="running")
    seed(sessions, days_old=1)
    service = RetentionService(sessions)

    dry = service.purge(timedelta(days=90), dry_run=True)
    assert (dry.messages, dry.conversations, dry.dry_run) == (6, 1, True)
    assert (rows(sessions, Message), rows(sessions, Conversation)) == (9, 3)

    done = service.purge(timedelta(days=90))
    assert (done.messages, done.conversations) == (dry.messages, dry.conversations)
    assert rows(sessions, Response) == 4
    assert rows(sessions, Message) == 3


def test_purge_of_one_workspace_leaves_the_others(sessions: sessionmaker[Session]) -> None:
    seed(sessions, days_old=100, team="T1")
    kept = seed(sessions, days_old=100, team="T2")
    purged = RetentionService(sessions).purge(timedelta(hours=24 * 90), team_id="T2")
    assert (purged.messages, purged.conversations) == (2, 1)
    with sessions() as session:
        assert session.scalars(select(Conversation.team_id)).all() == ["T1"]
        assert kept not in session.scalars(select(Conversation.id)).all()


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The DELETE statements run on `engine`, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def test_purge_works_in_batches_of_short_transactions(
    sessions: sessionmaker[Session], engine: Engine, statements: list[tuple[str, Any]]
) -> None:
    for _ in range(5):
        seed(sessions, days_old=100, questions=1)  # 10 messages, 5 conversations
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))

    purged = RetentionService(sessions, batch_size=3).purge(timedelta(days=90))

    assert (purged.messages, purged.conversations) == (10, 5)
    deletes = [s for s, _ in statements]
    message_deletes = [s for s in deletes if s.startswith("DELETE FROM messages")]
    conversation_deletes = [s for s in deletes if s.startswith("DELETE FROM conversations")]
    # 10 messages in batches of 3, 5 conversations in batches of 3: one transaction each.
    assert (len(message_deletes), len(conversation_deletes)) == (4, 2)
    assert len(commits) >= 6
    assert rows(sessions, Message) == rows(sessions, Conversation) == 0
    assert rows(sessions, Response) == 5


def test_only_one_process_purges_at_a_time(
    sessions: sessionmaker[Session], db_backend: str
) -> None:
    seed(sessions, days_old=100)
    service = RetentionService(sessions)
    with sessions() as holder, retention.purge_lock(holder) as got:
        assert got
        other = service.purge_exclusively(timedelta(days=90))
    if db_backend == "postgresql":  # the database decides: the other process skips its turn
        assert other is None
        assert rows(sessions, Message) == 2
        assert service.purge_exclusively(timedelta(days=90)) is not None  # lock released
    else:  # SQLite runs one writer at a time anyway
        assert other is not None
    assert rows(sessions, Message) == 0


def test_the_daily_purge_runs_soon_after_start_and_stops(sessions: sessionmaker[Session]) -> None:
    seed(sessions, days_old=40)
    schedule = DailyPurge(RetentionService(sessions), timedelta(days=30), first_after=0.05)
    schedule.start()
    try:
        deadline = time.monotonic() + 10
        while rows(sessions, Message) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows(sessions, Message) == 0
    finally:
        schedule.stop()
    for thread in threading.enumerate():
        if thread.name == "switchboard-purge":
            thread.join(timeout=5)
            assert not thread.is_alive()


def test_purge_blanks_the_content_of_old_tool_calls_and_keeps_their_accounting(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, days_old=100)
    seed(sessions, days_old=10)
    with sessions.begin() as session:
        for reply_id, response_id in session.execute(
            select(Response.message_id, Response.id).order_by(Response.id)
        ):
            session.add(
                ToolCall(
                    response_id=response_id,
                    team_id="T1",
                    channel_id="C1",
                    reply_id=reply_id,
                    tool="lookup",
                    server="orders",
                    outcome="ok",
                    duration_ms=12,
                    arguments_size=2,
                    result_size=5,
                    arguments="{}",
                    result="found",
                )
            )

    RetentionService(sessions).purge(timedelta(days=90))

    with sessions() as session:
        kept = session.execute(
            select(ToolCall.arguments, ToolCall.result, ToolCall.duration_ms).order_by(ToolCall.id)
        ).all()
    assert [tuple(row) for row in kept] == [(None, None, 12), ("{}", "found", 12)]
