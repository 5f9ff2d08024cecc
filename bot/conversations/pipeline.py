"""The turn pipeline: stored turns claimed from the database under leases, run on workers.

One dispatcher thread per process claims turns when a worker is free: at once when this
process stored a message (`accept`) or finished a turn, and every `poll_seconds` otherwise,
which is how turns stored by a process that died, or given back by one that stopped, are
found. It also renews the leases of the turns running here. The database decides who runs
what (`db.turns.claim`), so any number of processes can share one PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.service import (
    Accepted,
    AcceptStatus,
    ConversationService,
    IncomingMessage,
    ReplySink,
    ReplyTarget,
    SinkFactory,
)
from bot.metrics.recorder import Metrics
from db import turns
from db.engine import deadline
from db.models import utcnow
from db.turns import Claimed

log = logging.getLogger(__name__)

STOPPED_NOTE = "_(Interrupted: I am restarting. This message will be answered again shortly.)_"
TAKEN_OVER_NOTE = "_(Interrupted: this message is being answered again below.)_"
# After the grace period, turns whose reply is complete get this long to be recorded.
RECORD_GRACE = 3.0
# Storing a message before Slack's acknowledgement gives up after this long (Slack waits 3 s):
# Slack then gets an error and delivers the event again, and a store that landed after all
# makes that delivery a duplicate, so the message is still answered once.
ACCEPT_DEADLINE = 2.0
# The thread status of a message that waits for a free worker.
WAITING_STATUS = "is waiting for a free slot…"
# How long a channel mention that came without `files` waits for the message event of the same
# message, which carries them (several 2026 reports: app_mention events without their files).
# Slack sends both at once; this is only spent when the message event is late, or never comes
# although earlier mentions' did (a process that never saw one does not wait: its app may not
# subscribe to message events).
FILE_SHARE_WAIT = 0.5
# Message events seen before their app_mention, remembered so that it does not wait.
_SEEN_KEEP = 2_000

MessageKey = tuple[str, str, str]  # team, channel, ts


@dataclass
class _Running:
    claimed: Claimed
    sinks: list[ReplySink] = field(default_factory=list)

    def replied(self) -> bool:
        """Whether its reply is complete (what is left is recording it)."""
        return bool(self.sinks) and all(sink.closed for sink in self.sinks)

    def interrupt(self, note: str) -> None:
        """End its open replies with `note`."""
        for sink in self.sinks:
            try:
                sink.interrupt(note)
            except Exception:
                log.warning("could not close the reply of turn %s", self.claimed.id)


class TurnPipeline:
    """Accepts messages and answers their turns on `workers` threads of its own."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        service: ConversationService,
        sinks: SinkFactory,
        *,
        workers: int,
        lease_seconds: float = 30.0,
        poll_seconds: float = 2.0,
        metrics: Metrics | None = None,
        file_share_wait: float = FILE_SHARE_WAIT,
    ) -> None:
        # turns.lease_owner holds 64 characters; a fully qualified host name may have 253.
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._sessions = sessions
        self._service = service
        self._sinks = sinks
        self._workers = workers
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._metrics = metrics or Metrics()  # metrics hook
        self._lock = threading.Condition()
        self._running: dict[int, _Running] = {}
        self._wanted = False  # something may be claimable right now
        self._stopping = False
        self._dispatcher: threading.Thread | None = None
        # Daemon threads, not a ThreadPoolExecutor: Python joins an executor's threads at
        # exit, so one turn blocked on a silent model endpoint would hold up a deploy.
        self._queue: queue.SimpleQueue[Claimed | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Mentions whose message event (with their files, if any) has not come yet.
        self._file_share_wait = file_share_wait
        self._awaiting: dict[MessageKey, tuple[int, threading.Event]] = {}
        self._seen: dict[MessageKey, None] = {}  # insertion-ordered: the oldest go first
        self._mentions_echoed = False  # a mention's message event has arrived here

    def start(self) -> None:
        """Start the dispatcher and the workers (none for a process that only accepts)."""
        if self._workers == 0:
            return
        for number in range(self._workers):
            thread = threading.Thread(
                target=self._work, name=f"switchboard-turn-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="switchboard-dispatcher", daemon=True
        )
        self._dispatcher.start()

    def accept(
        self,
        message: IncomingMessage,
        *,
        override: str | None = None,
        files_may_follow: bool = False,
    ) -> Accepted:
        """Store `message` and its turn (raises when it cannot be stored, or not within
        ACCEPT_DEADLINE); runs soon after.

        `files_may_follow`: a channel mention's app_mention event without files; its turn
        waits up to `file_share_wait` for the message event of the same message
        (`message_seen`), whose files complete it.
        """
        with deadline(ACCEPT_DEADLINE):
            accepted = self._service.accept(message, override=override)
        if files_may_follow and accepted.turn_id is not None:
            self._await_message_event(_key(message), accepted.turn_id)
        if accepted.status == AcceptStatus.QUEUED:
            self.wake()
            with self._lock:
                full = not self._stopping and 0 < self._workers <= len(self._running)
            if full:
                self._show_waiting(message)
        return accepted

    def message_seen(self, message: IncomingMessage) -> None:
        """The message event of a channel mention arrived (its files, if any, are stored)."""
        key = _key(message)
        with self._lock:
            self._mentions_echoed = True
            awaited = self._awaiting.pop(key, None)
            if awaited is None:
                self._seen[key] = None
                while len(self._seen) > _SEEN_KEEP:
                    del self._seen[next(iter(self._seen))]
        if awaited is not None:
            awaited[1].set()

    def _await_message_event(self, key: MessageKey, turn_id: int) -> None:
        if self._workers == 0:
            return  # only a process that runs turns waits (the wait is in its memory)
        with self._lock:
            if key in self._seen:
                del self._seen[key]  # it came first
                return
            if self._mentions_echoed:
                self._awaiting[key] = (turn_id, threading.Event())
                # Entries go when their turn runs here or their message event comes; a turn
                # another process ran, whose event never came here, would stay: the oldest go.
                while len(self._awaiting) > _SEEN_KEEP:
                    del self._awaiting[next(iter(self._awaiting))]

    def _wait_for_files(self, turn_id: int) -> None:
        """Let a mention's turn wait (briefly) for the message event that carries its files."""
        with self._lock:
            found = [(k, e) for k, (t, e) in self._awaiting.items() if t == turn_id]
        for key, event in found:
            event.wait(self._file_share_wait)
            with self._lock:
                self._awaiting.pop(key, None)

    def _show_waiting(self, message: IncomingMessage) -> None:
        """Every worker is busy: say so in the thread at once (on a side thread, not the ack's:
        the workspace's client may have to be read, or its token refreshed, first)."""
        target = ReplyTarget(
            message.team_id, message.channel_id, message.conversation_ts, message.user_id
        )

        def show() -> None:
            try:
                self._sinks(target, lambda ts: None).waiting(WAITING_STATUS)
            except Exception:  # cosmetic: the turn is stored and runs when a worker is free
                log.warning("could not show the waiting status", exc_info=True)

        threading.Thread(target=show, name="switchboard-waiting", daemon=True).start()

    def wake(self) -> None:
        """Look for claimable turns now rather than at the next poll."""
        with self._lock:
            self._wanted = True
            self._lock.notify_all()

    @property
    def running(self) -> int:
        """How many turns run here now."""
        with self._lock:
            return len(self._running)

    # --- the dispatcher -------------------------------------------------------------------
    def _dispatch(self) -> None:
        renew_every = self._lease.total_seconds() / 3
        next_renewal = time.monotonic() + renew_every
        while True:
            with self._lock:
                deadline = min(next_renewal, time.monotonic() + self._poll)
                while not self._stopping and not (
                    self._wanted and len(self._running) < self._workers
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._lock.wait(left)
                if self._stopping:
                    return
                self._wanted = False
                free = self._workers - len(self._running)
            if time.monotonic() >= next_renewal:
                self._renew()
                self._recover_orphans()
                next_renewal = time.monotonic() + renew_every
            if free > 0:
                self._claim(free)

    def _claim(self, free: int) -> None:
        now = utcnow()
        try:
            with self._sessions.begin() as session:
                claimed = turns.claim(
                    session, owner=self.owner, now=now, until=now + self._lease, limit=free
                )
        except SQLAlchemyError as exc:
            # A pool timeout is no DBAPIError, and the dispatcher must live on.
            log.warning("could not claim turns (%s); trying again shortly", _reason(exc))
            return
        with self._lock:
            late = self._stopping  # `stop` has looked at what runs here: nothing may join
            if not late:
                for turn in claimed:
                    self._running[turn.id] = _Running(turn)
                if len(claimed) == free:
                    self._wanted = True  # there may be more than there was room for
        if late:
            self._give_back([turn.id for turn in claimed])
            return
        self._metrics.taken_over(sum(turn.attempts > 1 for turn in claimed))  # metrics hook
        for turn in claimed:
            self._queue.put(turn)

    def _renew(self) -> None:
        with self._lock:
            ids = list(self._running)
        if not ids:
            return
        now = utcnow()
        try:
            with self._sessions.begin() as session:
                held = turns.renew(session, owner=self.owner, ids=ids, until=now + self._lease)
        except SQLAlchemyError as exc:
            log.warning("could not renew the leases of %d turns (%s)", len(ids), _reason(exc))
            return
        with self._lock:
            # Ended meanwhile, or taken over after this process lost touch with the database:
            # another process answers those now, so their replies here stop at once.
            lost = [self._running[i] for i in ids if i not in held and i in self._running]
        for running in lost:
            if running.replied():
                continue  # finished here; its record is being written
            log.warning("turn %s was taken over by another process", running.claimed.id)
            running.interrupt(TAKEN_OVER_NOTE)

    def _recover_orphans(self) -> None:
        """Give back turns leased here that no worker runs, once their lease ran out.

        A message stored with its turn claimed for this process, whose store raised after it
        landed (the acknowledgement's deadline passed while COMMIT was answered), leaves such a
        turn: Slack's redelivery finds the message stored, and `claim` never takes back this
        process's own leases. Without this it waited for a restart (a likely cause of the 2
        events of 1,000 bench/load.py lost under load, 2026-12-07).
        """
        with self._lock:
            running = set(self._running)
        try:
            with self._sessions() as session:
                expired = turns.expired_leases(session, owner=self.owner, now=utcnow())
            orphans = [turn_id for turn_id in expired if turn_id not in running]
            if not orphans:
                return
            with self._sessions.begin() as session:
                given = turns.give_back(session, owner=self.owner, ids=orphans, refund=True)
        except SQLAlchemyError as exc:
            log.warning("could not look for turns left leased here (%s)", _reason(exc))
            return
        if given:
            log.warning("gave back %d turns leased here that no worker ran: %s", len(given), given)
            with self._lock:
                self._wanted = True

    # --- the workers ----------------------------------------------------------------------
    def _work(self) -> None:
        while (claimed := self._queue.get()) is not None:
            try:
                if self._awaiting:
                    self._wait_for_files(claimed.id)
                sinks = self._sink_for(claimed.id)
                outcome = self._service.run(claimed, owner=self.owner, sinks=sinks)
                self._metrics.turn_ended(outcome.status)  # metrics hook
            except Exception:
                self._metrics.turn_ended("crashed")  # metrics hook
                log.exception("turn %s failed unexpectedly; giving it back", claimed.id)
                self._give_back([claimed.id])
            finally:
                with self._lock:
                    self._running.pop(claimed.id, None)
                    # Its conversation's next turn, if any, may run now.
                    self._wanted = True
                    self._lock.notify_all()

    def _give_back(self, ids: list[int]) -> None:
        # Turns that raised, or were claimed while stopping. Their leases are this process's
        # own, which `claim` never takes back: left running, they (and their conversations'
        # later turns) would wait for a restart. Queued again, they are retried, and excused
        # once they have used up their attempts.
        try:
            with self._sessions.begin() as session:
                turns.give_back(session, owner=self.owner, ids=ids)
        except SQLAlchemyError as exc:
            log.warning("could not give back turns %s (%s)", ids, _reason(exc))

    def _sink_for(self, turn_id: int) -> SinkFactory:
        """The factory, noting each sink so that `stop` can close what is left open."""

        def make(target: ReplyTarget, on_start: Callable[[str], None]) -> ReplySink:
            sink = self._sinks(target, on_start)
            with self._lock:
                running = self._running.get(turn_id)
                if running is not None:
                    running.sinks.append(sink)
            return sink

        return make

    # --- stopping -------------------------------------------------------------------------
    def stop(self, grace: float) -> None:
        """Stop claiming, let running turns finish within `grace` seconds, give back the rest.

        What is given back has its open reply closed with a note, and is answered again by
        another process, or by this one's next start.
        """
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            ends = time.monotonic() + grace
            while self._running and (left := ends - time.monotonic()) > 0:
                self._lock.wait(left)
            # A complete reply is not given back (it would be answered twice): its record
            # gets a moment more, then is logged whole if the database still refuses it.
            ends = time.monotonic() + RECORD_GRACE
            while (left := ends - time.monotonic()) > 0 and any(
                r.replied() for r in self._running.values()
            ):
                self._lock.wait(left)
            left_over = [r for r in self._running.values() if not r.replied()]
        self._service.give_up.set()
        given: list[int] = []
        if left_over:
            # The database says which are given back: a turn that finished meanwhile is not.
            try:
                with self._sessions.begin() as session:
                    given = turns.give_back(
                        session,
                        owner=self.owner,
                        ids=[r.claimed.id for r in left_over],
                        refund=True,
                    )
                log.info("gave back %d unfinished turns for another process to answer", len(given))
            except SQLAlchemyError as exc:
                log.warning("could not give back %d turns (%s)", len(left_over), _reason(exc))
                given = [r.claimed.id for r in left_over]  # their leases will run out instead
        for running in left_over:
            if running.claimed.id in given:
                running.interrupt(STOPPED_NOTE)
        for _ in self._threads:
            self._queue.put(None)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)


def _key(message: IncomingMessage) -> MessageKey:
    return (message.team_id, message.channel_id, message.ts)


def _reason(exc: SQLAlchemyError) -> object:
    """The driver's own message when there is one, else the error."""
    return getattr(exc, "orig", None) or exc
