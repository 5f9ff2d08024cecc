"""What the file reader needs of Slack: a workspace's bot token, and files.info."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.files.kinds import SlackFile

log = logging.getLogger(__name__)


class SlackFileAccess:
    """A workspace's bot token (its installation's, with OAuth) and `files.info`."""

    def __init__(self, client_for: Callable[[str], WebClient]) -> None:
        self._client_for = client_for  # a workspace's id -> a client with its bot token

    def token(self, team_id: str) -> str | None:
        """The bot token downloads from this workspace are made with."""
        return self._client_for(team_id).token

    def describe(self, team_id: str, file_id: str) -> SlackFile | None:
        """The file as `files.info` describes it; None when Slack will not say."""
        try:
            answer = self._client_for(team_id).files_info(file=file_id, count=0)
        except SlackApiError as exc:
            log.info("files.info failed for %s: %s", file_id, exc.response.get("error"))
            return None
        return SlackFile.parse(answer.get("file"))
