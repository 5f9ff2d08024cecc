"""Slack's `app_rate_limited` notice: the app exceeded the Events API's limit."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import App, BoltRequest, BoltResponse

from bot.shell.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Answer `app_rate_limited` with 200, after Bolt has checked its signature."""
    app.middleware(handle_app_rate_limited)


def handle_app_rate_limited(
    req: BoltRequest, resp: BoltResponse, next: Callable[[], None]
) -> BoltResponse | None:
    """Log the notice as a warning; everything else goes on to the listeners.

    Slack posts it to the request URL with no event in it (`minute_rate_limited`, the minute
    it counts from): no listener matches, and Bolt would answer 404.
    """
    body = req.body
    if body.get("type") != "app_rate_limited":
        next()
        return None
    log.warning(
        "Slack says this app went over the Events API's rate limit (team %s, app %s, minute %s);"
        " events of that minute may be dropped",
        body.get("team_id"),
        body.get("api_app_id"),
        body.get("minute_rate_limited"),
    )
    return BoltResponse(status=200, body="")
