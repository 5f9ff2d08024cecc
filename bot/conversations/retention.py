"""Retention: edits and deletions people make in Slack, and purging content past its age.

Content (messages, and a conversation's title) goes; accounting (`responses` rows) stays,
its links to what went set to NULL by the database. What is removed here never reaches a
model again: a turn's context is read from the database when the turn runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.context import strip_mentions
from bot.conversations.service import storable
from db import retention
from db.models import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 1_000
# Seconds after start before the first daily purge: the process settles in first.
FIRST_PURGE_AFTER = 60.0
PURGE_EVERY = 24 * 3600.0


@dataclass(frozen=True)
class SlackMessageRef:
    """Where a Slack message is: its workspace, channel, thread (if known) and ts."""

    team_id: str
    channel_id: str
    thread_ts: str | None
    ts: str


@dataclass(frozen=True)
class Purged:
    """What a purge removed (or, for a dry run, would remove)."""

    cutoff: datetime
    messages: int
    conversations: int
    dry_run: bool = False


class RetentionService:
    """Applies edits and deletions, and removes content older than a cut-off."""

    def __init__(self, sessions: sessionmaker[Session], *, batch_size: int = BATCH_SIZE) -> None:
        self._sessions = sessions
        self._batch_size = batch_size

    def forget(self, message: SlackMessageRef) -> bool:
        """Delete a stored message someone deleted in Slack; False when none was stored."""
        with self._sessions.begin() as session:
            deleted = retention.delete_message(
                session,
                team_id=message.team_id,
                channel_id=message.channel_id,
                thread_ts=message.thread_ts,
                ts=message.ts,
            )
        return deleted > 0

    def edit(self, message: SlackMessageRef, text: str, *, bot_user_id: str | None) -> bool:
        """Store the new text of an edited message, as `accept` would; False when not stored."""
        content = storable(strip_mentions(text, bot_user_id))
        with self._sessions.begin() as session:
            changed = retention.edit_message(
                session,
                team_id=message.team_id,
                channel_id=message.channel_id,
                thread_ts=message.thread_ts,
                ts=message.ts,
                text=content,
            )
        return changed > 0

    def purge(
        self, older_than: timedelta, *, team_id: str | None = None, dry_run: bool = False
    ) -> Purged:
        """Remove messages older than `older_than`, then conversations left with none.

        Messages whose turn is unfinished are kept. Each batch is its own short transaction,
        so no lock is held for long, and a purge stopped half-way is simply resumed by the next.
        """
        cutoff = utcnow() - older_than
        if dry_run:
            with self._sessions() as session:
                return Purged(
                    cutoff,
                    retention.count_old_messages(session, cutoff=cutoff, team_id=team_id),
                    retention.count_conversations_left_empty(
                        session, cutoff=cutoff, team_id=team_id
                    ),
                    dry_run=True,
                )
        messages = self._in_batches(
            lambda session, after: retention.old_message_ids(
                session, cutoff=cutoff, team_id=team_id, after=after, limit=self._batch_size
            ),
            lambda session, ids: retention.delete_messages(session, ids, cutoff=cutoff),
        )
        conversations = self._in_batches(
            lambda session, after: retention.empty_conversation_ids(
                session, cutoff=cutoff, team_id=team_id, after=after, limit=self._batch_size
            ),
            retention.delete_empty_conversations,
        )
        # What is left of an old conversation still has its first message's text as its title.
        self._in_batches(
            lambda session, after: retention.titled_conversation_ids(
                session, cutoff=cutoff, team_id=team_id, after=after, limit=self._batch_size
            ),
            retention.blank_titles,
        )
        return Purged(cutoff, messages, conversations)

    def _in_batches(
        self,
        find: Callable[[Session, int], list[int]],
        remove: Callable[[Session, list[int]], int],
    ) -> int:
        """Find and remove rows a batch per transaction, walking ids upwards; how many went."""
        removed, after = 0, 0
        while True:
            with self._sessions.begin() as session:
                ids = find(session, after)
                if ids:
                    removed += remove(session, ids)
            if len(ids) < self._batch_size:
                return removed
            after = ids[-1]

    def purge_exclusively(self, older_than: timedelta) -> Purged | None:
        """Purge unless another process is purging now (PostgreSQL decides); None then."""
        with self._sessions() as session, retention.purge_lock(session) as got:
            if not got:
                return None
            return self.purge(older_than)


class DailyPurge:
    """Purges content older than `keep` shortly after start, then once a day, on a daemon."""

    def __init__(
        self,
        service: RetentionService,
        keep: timedelta,
        *,
        first_after: float | None = None,
        every: float = PURGE_EVERY,
    ) -> None:
        self._service = service
        self._keep = keep
        self._first_after = FIRST_PURGE_AFTER if first_after is None else first_after
        self._every = every
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the schedule."""
        self._thread = threading.Thread(target=self._run, name="switchboard-purge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the schedule (a purge under way finishes its batch as the process ends)."""
        self._stopped.set()

    def _run(self) -> None:
        wait = self._first_after
        while not self._stopped.wait(wait):
            wait = self._every
            try:
                purged = self._service.purge_exclusively(self._keep)
            except DBAPIError as exc:
                log.warning("could not purge old content (%s); trying again tomorrow", exc.orig)
                continue
            except Exception:
                log.exception("purging old content failed")
                continue
            if purged is None:
                log.info("another process is purging old content; skipped here")
            else:
                log.info(
                    "purged %d messages and %d conversations older than %s",
                    purged.messages,
                    purged.conversations,
                    purged.cutoff.isoformat(timespec="seconds"),
                )
