"""What /model, /usage and the /model menu's buttons answer: one shape, sent one way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt import Respond


@dataclass(frozen=True)
class Reply:
    """A command's answer: its text, optional Block Kit blocks, and who sees it."""

    text: str
    blocks: list[dict[str, Any]] | None = None
    # Everyone in the conversation (`in_channel`) rather than only the person who asked.
    public: bool = False
    # For a button: take the message's place (True) or leave it and answer below (False).
    replace_original: bool | None = None


def problem(message: object) -> Reply:
    """A request that cannot be done, told to the person who asked."""
    return Reply(f":no_entry: {message}")


def send(respond: Respond, reply: Reply) -> None:
    """Answer through the command's `response_url`."""
    respond(
        text=reply.text,
        blocks=reply.blocks,
        response_type="in_channel" if reply.public else "ephemeral",
        replace_original=reply.replace_original,
    )
