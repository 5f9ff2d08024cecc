"""Private notices from the bot, as a message in the member's DM with the app."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient


class SlackNotices:
    """`Notifier` on `chat.postMessage` to a user id (the app's Messages tab)."""

    def __init__(self, client_for: Callable[[str], WebClient]) -> None:
        self._client_for = client_for  # a workspace's id -> a client with its bot token

    def notify(self, team_id: str, slack_user_id: str, text: str) -> None:
        """Post `text` in the member's DM with the bot; raises SlackApiError when refused."""
        self._client_for(team_id).chat_postMessage(channel=slack_user_id, text=text)
