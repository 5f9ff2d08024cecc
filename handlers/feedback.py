"""Clicks on an answer's thumbs up / down: stored as that person's vote, thanked privately."""

from __future__ import annotations

import logging
from typing import Any, TypeGuard

from slack_bolt import App, Respond

from bot.feedback.service import Click, Voted
from bot.shell.services import Services
from bot.slack.feedback_blocks import FEEDBACK_ACTION, acknowledgement, answer_ts
from handlers.lazy import after_ack

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Register the feedback buttons' action."""
    feedback = services.feedback

    def handle_answer_feedback(
        body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        click = click_of(body, action)
        if click is None:
            # Not a click Slack would send under one of our answers: nothing to tell anyone.
            log.info("ignored a feedback click without its answer or voter")
            return
        outcome = feedback.vote(click)
        text = acknowledgement(outcome.rating) if isinstance(outcome, Voted) else outcome.reason
        if body.get("response_url"):
            respond(text=text, response_type="ephemeral", replace_original=False)

    after_ack(app.action(FEEDBACK_ACTION), handle_answer_feedback)


def click_of(body: dict[str, Any], action: dict[str, Any]) -> Click | None:
    """The click in a block_actions payload; None when a field it needs is missing."""
    container = body.get("container") or {}
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel_id = container.get("channel_id") or (body.get("channel") or {}).get("id")
    message_ts = container.get("message_ts")
    # The answer belongs to the workspace the click came from; the vote to the voter's own.
    team_id = team.get("id") or user.get("team_id")
    voter_team_id = user.get("team_id") or team_id
    voter_user_id, rating = user.get("id"), action.get("value")
    if not (
        _text(channel_id)
        and _text(message_ts)
        and _text(team_id)
        and _text(voter_team_id)
        and _text(voter_user_id)
        and _text(rating)
    ):
        return None
    return Click(
        team_id=team_id,
        channel_id=channel_id,
        message_ts=answer_ts(action.get("block_id"), message_ts),
        voter_team_id=voter_team_id,
        voter_user_id=voter_user_id,
        rating=rating,
    )


def _text(value: object) -> TypeGuard[str]:
    """Whether a payload field is a string with something in it."""
    return isinstance(value, str) and bool(value)
