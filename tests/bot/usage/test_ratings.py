"""Ratings in usage reports: answers rated, share positive and cost per positive answer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.members.directory import Profile, UserDirectory
from bot.usage.reports import UsageLine, UsageReport, UsageService, report_csv
from bot.usage.request import last_days
from db.models import Feedback, Response, User
from db.usage_lookups import Ratings
from tests.accounting import record_response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TEAM, OTHER_TEAM = "T1", "T2"


class Profiles:
    """Everyone is an admin: these tests are about figures, not permissions."""

    def fetch(self, team_id: str, slack_user_id: str) -> Profile:
        return Profile(username=slack_user_id.lower(), full_name=slack_user_id, is_admin=True)


# Each answer: (team, model, cost, days ago, votes as (voter team, voter, rating)).
ANSWERS = [
    (TEAM, "gpt-4o", Decimal("1.00"), 1, [(TEAM, "U1", "up")]),
    (TEAM, "gpt-4o", Decimal("1.00"), 2, [(TEAM, "U1", "up"), (TEAM, "U2", "down")]),  # a tie
    (TEAM, "gpt-4o", Decimal("1.00"), 3, [(TEAM, "U1", "down")]),
    (TEAM, "gpt-4o", Decimal("1.00"), 4, []),
    # Two thumbs up, one down from a member of another workspace in a shared channel.
    (TEAM, "llama", None, 5, [(TEAM, "U1", "up"), (TEAM, "U2", "up"), (OTHER_TEAM, "U1", "down")]),
    (TEAM, "gpt-4o", Decimal("1.00"), 60, [(TEAM, "U1", "up")]),  # before the period
    (OTHER_TEAM, "gpt-4o", Decimal("9.00"), 1, [(OTHER_TEAM, "U1", "up")]),
]


@pytest.fixture
def rated(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """ANSWERS and their votes, every answer asked by U1 of its workspace."""
    with sessions.begin() as session:
        askers = {
            team: User(team_id=team, slack_user_id="U1", username="u1")
            for team in (TEAM, OTHER_TEAM)
        }
        session.add_all(askers.values())
        session.flush()
        for team, model, cost, days, votes in ANSWERS:
            response_id = record_response(
                session,
                team_id=team,
                user_id=askers[team].id,
                model_used=model,
                tokens_total=100,
                cost_usd=cost,
                created_at=NOW - timedelta(days=days, minutes=1),
            )
            for voter_team, voter, rating in votes:
                session.add(
                    Feedback(
                        response_id=response_id,
                        team_id=voter_team,
                        slack_user_id=voter,
                        rating=rating,
                    )
                )
    return sessions


def ratings_of(line: UsageLine) -> Ratings:
    """The line's ratings, which the total and the model lines always carry."""
    assert line.ratings is not None, line.key
    return line.ratings


def report(sessions: sessionmaker[Session], team: str | None = TEAM) -> UsageReport:
    service = UsageService(sessions, UserDirectory(sessions, Profiles()))
    return service.report(last_days(30, now=NOW), team_id=team)


def test_ratings_by_model(rated: sessionmaker[Session]) -> None:
    models = {line.key: line for line in report(rated).models}
    gpt, llama = models["gpt-4o"], models["llama"]
    assert (ratings_of(gpt).rated, ratings_of(gpt).positive) == (3, 1)  # the tie is not positive
    assert gpt.share_positive == pytest.approx(1 / 3)
    assert gpt.cost_per_positive == Decimal("4.00")  # all four answers' cost, one good one
    assert (ratings_of(llama).rated, ratings_of(llama).positive) == (1, 1)
    assert llama.share_positive == 1.0
    assert llama.cost_per_positive is None  # unpriced, not free


def test_totals_equal_the_stored_rows(rated: sessionmaker[Session]) -> None:
    total = report(rated).total
    start = last_days(30, now=NOW).start
    with rated() as session:
        answers_rated = session.scalar(
            select(func.count(func.distinct(Feedback.response_id)))
            .join(Response, Feedback.response_id == Response.id)
            .where(Response.team_id == TEAM, Response.created_at >= start)
        )
        votes: dict[int, list[str]] = {}
        for response_id, rating in session.execute(
            select(Feedback.response_id, Feedback.rating)
            .join(Response, Feedback.response_id == Response.id)
            .where(Response.team_id == TEAM, Response.created_at >= start)
        ):
            votes.setdefault(response_id, []).append(rating)
    positive = sum(r.count("up") > r.count("down") for r in votes.values())
    assert (
        (ratings_of(total).rated, ratings_of(total).positive) == (answers_rated, positive) == (4, 2)
    )
    assert sum(ratings_of(line).rated for line in report(rated).models) == answers_rated


def test_another_workspaces_answers_are_not_counted(rated: sessionmaker[Session]) -> None:
    assert (ratings_of(report(rated, OTHER_TEAM).total).rated) == 1
    assert ratings_of(report(rated, None).total).rated == 5  # operators: every workspace


def test_a_members_own_report_counts_their_answers(rated: sessionmaker[Session]) -> None:
    service = UsageService(rated, UserDirectory(rated, Profiles()))
    own = service.report_for(TEAM, "U1", text="me", now=NOW)
    assert ratings_of(own.total).rated == 4


def test_csv_carries_ratings_for_the_total_and_models_only(rated: sessionmaker[Session]) -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(report(rated)))))
    total = rows[0]
    assert (total["answers_rated"], total["answers_positive"]) == ("4", "2")
    assert total["share_positive"] == "0.5000"
    assert Decimal(total["cost_per_positive_usd"]) == Decimal("2")
    gpt = next(row for row in rows if row["section"] == "model" and row["key"] == "gpt-4o")
    assert (gpt["answers_rated"], gpt["share_positive"]) == ("3", "0.3333")
    day = next(row for row in rows if row["section"] == "day")
    assert day["answers_rated"] == day["cost_per_positive_usd"] == ""


def test_no_ratings_are_zero_not_errors(sessions: sessionmaker[Session]) -> None:
    line = report(sessions).total
    assert (ratings_of(line).rated, line.share_positive, line.cost_per_positive) == (0, None, None)
