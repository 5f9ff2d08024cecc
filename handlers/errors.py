"""One place for errors no listener expected: log them, and tell the person when we can.

Bolt hands errors raised before the acknowledgement to `app.error`; errors raised in work done
after it (lazy listeners, see `handlers/lazy.py`) Bolt only logs, so that work reports its
errors here itself. Either way: logged once, and a plain sentence to the person.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse

from bot.shell.services import Services

log = logging.getLogger(__name__)

SOMETHING_WENT_WRONG = (
    ":warning: Something went wrong on our side; nothing was changed. Please try again in a moment."
)


def report(error: Exception, body: dict[str, Any], respond: Any) -> None:
    """Log `error` once and, when the request has a `response_url`, say so to the person."""
    log.error("unhandled error in a Slack listener", exc_info=error)
    if respond is None or not body.get("response_url"):
        return
    try:
        respond(response_type="ephemeral", replace_original=False, text=SOMETHING_WENT_WRONG)
    except Exception as exc:  # the apology failing must not hide the error it is about
        log.warning("could not tell the person about the error (%s)", exc)


def register(app: App, services: Services) -> None:
    """Install the app-wide error handler."""

    def handle_error(error: Exception, body: dict[str, Any], respond: Any) -> BoltResponse:
        report(error, body, respond)
        # Before the acknowledgement (an event that could not be stored): Slack delivers again.
        return BoltResponse(status=500, body="")

    app.error(handle_error)
