"""Opening the bot's App Home: suggested prompts on the Messages tab, the Home tab's view."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.shell.services import Services
from handlers.home import publish_home
from handlers.lazy import after_ack

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Listen for people opening the App Home (either tab)."""

    def handle_app_home_opened(
        event: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        # Runs after the acknowledgement (lazily): the Slack calls below never delay it.
        tab, user, channel = event.get("tab"), event.get("user"), event.get("channel")
        if tab == "messages" and channel:
            suggest_prompts(services, client, channel_id=channel)
        elif tab == "home" and user:
            team_id = context.team_id or (event.get("view") or {}).get("team_id") or ""
            publish_home(services, client, team_id=team_id, user_id=user)

    after_ack(app.event("app_home_opened"), handle_app_home_opened)


def suggest_prompts(services: Services, client: WebClient, *, channel_id: str) -> None:
    """Show the suggested prompts in a person's DM with the bot."""
    prompts = services.prompts
    try:
        # No thread_ts: for an agent app (agent_view) a call with one silently does nothing.
        # The client, not Bolt's `set_suggested_prompts` helper: this also runs as a lazy
        # listener, where only the payload and the client are sure to be at hand.
        client.assistant_threads_setSuggestedPrompts(
            channel_id=channel_id,
            prompts=[{"title": p.title, "message": p.message} for p in prompts.prompts()],
            title=prompts.title,
        )
    except SlackApiError as exc:
        # Cosmetic: an app without the agent features cannot set prompts; DMs work regardless.
        log.info("no suggested prompts: %s", exc.response.get("error"))
