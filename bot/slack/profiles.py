"""Member profiles from Slack's `users.info`, for the user directory."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.members.directory import Profile

log = logging.getLogger(__name__)


class SlackProfiles:
    """`ProfileSource` on `users.info`."""

    def __init__(self, client_for: Callable[[str], WebClient]) -> None:
        self._client_for = client_for  # a workspace's id -> a client with its bot token

    def fetch(self, team_id: str, slack_user_id: str) -> Profile | None:
        """The member's name and admin flags, or None when Slack cannot tell us now."""
        try:
            user = self._client_for(team_id).users_info(user=slack_user_id)["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", slack_user_id, exc.response.get("error"))
            return None
        profile = user.get("profile") or {}
        return Profile(
            username=user.get("name") or slack_user_id,
            full_name=profile.get("real_name") or user.get("real_name") or "",
            email=profile.get("email"),
            is_admin=bool(user.get("is_admin") or user.get("is_owner")),
            is_active=not user.get("deleted", False),
        )
