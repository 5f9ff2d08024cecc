"""One place for errors no listener expected: log them, and tell the person when we can."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse

from bot.shell.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Install the app-wide error handler."""

    def handle_error(error: Exception, body: dict[str, Any], respond: Any) -> BoltResponse:
        log.exception("unhandled error in a Slack listener", exc_info=error)
        if respond is not None and body.get("response_url"):
            respond(
                response_type="ephemeral",
                text=":warning: Something went wrong on our side; nothing was changed. "
                "Please try again in a moment.",
            )
        return BoltResponse(status=500, body="")

    app.error(handle_error)
