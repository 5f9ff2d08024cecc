"""The messages of the fake Slack's channels, and `conversations.replies` over them.

What Slack documents (docs.slack.dev/reference/methods/conversations.replies) and the fake
does: `channel` and `ts` are required, `ts` being a thread's parent or any message in it (a
message with no replies is a thread of one); messages come oldest first, those between
`oldest` and `latest` (`inclusive` takes the bounds in); `limit` per page (at most 1,000);
`has_more` and `response_metadata.next_cursor` page on, a `cursor` continuing where the last
page ended (an unknown cursor answers `invalid_cursor`). The parent message heads every page,
as Slack returns it. Errors: `channel_not_found`, `thread_not_found` (also for join and leave
messages, which cannot be threaded), `invalid_ts_latest`/`invalid_ts_oldest`. Rate limits
(`ratelimited`, HTTP 429 with `Retry-After`) and token checks are the fake's, as for every
method (`FakeSlackAPI.fail`, its OAuth mode).
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any

Payload = dict[str, Any]

MAX_LIMIT = 1000
DEFAULT_LIMIT = 1000
_TS = re.compile(r"^\d+(\.\d+)?$")
_UNTHREADED = ("channel_join", "channel_leave")


class FakeThreads:
    """Each channel's messages by ts, as the Web API would read them back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, dict[str, Payload]] = {}

    def add(self, channel: str, message: Payload) -> Payload:
        """Keep `message` (a Slack message with at least `ts`) in `channel`; the message.

        A message already kept under that ts is left as it is (Slack's events repeat them).
        """
        kept = {k: v for k, v in message.items() if k not in ("channel", "channel_type", "team")}
        kept.setdefault("type", "message")
        with self._lock:
            return self._channels.setdefault(channel, {}).setdefault(str(kept["ts"]), kept)

    def update(self, channel: str, ts: str, **fields: Any) -> None:
        """Change fields of a kept message (text written into a stream, an edit)."""
        with self._lock:
            message = self._channels.get(channel, {}).get(ts)
            if message is not None:
                message.update(fields)

    def append_text(self, channel: str, ts: str, text: str) -> None:
        """Add text to a kept message (a stream being written)."""
        with self._lock:
            message = self._channels.get(channel, {}).get(ts)
            if message is not None:
                message["text"] = str(message.get("text") or "") + text

    def remove(self, channel: str, ts: str) -> None:
        """Forget a message (deleted in Slack)."""
        with self._lock:
            self._channels.get(channel, {}).pop(ts, None)

    def known(self, channel: str) -> bool:
        """Whether the channel holds any message."""
        with self._lock:
            return channel in self._channels

    def replies(self, args: Payload) -> Payload:
        """The answer to `conversations.replies` with `args` (ok or not)."""
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not _TS.match(ts):
            return {"ok": False, "error": "thread_not_found"}
        for name in ("latest", "oldest"):
            if args.get(name) not in (None, "") and not _TS.match(str(args[name])):
                return {"ok": False, "error": f"invalid_ts_{name}"}
        with self._lock:
            messages = self._channels.get(channel)
            if messages is None:
                return {"ok": False, "error": "channel_not_found"}
            found = messages.get(ts)
            if found is None or found.get("subtype") in _UNTHREADED:
                return {"ok": False, "error": "thread_not_found"}
            parent_ts = str(found.get("thread_ts") or ts)
            parent = messages.get(parent_ts)
            thread = sorted(
                (
                    dict(m)
                    for m in messages.values()
                    if m["ts"] != parent_ts and m.get("thread_ts") == parent_ts
                ),
                key=lambda m: float(m["ts"]),
            )
        in_range = [m for m in thread if _within(m["ts"], args)]
        head = [dict(parent)] if parent is not None and _within(parent_ts, args) else []
        try:
            start = _offset(args.get("cursor"))
            limit = min(int(args.get("limit") or DEFAULT_LIMIT), MAX_LIMIT)
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        if limit < 1:
            limit = DEFAULT_LIMIT
        # The parent counts against the page's limit.
        page = in_range[start : start + max(1, limit - len(head))]
        end = start + len(page)
        more = end < len(in_range)
        return {
            "ok": True,
            "messages": head + page,
            "has_more": more,
            "response_metadata": {"next_cursor": _cursor(end) if more else ""},
        }


def _within(ts: str, args: Payload) -> bool:
    inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
    value = float(ts)
    if args.get("latest") not in (None, ""):
        latest = float(args["latest"])
        if value > latest or (value == latest and not inclusive):
            return False
    if args.get("oldest") not in (None, ""):
        oldest = float(args["oldest"])
        if value < oldest or (value == oldest and not inclusive):
            return False
    return True


def _cursor(offset: int) -> str:
    return base64.b64encode(f"next_ts:{offset}".encode()).decode()


def _offset(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    prefix, _, number = text.partition(":")
    if prefix != "next_ts" or not number.isdigit():
        raise ValueError("invalid cursor")
    return int(number)
