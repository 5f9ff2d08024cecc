"""A thread the bot was called into, read from Slack once and stored in its conversation.

Mentioned in a thread whose earlier messages it has not stored, the bot reads the thread with
`conversations.replies` in the turn's worker (intake, before the acknowledgement, only marks
the conversation), stores those messages with their authors, and answers with them as
context. From then on the thread's messages arrive as events; it is never read again.

Crash-safe and idempotent: the pages are read first, then every message is stored, and the
conversation marked read, in one transaction; a unique (conversation, Slack ts) makes a
second read (a retried turn, another process, messages stored meanwhile from events) add
nothing twice. A worker killed mid-read leaves the conversation marked as needing its
history, and the turn's next attempt reads it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.context import strip_mentions
from bot.conversations.slack_messages import parse_message
from bot.conversations.turn import Author, History, IncomingMessage, storable
from bot.files.service import new_files
from bot.members.directory import UserDirectory
from db import files, queries
from db.models import utcnow
from db.turns import Work

log = logging.getLogger(__name__)

# Messages kept of a thread read from Slack: its first message and the latest before the
# mention, 200 in all (what fits MAX_CONTEXT_TOKENS of them is shown to the model, newest
# first). They are read in pages of 200 (Slack recommends no more a call), at most 5 pages:
# `conversations.replies` is Tier 3 (50+ calls a minute per workspace) and pages from the
# oldest message, so a thread of over 1,000 messages is read only up to its 1,000th.
KEEP_MESSAGES = 200
PAGE_SIZE = 200
MAX_PAGES = 5


class ReadProblem(StrEnum):
    """Why a thread could not be read (whole)."""

    RATE_LIMITED = "rate_limited"  # Slack answered `ratelimited` (HTTP 429)
    NOT_IN_CHANNEL = "not_in_channel"
    NO_SCOPE = "no_scope"  # the installation lacks the history scope of this conversation
    NOT_FOUND = "not_found"  # channel_not_found, thread_not_found
    REFUSED = "refused"  # any other error Slack answers
    UNREACHABLE = "unreachable"  # no answer: a timeout, a refused connection

    @property
    def lasting(self) -> bool:
        """Whether reading again would meet the same refusal (so it is not tried again)."""
        return self in (ReadProblem.NOT_FOUND, ReadProblem.NOT_IN_CHANNEL, ReadProblem.NO_SCOPE)


_WHY = {
    ReadProblem.RATE_LIMITED: "Slack is limiting requests",
    ReadProblem.NOT_IN_CHANNEL: "I am not a member of this channel; /invite me to fix that",
    ReadProblem.NO_SCOPE: (
        "this installation may not read message history here; an admin can reinstall the app"
    ),
    ReadProblem.NOT_FOUND: "Slack could not find it",
    ReadProblem.REFUSED: "Slack refused",
    ReadProblem.UNREACHABLE: "Slack did not answer",
}


def read_note(problem: ReadProblem, *, partly: bool) -> str:
    """The one line a reply ends with when the thread could not be read (whole)."""
    if partly:
        return (
            f"I could read only part of the earlier messages of this thread ({_WHY[problem]}); "
            "I answered from what I read."
        )
    return (
        f"I couldn't read the earlier messages of this thread ({_WHY[problem]}); "
        "I answered from your message alone."
    )


@dataclass(frozen=True)
class ThreadPages:
    """What `conversations.replies` gave: the thread's messages as Slack shapes them, oldest
    first, who the bot is in that workspace, and why the read stopped short, if it did."""

    messages: Sequence[Mapping[str, Any]] = ()
    bot_user_id: str | None = None
    bot_id: str | None = None
    problem: ReadProblem | None = None
    error: str | None = None  # Slack's error code (or the exception's name), for the log
    calls: int = 0  # Web API calls made


class ThreadSource(Protocol):
    """Where threads are read from (Slack's `conversations.replies`, in production)."""

    def read(self, team_id: str, channel_id: str, thread_ts: str, *, latest: str) -> ThreadPages:
        """The thread's messages before `latest`, at most MAX_PAGES pages."""
        ...


@dataclass(frozen=True)
class HistoryRead:
    """What reading a thread did: the messages it stored, and the note for the reply."""

    stored: int = 0
    note: str | None = None
    calls: int = 0


@dataclass
class _Authors:
    """Row ids of the authors met while storing one thread."""

    rows: dict[str, int] = field(default_factory=dict)


class ThreadHistory:
    """Reads a called-into thread from Slack once, into its conversation."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        source: ThreadSource,
        *,
        users: UserDirectory,
        keep: int = KEEP_MESSAGES,
        retention: timedelta | None = None,
    ) -> None:
        self._sessions = sessions
        self._source = source
        self._users = users
        self._keep = keep
        # RETENTION_DAYS: what the purge would remove is not read in again.
        self._retention = retention

    def read(self, work: Work) -> HistoryRead:
        """Read and store the thread of the turn `work`, before its message; with no
        transaction open while Slack is asked."""
        latest = work.slack_ts or work.thread_ts
        pages = self._source.read(work.team_id, work.channel_id, work.thread_ts, latest=latest)
        messages = self._kept(work, pages)
        if pages.problem is not None:
            log.warning(
                "could not read thread %s in %s (%s); answering with %d of its messages",
                work.thread_ts,
                work.channel_id,
                pages.error or pages.problem,
                len(messages),
            )
        if pages.problem is None:
            history = History.READ
        elif pages.problem.lasting:
            history = History.UNREADABLE
        else:
            history = History.NEEDED  # a later turn here tries again
        with self._sessions.begin() as session:
            stored = self._store(session, work, messages, bot_user_id=pages.bot_user_id)
            if history is not History.NEEDED:
                queries.set_history(session, work.conversation_id, history)
        note = None
        if pages.problem is not None:
            note = read_note(pages.problem, partly=bool(messages))
        return HistoryRead(stored=stored, note=note, calls=pages.calls)

    def _kept(self, work: Work, pages: ThreadPages) -> list[IncomingMessage]:
        """The messages to store: once each, before the turn's own, the thread's first and
        the latest others, `keep` in all."""
        seen: set[str] = set()
        kept: list[IncomingMessage] = []
        oldest = 0.0
        if self._retention is not None:
            oldest = (utcnow() - self._retention).timestamp()
        for raw in pages.messages:
            message = parse_message(
                raw,
                team_id=work.team_id,
                bot_user_id=pages.bot_user_id,
                bot_id=pages.bot_id,
                channel_id=work.channel_id,
                is_dm=work.channel_id.startswith("D"),
            )
            if message is None or message.ts in seen or message.ts == work.slack_ts:
                continue
            if work.slack_ts is not None and message.ts > work.slack_ts:
                continue  # came after the mention: its event stores it
            if float(message.ts) < oldest:
                continue  # older than RETENTION_DAYS
            seen.add(message.ts)
            kept.append(message)
        kept.sort(key=lambda message: message.ts)
        if len(kept) > self._keep:
            kept = [kept[0], *kept[len(kept) - self._keep + 1 :]]
        return kept

    def _store(
        self,
        session: Session,
        work: Work,
        messages: list[IncomingMessage],
        *,
        bot_user_id: str | None,
    ) -> int:
        """Store each message not stored yet; how many were new."""
        authors = _Authors()
        rows: list[queries.NewMessage] = []
        for message in messages:
            if message.author is Author.SELF:
                role, user_row, content = "assistant", None, storable(message.text)
            else:
                role = "user"
                user_row = self._author_row(session, work.team_id, message, authors)
                content = storable(strip_mentions(message.text, bot_user_id))
            if content or message.files:  # else nothing the model could read
                rows.append(queries.NewMessage(user_row, role, content, message.ts))
        added = queries.add_messages_once(session, work.conversation_id, rows)
        for message in messages:  # their files, read when the turn builds its context
            if message.files:
                stored = files.stored_message_id(session, work.conversation_id, message.ts)
                if stored is not None:
                    files.add_files(
                        session, message_id=stored, team_id=work.team_id,
                        files=new_files(message.files),
                    )  # fmt: skip
        return added

    def _author_row(
        self, session: Session, team_id: str, message: IncomingMessage, authors: _Authors
    ) -> int:
        """The `users` row of the message's author (an app's named as its message shows)."""
        row = authors.rows.get(message.user_id)
        if row is None:
            row = self._users.row_id(session, team_id, message.user_id)
            if message.author_name:
                queries.name_unnamed_user(session, row, message.author_name)
            authors.rows[message.user_id] = row
        return row
