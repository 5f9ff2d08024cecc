"""The Home tab: published for the person who opens it; its menu sets their DM model."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.model_choice.commands import Changed, Place
from bot.shell.services import Services
from handlers.home_blocks import HOME_MODEL_ACTION, home_view
from handlers.lazy import after_ack
from handlers.model_blocks import changed_message

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Register the Home tab's model menu."""

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
