"""How long one answer may take: to its first token, between two chunks, and in all."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.llm.port import ModelError

# Monotonic seconds; tests hand in their own.
Now = Callable[[], float]

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
    ended by the HTTP client's read timeout. Each attempt's timeout is the time left to the
    first token, so missing headers fail on time; the body's read timeout is set once, when
    its headers are in, to the longer of the first-token time left and the idle timeout
    (capped by the total), and `check` compares the clock with the deadlines after every read,
    so keep-alive comments do not hold a turn. What this leaves: a body that falls silent is
    noticed after that one read timeout, so when the first-token and idle timeouts differ the
    shorter one can be noticed late (up to the longer), a stream silent in its last seconds
    can run past the total by up to the idle timeout, and the client's backoff between two
    attempts (0.5 s, then 1 s, …, no `Retry-After`) can end past a deadline before the next
    attempt fails at once.
    """

    __slots__ = ("_first_by", "deadlines", "last", "now", "read_at", "started", "total_by")

    def __init__(self, deadlines: Deadlines, now: Now = time.monotonic) -> None:
        self.deadlines = deadlines
        self.now = now
        self.started = now()
        self._first_by = self.started + deadlines.first_token
        self.total_by = self.started + deadlines.total
        self.last: float | None = None  # when the model last wrote something
        self.read_at = self.started  # when the last read of the body arrived

    def left(self) -> float:
        """Seconds left before the deadline that applies now."""
        if self.last is None:
            return min(self._first_by, self.total_by) - self.now()
        return min(self.last + self.deadlines.idle, self.total_by) - self.now()

    def request_timeouts(self) -> dict[str, float]:
        """The timeouts of one attempt: its headers must come before the first-token deadline."""
        left = self.left()
        if left <= 0:
            raise self.expired()
        return {"connect": min(left, _CONNECT), "read": left, "write": left, "pool": left}

    def body_read_timeout(self) -> float:
        """How long one read of the body may wait (its headers are in, no text yet)."""
        now = self.now()
        # Until the first token the first-token deadline rules; after it, the idle timeout.
        # One value serves both (the client reads it once per body), `check` does the rest.
        waits = max(self._first_by - now, self.deadlines.idle)
        return max(0.001, min(waits, self.total_by - now))

    def read(self) -> float:
        """Note that a read of the body arrived now; returns when."""
        self.read_at = self.now()
        return self.read_at

    def progressed(self) -> None:
        """The last read carried progress (text, reasoning, a tool call, usage, the end)."""
        self.last = self.read_at

    def check(self, at: float) -> None:
        """Raise the `ModelError` of a deadline passed at `at`, if one has."""
        if at >= self.total_by:
            raise self.expired(at)
        if self.last is None:
            if at >= self._first_by:
                raise self.expired(at)
        elif at - self.last >= self.deadlines.idle:
            raise self.expired(at)

    def expired(self, at: float | None = None) -> ModelError:
        """The error for the deadline that has passed (or is about to) at `at`."""
        at = self.now() if at is None else at
        d = self.deadlines
        limits = f"{d.first_token:g}/{d.idle:g}/{d.total:g} s"
        detail = f"deadline passed after {at - self.started:.1f} s (limits {limits})"
        if at >= self.total_by - 0.01:
            text = f"The model took too long: its answer was not done after {d.total:g} seconds."
        elif self.last is None:
            text = f"The model took too long to start answering (over {d.first_token:g} seconds)."
        else:
            text = f"The model took too long: it stopped writing for over {d.idle:g} seconds."
        return ModelError(text, retryable=True, detail=detail)
