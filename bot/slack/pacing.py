"""How often a streamed reply may append: the replies open in a workspace share its rate tier.

`chat.appendStream` is rate tier 4, about 100 calls a minute per workspace, shared by every
reply streaming there at once. One reply appends at most once a second (`FLUSH_INTERVAL`);
with more open at once, each waits longer between appends so that together they stay near
the tier (10 replies: every 6 s), rather than being refused with `ratelimited` and retried.
The first text of a reply (`chat.startStream`) and its end (`chat.stopStream`, with the rest
of the text) are never held back. Each process paces its own replies.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable

# One reply's pace, and the workspace's whole budget of appends.
FLUSH_INTERVAL = 1.0
APPENDS_PER_MINUTE = 100


class AppendPace:
    """The replies streaming in each workspace; how long each waits between two appends.

    Replies are held weakly: one dropped without being closed (its turn crashed) stops
    counting once it is gone.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._open: defaultdict[str, weakref.WeakSet[object]] = defaultdict(weakref.WeakSet)

    def opened(self, team_id: str, reply: object) -> None:
        """`reply` started streaming in `team_id`."""
        with self._lock:
            self._open[team_id].add(reply)

    def closed(self, team_id: str, reply: object) -> None:
        """`reply` has ended."""
        with self._lock:
            self._open[team_id].discard(reply)
            if not self._open[team_id]:
                del self._open[team_id]

    def due(self, team_id: str, last: float) -> bool:
        """Whether a reply in `team_id` that last sent text at `last` (`clock`) may append."""
        return self.clock() - last >= self.interval(team_id)

    def interval(self, team_id: str) -> float:
        """Seconds between two appends of one reply in `team_id`."""
        with self._lock:
            replies = self._open.get(team_id)
            streaming = len(replies) if replies is not None else 0
        return max(FLUSH_INTERVAL, streaming * 60 / APPENDS_PER_MINUTE)
