"""Calls made after a delay, waited for on one shared thread.

`threading.Timer` starts a thread per call, about 150 µs even when it is cancelled at once,
as the reply status nearly always is. Here one daemon thread waits for every delay, and a
thread is started only for a call that falls due.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class Pending:
    """A call waiting for its time; `cancel()` stops it if it has not started."""

    due: float
    order: int
    call: Callable[[], None] | None = field(compare=False)

    def cancel(self) -> None:
        """Do not make the call (harmless once it has started)."""
        self.call = None  # and let go of what it would have called


class Timers:
    """Runs calls after a delay, each on a thread of its own once it falls due."""

    def __init__(self, name: str = "timers") -> None:
        self._name = name
        self._pending: list[Pending] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, call: Callable[[], None]) -> Pending:
        """Make `call` in `delay` seconds, unless it is cancelled first."""
        pending = Pending(time.monotonic() + delay, next(self._order), call)
        with self._changed:
            heapq.heappush(self._pending, pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._pending[0] is pending:
                self._changed.notify()
        return pending

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending or self._pending[0].due > time.monotonic():
                    wait = self._pending[0].due - time.monotonic() if self._pending else None
                    self._changed.wait(wait)
                due = heapq.heappop(self._pending)
            call = due.call
            if call is None:
                continue
            try:
                threading.Thread(target=call, name=f"{self._name}-call", daemon=True).start()
            except RuntimeError:  # no thread to be had: skip this call, keep the others
                log.warning("could not start a thread for a delayed call", exc_info=True)
