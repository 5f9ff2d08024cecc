"""What the Home tab shows one person: their DM model and why, the choices, usage this month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from sqlalchemy.orm import Session, sessionmaker

from bot.members.directory import UserDirectory
from bot.model_choice.chain import CatalogueUnavailable, Choice, ModelChooser
from bot.usage.reports import UsageReport, UsageService
from bot.usage.request import Period
from db import feedback_queries


@dataclass(frozen=True)
class Home:
    """Everything on one person's Home tab."""

    slack_user_id: str
    is_admin: bool
    dm_model: Choice
    # Name or alias -> model id, as /model offers them; empty when the list is unavailable.
    choices: dict[str, str]
    catalogue_error: str | None
    period: Period
    mine: UsageReport
    # The votes the person cast on answers in the period: {"up": n, "down": m}.
    votes: dict[str, int] = field(default_factory=dict)
    # The whole workspace, for admins only.
    workspace: UsageReport | None = None


class HomeService:
    """Gathers a person's Home tab from the model chain, the catalogue and the usage reports."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        users: UserDirectory,
        models: ModelChooser,
        usage: UsageService,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._models = models
        self._usage = usage

    def home_for(self, team_id: str, slack_user_id: str, *, now: datetime | None = None) -> Home:
        """The Home tab of `slack_user_id` in `team_id`, with usage since the month began (UTC)."""
        now = now or datetime.now(UTC)
        period = this_month(now)
        # The member first: it may ask Slack, which must not happen inside a transaction.
        member = self._users.member(team_id, slack_user_id)
        choices: dict[str, str] = {}
        error = None
        try:
            choices = self._models.catalogue.entries()
        except CatalogueUnavailable as exc:
            error = str(exc)
        with self._sessions() as session:
            dm_model = self._models.default_for(
                session, team_id=team_id, channel_id="", slack_user_id=slack_user_id, is_dm=True
            )
            votes = feedback_queries.votes_cast(
                session, team_id=team_id, slack_user_id=slack_user_id, since=period.start
            )
        return Home(
            slack_user_id=slack_user_id,
            is_admin=member.is_admin,
            dm_model=dm_model,
            choices=choices,
            catalogue_error=error,
            period=period,
            mine=self._usage.summary(period, team_id=team_id, user_id=member.id),
            votes=votes,
            workspace=self._usage.summary(period, team_id=team_id) if member.is_admin else None,
        )


def this_month(now: datetime) -> Period:
    """From the first of the current UTC month to `now`."""
    today = now.astimezone(UTC).date()
    start = datetime.combine(today.replace(day=1), time(), UTC)
    return Period(start, now, "this month", ends_now=True)
