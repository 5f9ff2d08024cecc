"""The App Home: the Home tab published for whoever opens it (its menu sets their DM model),
and the suggested prompts shown when someone opens the Messages tab."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.model_choice.commands import Changed, Place
from bot.shell.services import Services
from handlers.home_blocks import HOME_MODEL_ACTION, home_view
from handlers.lazy import after_ack
from handlers.model_blocks import changed_message

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Listen for people opening the App Home (either tab) and for the Home tab's model menu."""

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

    def handle_home_model_select(
        body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        user = body.get("user") or {}
        team_id = (body.get("team") or {}).get("id") or user.get("team_id")
        name = (action.get("selected_option") or {}).get("value")
        if not (team_id and user.get("id") and name):
            log.info("ignored a Home tab model choice without its workspace, person or model")
            return
        place = Place(team_id=team_id, channel_id="", user_id=user["id"], is_dm=True)
        outcome = services.model_commands.choose(place, name, target="here")
        notice = (
            changed_message(outcome)
            if isinstance(outcome, Changed)
            else f":no_entry: {outcome.message}"
        )
        publish_home(services, client, team_id=team_id, user_id=user["id"], notice=notice)

    after_ack(app.event("app_home_opened"), handle_app_home_opened)
    after_ack(app.action(HOME_MODEL_ACTION), handle_home_model_select)


def publish_home(
    services: Services,
    client: WebClient,
    *,
    team_id: str,
    user_id: str,
    notice: str | None = None,
) -> None:
    """Build the person's Home tab and publish it."""
    home = services.home.home_for(team_id, user_id)
    try:
        client.views_publish(user_id=user_id, view=home_view(home, notice=notice))
    except SlackApiError as exc:
        # Most often the Home tab is not enabled in the app's settings (home_tab_enabled).
        log.warning("could not publish the Home tab: %s", exc.response.get("error"))


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
