"""Thumbs up or down under an answer: find the answer, store the person's latest vote."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from db import feedback_queries

RATINGS = ("up", "down")


@dataclass(frozen=True)
class Click:
    """A click on an answer's feedback buttons, as the service needs it."""

    # Where the answer is: the workspace it was given in, its channel and Slack message ts.
    team_id: str
    channel_id: str
    message_ts: str
    # Who clicked: their own workspace (another one, in a shared channel) and Slack user id.
    voter_team_id: str
    voter_user_id: str
    rating: str


@dataclass(frozen=True)
class Voted:
    """The vote is stored; `rating` is the one that counts now."""

    rating: str


@dataclass(frozen=True)
class NotVoted:
    """Nothing stored; `reason` says why in words for the person who clicked."""

    reason: str


class FeedbackService:
    """Records votes on answers, one per person per answer; the latest click counts."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def vote(self, click: Click) -> Voted | NotVoted:
        """Store `click` against the answer it was made under."""
        if click.rating not in RATINGS:
            return NotVoted("That button is not one I know; nothing was recorded.")
        with self._sessions.begin() as session:
            response_id = feedback_queries.answer_at(
                session,
                team_id=click.team_id,
                channel_id=click.channel_id,
                message_ts=click.message_ts,
            )
            if response_id is None:
                return NotVoted(
                    "I can't find that answer any more, so your rating was not recorded."
                )
            feedback_queries.set_vote(
                session,
                response_id=response_id,
                team_id=click.voter_team_id,
                slack_user_id=click.voter_user_id,
                rating=click.rating,
            )
        return Voted(click.rating)
