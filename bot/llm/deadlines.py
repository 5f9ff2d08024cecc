"""How long one answer may take: to its first token, between two chunks, and in all."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx2

from bot.llm.port import ModelError

# A connection that takes longer than this to open will not open; leave time for a retry.
_CONNECT = 10.0


@dataclass(frozen=True)
class Deadlines:
    """The three limits of one answer, in seconds; retries happen inside `total`."""

    first_token: float = 60.0
    idle: float = 60.0
    total: float = 300.0


class Clock:
    """One answer's deadlines, started when the answer is asked for.

    The stream is read in the turn's own thread, with no watchdog: a read that never returns is
    ended by the HTTP client's read timeout. A request's is the time left to the first token,
    so missing headers fail on time; the body's is set once, when its headers are in, to the
    longer of the first-token time left and the idle timeout (capped by the total), and
    `check` compares the clock with the deadlines after every read, so keep-alive comments do
    not hold a turn. What this leaves: a body that falls silent is noticed after that one
    read timeout, so when the first-token and idle timeouts differ the shorter one can be
    noticed late (up to the longer), and a stream silent in its last seconds can run past
    the total by up to the idle timeout.
    """

    __slots__ = ("_first_by", "deadlines", "last", "started", "total_by")

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.started = time.monotonic()
        self._first_by = self.started + deadlines.first_token
        self.total_by = self.started + deadlines.total
        self.last: float | None = None  # when the model last wrote something

    def left(self) -> float:
        """Seconds left before the deadline that applies now."""
        if self.last is None:
            return min(self._first_by, self.total_by) - time.monotonic()
        return min(self.last + self.deadlines.idle, self.total_by) - time.monotonic()

    def request_timeout(self) -> httpx2.Timeout:
        """The timeout of one request: its headers must come before the first-token deadline."""
        left = self.left()
        if left <= 0:
            raise self.expired()
        return httpx2.Timeout(left, connect=min(left, _CONNECT))

    def body_read_timeout(self) -> float:
        """How long one read of the body may wait (its headers are in, no text yet)."""
        now = time.monotonic()
        # Until the first token the first-token deadline rules; after it, the idle timeout.
        # One value serves both (the client reads it once per body), `check` does the rest.
        waits = max(self._first_by - now, self.deadlines.idle)
        return max(0.001, min(waits, self.total_by - now))

    def check(self, now: float) -> None:
        """Raise the `ModelError` of a deadline passed at `now`, if one has."""
        if now >= self.total_by:
            raise self.expired(now)
        if self.last is None:
            if now >= self._first_by:
                raise self.expired(now)
        elif now - self.last >= self.deadlines.idle:
            raise self.expired(now)

    def expired(self, now: float | None = None) -> ModelError:
        """The error for the deadline that has passed (or is about to) at `now`."""
        now = time.monotonic() if now is None else now
        d = self.deadlines
        limits = f"{d.first_token:g}/{d.idle:g}/{d.total:g} s"
        detail = f"deadline passed after {now - self.started:.1f} s (limits {limits})"
        if now >= self.total_by - 0.01:
            text = f"The model took too long: its answer was not done after {d.total:g} seconds."
        elif self.last is None:
            text = f"The model took too long to start answering (over {d.first_token:g} seconds)."
        else:
            text = f"The model took too long: it stopped writing for over {d.idle:g} seconds."
        return ModelError(text, retryable=True, detail=detail)
