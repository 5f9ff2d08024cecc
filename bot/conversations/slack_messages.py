"""The one reading of a Slack message dict, for events and `conversations.replies` pages alike.

Slack gives a message the same shape in a `message` or `app_mention` event and in a page of
`conversations.replies` (which lacks `channel` and `channel_type`: the caller knows them).
Everything the bot takes from a message is read here, so that what arrives as an event and
what is read from a thread later are stored the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from bot.conversations.turn import Author, IncomingMessage
from bot.files.kinds import parse_files

log = logging.getLogger(__name__)

# Messages people write: plain, thread replies also sent to the channel, with files attached.
PERSON_SUBTYPES = (None, "thread_broadcast", "file_share")
# Other apps' messages (legacy integrations post as `bot_message`): context, never answered.
APP_SUBTYPES = (*PERSON_SUBTYPES, "bot_message")

_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
# @here, @channel, @everyone and user groups: addressed to people.
_GROUP_MENTION = re.compile(r"<!(?:here|channel|everyone|subteam\^[A-Z0-9]+)(?:\|[^>]*)?>")


def mentions(text: Any, user_id: str | None) -> bool:
    """Whether `text` mentions `user_id` (`<@U123>` or `<@U123|name>`, not `<@U1234>`)."""
    if not user_id or not isinstance(text, str):
        return False
    return any(found == user_id for found in _USER_MENTION.findall(text))


def mentions_others(text: str, bot_user_id: str | None) -> bool:
    """Whether `text` mentions anyone but the bot: a person, a user group, @here, @channel."""
    if any(found != bot_user_id for found in _USER_MENTION.findall(text)):
        return True
    return _GROUP_MENTION.search(text) is not None


def parse_message(
    raw: Mapping[str, Any],
    *,
    team_id: str,
    bot_user_id: str | None,
    bot_id: str | None,
    channel_id: str | None = None,
    is_dm: bool | None = None,
) -> IncomingMessage | None:
    """The bot's view of one Slack message; None when it is nothing to keep or answer.

    `channel_id` and `is_dm` are read from the message (events) unless given (a page of
    `conversations.replies`, whose messages lack them). Joins, tombstones of deleted messages
    and other system messages, and messages without a ts or author, give None.
    """
    channel = channel_id or raw.get("channel")
    ts = raw.get("ts")
    subtype = raw.get("subtype")
    user = raw.get("user")
    app = raw.get("bot_id")
    if not (isinstance(channel, str) and channel and isinstance(ts, str) and ts):
        log.debug("ignoring a %s without channel or ts", raw.get("type"))
        return None
    user = user if isinstance(user, str) and user else None
    app = app if isinstance(app, str) and app else None
    if app is not None or subtype == "bot_message":
        # The bot's own messages carry its bot id, and its bot user as `user`.
        ours = (bot_id is not None and app == bot_id) or (user is not None and user == bot_user_id)
        author = Author.SELF if ours else Author.APP
        author_id = user or app
        if subtype not in APP_SUBTYPES or author_id is None:
            return None
    elif user == bot_user_id and user is not None:
        author, author_id = Author.SELF, user
    else:
        author, author_id = Author.PERSON, user
        if subtype not in PERSON_SUBTYPES or author_id is None:
            # Workflow, system and some bot messages come without a user.
            log.debug("ignoring a %s of subtype %s", raw.get("type"), subtype)
            return None
    text = raw.get("text")
    text = text if isinstance(text, str) else ""
    thread_ts = raw.get("thread_ts")
    if is_dm is None:
        is_dm = raw.get("channel_type") == "im"
    return IncomingMessage(
        team_id=team_id or str(raw.get("team") or ""),
        channel_id=channel,
        user_id=author_id,
        text=text,
        ts=ts,
        thread_ts=thread_ts if isinstance(thread_ts, str) and thread_ts else None,
        is_dm=is_dm,
        mentions_bot=mentions(text, bot_user_id),
        bot_user_id=bot_user_id,
        mentions_others=mentions_others(text, bot_user_id),
        author=author,
        author_name=_app_name(raw) if author is Author.APP else None,
        files=parse_files(raw.get("files")),
    )


def _app_name(raw: Mapping[str, Any]) -> str | None:
    """The name an app's message shows: its `username` override, else its bot profile's."""
    profile = raw.get("bot_profile")
    for name in (raw.get("username"), profile.get("name") if isinstance(profile, dict) else None):
        if isinstance(name, str) and name.strip():
            return name.strip()[:255]
    return None
