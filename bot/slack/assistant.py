"""The assistant.threads calls around a reply: the thread's status and its title, best effort."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.stops import error_code

log = logging.getLogger(__name__)

# Shown in turn while the model thinks; Slack clears the status when the reply arrives.
LOADING_MESSAGES = ["Reading the thread…", "Thinking it over…", "Writing an answer…"]
# Slack's limit for a thread title is not documented; Slack shows about this much.
TITLE_LIMIT = 60


def set_status(client: WebClient, channel: str, thread_ts: str, status: str | None) -> None:
    """Show `status` (else "is thinking…" with loading messages) in the thread."""
    try:
        client.assistant_threads_setStatus(
            channel_id=channel,
            thread_ts=thread_ts,
            status=status or "is thinking…",
            loading_messages=None if status else LOADING_MESSAGES,
        )
    except SlackApiError as exc:
        # Apps without the assistant feature cannot set a status; the reply still comes.
        log.debug("no thread status: %s", error_code(exc))
    except Exception:  # a cosmetic call on a side thread must never take anything down
        log.warning("setting the thread status failed", exc_info=True)


def set_title(client: WebClient, channel: str, thread_ts: str, text: str) -> None:
    """Name the conversation in the Messages tab after `text`."""
    title = " ".join(text.split())
    if len(title) > TITLE_LIMIT:
        title = title[: TITLE_LIMIT - 1].rsplit(" ", 1)[0] + "…"
    try:
        client.assistant_threads_setTitle(
            channel_id=channel, thread_ts=thread_ts, title=title or "Question"
        )
    except (SlackApiError, OSError) as exc:
        log.debug("no thread title: %s", error_code(exc))
