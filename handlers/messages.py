"""Mentions, DMs and thread replies: each becomes one conversation turn."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.conversations.service import IncomingMessage
from bot.shell.services import Services
from handlers.reply import SlackReplyWriter

# Plain messages, thread replies also sent to the channel, and messages with files attached.
ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")


def register(app: App, services: Services) -> None:
    """Listen for mentions and messages."""

    def handle_app_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        answer(services, client, incoming_message(event, context))

    def handle_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("subtype") not in ANSWERED_SUBTYPES or event.get("bot_id"):
            return  # edits, deletions, joins, bots (ourselves included)
        message = incoming_message(event, context)
        if message.mentions_bot and not message.is_dm:
            return  # the app_mention event for the same message answers it
        answer(services, client, message)

    app.event("app_mention")(handle_app_mention)
    app.event("message")(handle_message)


def incoming_message(event: dict[str, Any], context: BoltContext) -> IncomingMessage:
    """The service's view of a Slack message event."""
    text = event.get("text") or ""
    bot_user_id = context.bot_user_id
    return IncomingMessage(
        team_id=context.team_id or event.get("team") or "",
        channel_id=event["channel"],
        user_id=event["user"],
        text=text,
        ts=event["ts"],
        thread_ts=event.get("thread_ts"),
        is_dm=event.get("channel_type") == "im",
        mentions_bot=bool(bot_user_id) and f"<@{bot_user_id}" in text,
        bot_user_id=bot_user_id,
    )


def answer(
    services: Services, client: WebClient, message: IncomingMessage, *, override: str | None = None
) -> None:
    """Run one conversation turn, its reply written into the message's thread."""
    writer = SlackReplyWriter(
        client,
        channel=message.channel_id,
        thread_ts=message.conversation_ts,
        team_id=message.team_id,
        user_id=message.user_id,
    )
    services.conversations.handle(message, writer, override=override)
