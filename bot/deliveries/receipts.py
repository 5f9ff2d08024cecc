"""Receipts of slash commands, so a command replayed within Slack's window runs once."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from db import queries, receipts
from db.models import CommandReceipt, utcnow

# Slack refuses requests signed more than five minutes ago, so an hour covers any replay.
KEEP = timedelta(hours=1)
PRUNE_EVERY = 300.0


class CommandReceipts:
    """Records each command's trigger id; the database says whether it was seen before."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        keep: timedelta = KEEP,
        prune_every: float = PRUNE_EVERY,
    ) -> None:
        self._sessions = sessions
        self._keep = keep
        self._prune_every = prune_every
        self._next_prune = 0.0

    def first_delivery(self, *, trigger_id: str, team_id: str) -> bool:
        """Record the command `trigger_id`; whether this is the first time it arrived."""
        with self._sessions.begin() as session:
            self._prune_now_and_then(session)
            new = queries.insert_unless_exists(
                session,
                CommandReceipt,
                {"trigger_id": trigger_id, "team_id": team_id, "created_at": utcnow()},
                unique=("trigger_id",),
            )
        return new is not None

    def _prune_now_and_then(self, session: Session) -> None:
        # Every few minutes per process, one indexed range delete: several processes pruning
        # the same rows at once is harmless.
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + self._prune_every
        receipts.prune_receipts(session, before=utcnow() - self._keep)
