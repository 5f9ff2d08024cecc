"""Mentions, DMs and thread replies: each is stored as a turn before Slack is acknowledged."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App, BoltContext

from bot.conversations.retention import SlackMessageRef
from bot.conversations.service import IncomingMessage
from bot.files.kinds import parse_files
from bot.shell.services import Services

log = logging.getLogger(__name__)

# Plain messages, thread replies also sent to the channel, and messages with files attached.
ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")


def register(app: App, services: Services) -> None:
    """Listen for mentions and messages.

    The app runs with `process_before_response`: these listeners run before Slack gets its
    acknowledgement, and only store the message (`accept` is fast). If that fails, Slack gets
    an error and delivers the event again.
    """

    def handle_app_mention(event: dict[str, Any], context: BoltContext) -> None:
        message = incoming_message(event, context)
        if message is not None:
            # Mentions sometimes come without their files: the message event brings them.
            follow = not message.files and not message.is_dm
            services.turns.accept(message, files_may_follow=follow)

    def handle_message(event: dict[str, Any], context: BoltContext) -> None:
        if event.get("subtype") in ("message_changed", "message_deleted"):
            handle_change(event, context)
            return
        if event.get("subtype") not in ANSWERED_SUBTYPES or event.get("bot_id"):
            return  # joins, bots (ourselves included)
        message = incoming_message(event, context)
        if message is None:
            return
        if message.mentions_bot and not message.is_dm:
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
    """The service's view of a Slack message event; None when it is not a person's message."""
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and user and channel and ts):
        # Workflow, system and some bot messages come without a user, channel or ts.
        log.debug("ignoring a %s event without user, channel or ts", event.get("type"))
        return None
    text = event.get("text") or ""
    bot_user_id = context.bot_user_id
    return IncomingMessage(
        team_id=context.team_id or event.get("team") or "",
        channel_id=str(channel),
        user_id=user,
        text=text if isinstance(text, str) else "",
        ts=str(ts),
        thread_ts=event.get("thread_ts"),
        is_dm=event.get("channel_type") == "im",
        mentions_bot=mentions(text, bot_user_id),
        bot_user_id=bot_user_id,
        files=parse_files(event.get("files")),
    )


def mentions(text: Any, user_id: str | None) -> bool:
    """Whether `text` mentions `user_id` (`<@U123>` or `<@U123|name>`, not `<@U1234>`)."""
    if not user_id or not isinstance(text, str):
        return False
    return re.search(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>", text) is not None


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
