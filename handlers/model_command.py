"""/model and the buttons of its menu: payloads to `ModelCommandService`, outcomes to Slack."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.conversations.service import IncomingMessage
from bot.model_choice.commands import Ask, Changed, Help, Outcome, Place, Status
from bot.shell.services import Services
from handlers.lazy import after_ack
from handlers.model_blocks import (
    HELP,
    SELECT_ACTION,
    SET_HERE_ACTION,
    SET_NEXT_ACTION,
    announcement,
    asked_message,
    changed_message,
    status_message,
)
from handlers.slash_replies import Reply, problem, send

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Register /model and the actions of its menu."""
    commands = services.model_commands

    def handle_model_command(
        command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
    ) -> None:
        place = Place(
            team_id=command.get("team_id") or context.team_id or "",
            channel_id=command["channel_id"],
            user_id=command["user_id"],
            is_dm=is_dm(command["channel_id"], command.get("channel_name")),
        )
        outcome = commands.run(place, command.get("text") or "")
        if isinstance(outcome, Ask):
            # Rendering an Ask means posting the prompt and answering it in its new thread.
            _ask(services, client, respond, place, outcome, bot_user_id=context.bot_user_id)
        else:
            _show(client, respond, place, outcome)

    def handle_model_menu_select(ack: Ack) -> None:
        # Choosing applies nothing: the buttons read the choice from the menu's state.
        ack()

    def handle_model_set(
        body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        place = place_of_action(body)
        name = selected_model(body)
        if name is None:
            send(
                respond,
                Reply(
                    "Choose a model in the menu first, then press the button again.",
                    replace_original=False,
                ),
            )
            return
        target = "next" if action.get("action_id") == SET_NEXT_ACTION else "here"
        outcome = commands.choose(place, name, target=target)
        _show(client, respond, place, outcome, from_button=True)

    # An empty ack at once; the work runs after it on Bolt's listener threads (lazy), never on
    # the turn workers: fetching the catalogue or a profile may take longer than 3 s.
    after_ack(app.command("/model"), handle_model_command)
    app.action(SELECT_ACTION)(handle_model_menu_select)
    after_ack(app.action(SET_HERE_ACTION), handle_model_set)
    after_ack(app.action(SET_NEXT_ACTION), handle_model_set)


def is_dm(channel_id: str, channel_name: str | None) -> bool:
    """Whether a command or action came from a direct message."""
    return channel_id.startswith("D") or channel_name == "directmessage"


def place_of_action(body: dict[str, Any]) -> Place:
    """Where a button of the /model menu was pressed, and by whom."""
    channel = body.get("channel") or {}
    channel_id = channel.get("id") or (body.get("container") or {}).get("channel_id") or ""
    user = body.get("user") or {}
    return Place(
        team_id=(body.get("team") or {}).get("id") or user.get("team_id") or "",
        channel_id=channel_id,
        user_id=user["id"],
        is_dm=is_dm(channel_id, channel.get("name")),
    )


def selected_model(body: dict[str, Any]) -> str | None:
    """The option chosen in the menu, from the message's `state.values`."""
    values = (body.get("state") or {}).get("values") or {}
    for block in values.values():
        chosen = (block.get(SELECT_ACTION) or {}).get("selected_option")
        if chosen and chosen.get("value"):
            return str(chosen["value"])
    return None


def _show(
    client: WebClient,
    respond: Respond,
    place: Place,
    outcome: Outcome,
    *,
    from_button: bool = False,
) -> None:
    send(respond, model_reply(outcome, from_button=from_button))
    if isinstance(outcome, Changed):
        note = announcement(outcome, place.user_id)
        if note is not None:
            _post_note(client, respond, place, note)


def model_reply(outcome: Outcome, *, from_button: bool = False) -> Reply:
    """What the person who ran /model (or pressed a button of its menu) is told."""
    if isinstance(outcome, Status):
        return status_message(outcome)
    if isinstance(outcome, Help):
        return Reply(HELP)
    if isinstance(outcome, Changed):
        # From a button, the confirmation takes the menu's place.
        return Reply(changed_message(outcome), replace_original=True if from_button else None)
    if isinstance(outcome, Ask):  # pragma: no cover - handled by the caller
        raise TypeError("an Ask is answered, not shown")
    return replace(problem(outcome.message), replace_original=False if from_button else None)


def _post_note(client: WebClient, respond: Respond, place: Place, note: str) -> None:
    try:
        client.chat_postMessage(channel=place.channel_id, text=note)
    except SlackApiError as exc:
        # Saved all the same; only the public note could not be posted (the bot is not a member).
        log.info("no /model note in %s: %s", place.channel_id, exc.response.get("error"))
        send(
            respond,
            Reply(
                "The change is saved, but I could not tell the channel: invite me with "
                "`/invite @Switchboard` so I can post here.",
                replace_original=False,
            ),
        )


def _ask(
    services: Services,
    client: WebClient,
    respond: Respond,
    place: Place,
    ask: Ask,
    *,
    bot_user_id: str | None,
) -> None:
    try:
        posted = client.chat_postMessage(
            channel=place.channel_id,
            text=asked_message(place.user_id, ask.model, ask.name, ask.prompt),
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as exc:
        log.info("no /model prompt in %s: %s", place.channel_id, exc.response.get("error"))
        send(
            respond,
            problem(
                "I cannot post in this conversation, so I could not ask. Invite me "
                "with `/invite @Switchboard`, or ask me in a DM."
            ),
        )
        return
    ts = str(posted["ts"])
    message = IncomingMessage(
        team_id=place.team_id,
        channel_id=place.channel_id,
        user_id=place.user_id,
        text=ask.prompt,
        ts=ts,
        thread_ts=None,
        is_dm=place.is_dm,
        mentions_bot=True,
        bot_user_id=bot_user_id,
    )
    try:
        services.turns.accept(message, override=ask.model)
    except Exception:
        # Not stored, so never answered: take the question back rather than leave it hanging
        # (the error handler then tells the person nothing was changed).
        try:
            client.chat_delete(channel=place.channel_id, ts=ts)
        except SlackApiError as exc:
            log.warning("could not take back an unanswerable /model prompt: %s", exc)
        raise
