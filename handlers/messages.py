"""Mentions, DMs and thread messages: each is stored before Slack is acknowledged, with a turn
when the bot answers it (the rule is the service's: `bot/conversations/intake.py`)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext

from bot.conversations.retention import SlackMessageRef
from bot.conversations.service import Author, IncomingMessage
from bot.conversations.slack_messages import parse_message
from bot.shell.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Listen for mentions and messages.

    The app runs with `process_before_response`: these listeners run before Slack gets its
    acknowledgement, and only store the message (`accept` is fast). If that fails, Slack gets
    an error and delivers the event again.
    """

    def handle_app_mention(event: dict[str, Any], context: BoltContext) -> None:
        message = incoming_message(event, context)
        if message is not None and message.author is not Author.SELF:
            # Mentions sometimes come without their files: the message event brings them.
            follow = not message.files and not message.is_dm
            services.turns.accept(message, files_may_follow=follow)

    def handle_message(event: dict[str, Any], context: BoltContext) -> None:
        if event.get("subtype") in ("message_changed", "message_deleted"):
            handle_change(event, context)
            return
        message = incoming_message(event, context)
        if message is None or message.author is Author.SELF:
            return  # joins and other system messages, and the bot's own replies
        if message.mentions_bot and not message.is_dm and message.author is Author.PERSON:
            # The app_mention event for the same message answers it; this one may bring the
            # files that event lacked (stored once with the message, answered once).
            if message.files:
                services.turns.accept(message)
            services.turns.message_seen(message)
            return
        services.turns.accept(message)

    def handle_file_deleted(event: dict[str, Any], context: BoltContext) -> None:
        file_id = event.get("file_id")
        team_id = context.team_id or event.get("team_id") or ""
        if isinstance(file_id, str) and file_id and services.files is not None:
            services.files.forget(team_id, file_id)

    def handle_change(event: dict[str, Any], context: BoltContext) -> None:
        # Stored content follows what the thread shows; unknown messages change nothing.
        change = changed_message(event, context)
        if change is None:
            return
        where, text = change
        if text is None:
            services.retention.forget(where)
        else:
            services.retention.edit(where, text, bot_user_id=context.bot_user_id)

    app.event("app_mention")(handle_app_mention)
    app.event("message")(handle_message)
    app.event("file_deleted")(handle_file_deleted)


def incoming_message(event: dict[str, Any], context: BoltContext) -> IncomingMessage | None:
    """The service's view of a Slack message event; None when there is nothing to keep."""
    return parse_message(
        event,
        team_id=context.team_id or event.get("team") or "",
        bot_user_id=context.bot_user_id,
        bot_id=context.bot_id,
    )


def changed_message(
    event: dict[str, Any], context: BoltContext
) -> tuple[SlackMessageRef, str | None] | None:
    """Which message an edit or deletion is about, and its new text (None: it is gone).

    None for changes that are not a person's edit: the bot's own streaming updates, and
    events without a channel or ts.
    """
    channel = event.get("channel")
    message = event.get("message")
    before = event.get("previous_message")
    before = before if isinstance(before, dict) else {}
    if event.get("subtype") == "message_deleted":
        ts, text = event.get("deleted_ts") or before.get("ts"), None
        thread_ts = before.get("thread_ts")
    elif isinstance(message, dict):
        ts, thread_ts = message.get("ts"), message.get("thread_ts")
        # A thread's first message, deleted while replies remain, becomes a tombstone.
        if message.get("subtype") == "tombstone":
            text = None
        elif message.get("bot_id") or not isinstance(message.get("text"), str):
            return None
        else:
            text = message["text"]
    else:
        return None
    if not (isinstance(channel, str) and channel and isinstance(ts, str) and ts):
        return None
    where = SlackMessageRef(
        team_id=context.team_id or event.get("team") or "",
        channel_id=channel,
        thread_ts=thread_ts if isinstance(thread_ts, str) and thread_ts else None,
        ts=ts,
    )
    return where, text
