"""Block Kit for the thumbs up / down under every completed answer."""

from __future__ import annotations

import functools
from typing import Any

from slack_sdk.models.blocks import (
    ContextActionsBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
)

FEEDBACK_ACTION = "answer_feedback"
FEEDBACK_BLOCK = "answer_feedback"


@functools.cache
def feedback_blocks(first_ts: str | None = None) -> list[dict[str, Any]]:
    """The `context_actions` block with `feedback_buttons`, for `chat.stopStream(blocks=…)`.

    An answer longer than one message is stored under its first message's ts: pass it as
    `first_ts` when the buttons go under a later message, so a click finds the answer. Built
    once per `first_ts` (every answer carries them); callers must not change what they get.
    """
    buttons = FeedbackButtonsElement(
        action_id=FEEDBACK_ACTION,
        positive_button=FeedbackButtonObject(
            text="👍", value="up", accessibility_label="Good answer"
        ),
        negative_button=FeedbackButtonObject(
            text="👎", value="down", accessibility_label="Bad answer"
        ),
    )
    block_id = FEEDBACK_BLOCK if first_ts is None else f"{FEEDBACK_BLOCK} {first_ts}"
    return [ContextActionsBlock(block_id=block_id, elements=[buttons]).to_dict()]


def answer_ts(block_id: str | None, message_ts: str) -> str:
    """The ts the answer is stored under: the one the block id names, else the message's."""
    head, _, first_ts = (block_id or "").partition(" ")
    return first_ts if head == FEEDBACK_BLOCK and first_ts else message_ts


def acknowledgement(rating: str) -> str:
    """The short private thanks for a vote."""
    if rating == "up":
        return "Thanks for the 👍, noted. You can change your vote any time."
    return "Thanks for the 👎, noted: it helps choose better models. You can change your vote."
