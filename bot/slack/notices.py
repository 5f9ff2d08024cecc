"""Private notices from the bot, as a message in the member's DM with the app."""

from __future__ import annotations

from slack_sdk import WebClient


class SlackNotices:
    """`Notifier` on `chat.postMessage` to a user id (the app's Messages tab)."""

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def notify(self, team_id: str, slack_user_id: str, text: str) -> None:
        """Post `text` in the member's DM with the bot; raises SlackApiError when refused."""
        self._client.chat_postMessage(channel=slack_user_id, text=text)
