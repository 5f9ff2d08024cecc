"""How often a streamed reply may append: the replies open in a workspace share its rate tier.

`chat.appendStream` is rate tier 4, about 100 calls a minute per workspace, shared by every
reply streaming there at once. One reply appends at most once a second (`FLUSH_INTERVAL`);
with more open at once, each waits longer between appends so that together they stay near
the tier (10 replies: every 6 s), rather than being refused with `ratelimited` and retried.
The first text of a reply (`chat.startStream`) and its end (`chat.stopStream`, with the rest
of the text) are never held back. Each process paces its own replies.

Measured with `bench/load.py --only burst` (300 answers streaming 30 s at once): see README,
"Bursts".
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

# One reply's pace, and the workspace's whole budget of appends.
FLUSH_INTERVAL = 1.0
APPENDS_PER_MINUTE = 100


class AppendPace:
    """Counts the replies streaming in each workspace; says how long each waits to append."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def opened(self, team_id: str) -> None:
        """A reply started streaming in `team_id`."""
        with self._lock:
            self._open[team_id] += 1

    def closed(self, team_id: str) -> None:
        """A reply that `opened` has ended."""
        with self._lock:
            self._open[team_id] -= 1
            if self._open[team_id] <= 0:
                del self._open[team_id]

    def due(self, team_id: str, last: float) -> bool:
        """Whether a reply in `team_id` that last sent text at `last` (`clock`) may append."""
        return self.clock() - last >= self.interval(team_id)

    def interval(self, team_id: str) -> float:
        """Seconds between two appends of one reply in `team_id`."""
        with self._lock:
            streaming = self._open[team_id]
        return max(FLUSH_INTERVAL, streaming * 60 / APPENDS_PER_MINUTE)
