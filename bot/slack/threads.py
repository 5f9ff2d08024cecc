"""Threads read from Slack (`conversations.replies`), for the bot called into one."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.conversations.history import MAX_PAGES, PAGE_SIZE, ReadProblem, ThreadPages

log = logging.getLogger(__name__)

_PROBLEMS = {
    "ratelimited": ReadProblem.RATE_LIMITED,
    "not_in_channel": ReadProblem.NOT_IN_CHANNEL,
    "missing_scope": ReadProblem.NO_SCOPE,
    "channel_not_found": ReadProblem.NOT_FOUND,
    "thread_not_found": ReadProblem.NOT_FOUND,
}


class SlackThreads:
    """`ThreadSource` on `conversations.replies`, paged with its cursor.

    A rate limit is not waited out: the person waits for the answer, which goes on with what
    was read (the workspace's client waits out a short `Retry-After` for other calls; this one
    is a copy without that handler). Who the bot is in each workspace (`auth.test`, to tell
    its own messages in the thread) is asked once per workspace and kept.
    """

    def __init__(
        self,
        client_for: Callable[[str], WebClient],
        *,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._client_for = client_for
        self._page_size = page_size
        self._max_pages = max_pages
        self._identities: dict[str, tuple[str | None, str | None]] = {}
        self._lock = threading.Lock()

    def read(self, team_id: str, channel_id: str, thread_ts: str, *, latest: str) -> ThreadPages:
        """The thread's messages before `latest`, oldest first."""
        client = _impatient(self._client_for(team_id))
        calls = 0
        with self._lock:
            identity = self._identities.get(team_id)
        try:
            if identity is None:
                calls += 1
                found = client.auth_test()
                identity = (found.get("user_id"), found.get("bot_id"))
                with self._lock:
                    self._identities[team_id] = identity
        except Exception as exc:
            return ThreadPages(calls=calls, **_failure(exc))
        bot_user_id, bot_id = identity
        messages: list[Mapping[str, Any]] = []
        cursor: str | None = None
        for _ in range(self._max_pages):
            calls += 1
            try:
                page = client.conversations_replies(
                    channel=channel_id,
                    ts=thread_ts,
                    latest=latest,
                    inclusive=False,  # the mention itself is stored already
                    limit=self._page_size,
                    cursor=cursor,
                )
            except Exception as exc:
                return ThreadPages(messages, bot_user_id, bot_id, calls=calls, **_failure(exc))
            messages.extend(m for m in page.get("messages") or [] if isinstance(m, dict))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                break
        return ThreadPages(messages, bot_user_id, bot_id, calls=calls)


def _failure(exc: Exception) -> dict[str, Any]:
    """The problem and error code of a failed call (`ThreadPages` fields)."""
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error") or "unknown")
        return {"problem": _PROBLEMS.get(error, ReadProblem.REFUSED), "error": error}
    return {"problem": ReadProblem.UNREACHABLE, "error": type(exc).__name__}


def _impatient(client: WebClient) -> WebClient:
    """The same client, without waiting out rate limits."""
    quick = copy.copy(client)
    quick.retry_handlers = [
        handler
        for handler in client.retry_handlers
        if not isinstance(handler, RateLimitErrorRetryHandler)
    ]
    return quick
