"""Each workspace's own WebClient, for what is written outside Slack's requests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.token_rotation import TokenRotator

from bot.installs.store import DatabaseInstallationStore

log = logging.getLogger(__name__)

# How long a workspace's client is reused before its installation is read again: a
# revoked or replaced token is tried for at most this long.
CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class _Cached:
    client: WebClient
    read_at: float  # time.monotonic()
    expires_at: int | None  # the token's, Unix seconds


class WorkspaceClients:
    """`client_for(team_id)`: a WebClient with the bot token of that workspace's installation.

    Turn workers, budget notices and profile look-ups run outside Bolt's request context, so
    Bolt's per-request client is not theirs to use. A token close to expiry (token rotation)
    is refreshed here as Bolt refreshes it on requests, and stored back.
    """

    def __init__(
        self,
        store: DatabaseInstallationStore,
        *,
        make_client: Callable[[str | None], WebClient],
        rotator: TokenRotator | None = None,
        rotate_minutes: int = 120,
    ) -> None:
        self._store = store
        self._make_client = make_client
        self._rotator = rotator
        self._rotate_seconds = rotate_minutes * 60
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def __call__(self, team_id: str) -> WebClient:
        """The client of workspace `team_id`.

        A workspace without an installation (uninstalled, or its token revoked) gets a client
        without a token: Slack refuses its calls (`not_authed`), and what needed them fails as
        any refused call does, so a turn waiting there is recorded, not retried for ever.
        """
        with self._lock:
            cached = self._cache.get(team_id)
        if cached is not None and self._usable(cached):
            return cached.client
        bot = self._store.find_bot_for_team(team_id)
        if bot is None:
            log.warning("Switchboard has no token for workspace %s (not installed there)", team_id)
            cached = _Cached(self._make_client(None), time.monotonic(), None)
            with self._lock:
                self._cache[team_id] = cached
            return cached.client
        if self._rotator is not None and bot.bot_refresh_token:
            try:
                refreshed = self._rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=self._rotate_seconds // 60
                )
            except SlackTokenRotationError as exc:
                # The current token may still be good for a while; the next call tries again.
                log.warning("refreshing the token of workspace %s failed: %s", team_id, exc)
                refreshed = None
            if refreshed is not None:
                self._store.save_bot(refreshed)
                bot = refreshed
        cached = _Cached(
            self._make_client(bot.bot_token), time.monotonic(), bot.bot_token_expires_at
        )
        with self._lock:
            self._cache[team_id] = cached
        return cached.client

    def _usable(self, cached: _Cached) -> bool:
        if time.monotonic() - cached.read_at > CACHE_SECONDS:
            return False
        return cached.expires_at is None or cached.expires_at > time.time() + self._rotate_seconds
