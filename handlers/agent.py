"""Opening the bot's App Home: suggested prompts on the Messages tab, the Home tab's view."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.context.set_suggested_prompts import SetSuggestedPrompts
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.shell.services import Services
from handlers.home import publish_home

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Listen for people opening the App Home (either tab)."""

    def handle_app_home_opened(
        event: dict[str, Any],
        context: BoltContext,
        client: WebClient,
        set_suggested_prompts: SetSuggestedPrompts | None,
    ) -> None:
        # Bolt has acknowledged the event already: Slack's view calls happen afterwards.
        tab = event.get("tab")
        if tab == "messages" and set_suggested_prompts is not None:
            suggest_prompts(services, set_suggested_prompts)
        elif tab == "home" and event.get("user"):
            team_id = context.team_id or (event.get("view") or {}).get("team_id") or ""
            publish_home(services, client, team_id=team_id, user_id=event["user"])

    app.event("app_home_opened")(handle_app_home_opened)


def suggest_prompts(services: Services, set_suggested_prompts: SetSuggestedPrompts) -> None:
    """Show the suggested prompts in the person's DM with the bot (no thread: agent apps)."""
    prompts = services.prompts
    try:
        set_suggested_prompts(
            prompts=[{"title": p.title, "message": p.message} for p in prompts.prompts()],
            title=prompts.title,
        )
    except SlackApiError as exc:
        # Cosmetic: an app without the agent features cannot set prompts; DMs work regardless.
        log.info("no suggested prompts: %s", exc.response.get("error"))
