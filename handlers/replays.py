"""Slash commands run once per trigger id, and only when Slack says who sent them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.response import BoltResponse

from bot.shell.services import Services

UNKNOWN_SENDER = (
    "Slack did not say which workspace or person this command came from, so I did nothing. "
    "Try again in a moment."
)


def register(app: App, services: Services) -> None:
    """Check every slash command before any listener sees it."""
    receipts = services.command_receipts

    def handle_command_delivery(
        body: dict[str, Any], next_: Callable[[], None]
    ) -> BoltResponse | None:
        if "command" not in body:
            next_()
            return None
        team_id, user_id = body.get("team_id"), body.get("user_id")
        if not (isinstance(team_id, str) and team_id and isinstance(user_id, str) and user_id):
            # Refused before any service runs, so no `users` row with an empty id is written.
            return BoltResponse(
                status=200, body={"response_type": "ephemeral", "text": UNKNOWN_SENDER}
            )
        trigger_id = body.get("trigger_id")
        # Slack sends a trigger id with every command; without one there is nothing to key on.
        if trigger_id and not receipts.first_delivery(trigger_id=trigger_id, team_id=team_id):
            return BoltResponse(status=200, body="")  # a replay: acknowledged, not run again
        next_()
        return None

    app.middleware(handle_command_delivery)
