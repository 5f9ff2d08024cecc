"""The running totals: what each response adds, and what a rebuild from `responses` makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from bot.shell import migrations
from db import totals
from db.dialects import rowcount
from db.engine import make_engine
from db.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    Response,
    UsageDaily,
    UsageMonthly,
    User,
)
from db.usage_models import UsageDailyScope
from tests.accounting import record_response
from tests.bot.usage.accounting import assert_totals_match_responses

# Both sides of bucket bounds, the first bucket's zero (and a clock that went back), and the
# open last bucket.
LATENCIES = [-1, 0, 49, 50, 61, 62, 999, 1000, 20_680, 587_746, 587_747, 10**7]
# Across a day's and a month's end, in UTC.
MOMENTS = [
    datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 13, 30, tzinfo=UTC),
    datetime(2026, 12, 3, 8, tzinfo=UTC),
]


def recorded_mix(sessions: sessionmaker[Session]) -> None:
    """Responses of every kind the totals tell apart, recorded as the bot records them."""
    with sessions.begin() as session:
        ada = User(team_id="T1", slack_user_id="UADA")
        bob = User(team_id="T1", slack_user_id="UBOB")
        eve = User(team_id="T2", slack_user_id="UADA")  # the same member id, elsewhere
        session.add_all([ada, bob, eve])
        session.flush()
        people = [ada.id, bob.id, None, eve.id]  # None: no member (a deleted one)
        for number in range(48):
            user_id = people[number % 4]
            record_response(
                session,
                team_id="T2" if user_id == eve.id else "T1",
                user_id=user_id,
                channel_id=(None, "C1", "C2")[number % 3],
                model_used=("gpt-4o", "llama-local")[number % 2],
                tokens_prompt=100 + number,
                tokens_completion=10 * number,
                tokens_total=100 + 11 * number,
                # llama-local has no price; one gpt-4o answer costs nothing at all.
                cost_usd=None
                if number % 2
                else Decimal(0)
                if number == 4
                else Decimal(number) / 10**6 + Decimal("0.00000001"),
                completion_time_ms=LATENCIES[number % len(LATENCIES)],
                status="error" if number % 5 == 2 else "ok",
                created_at=MOMENTS[number % len(MOMENTS)] + timedelta(seconds=number // 8),
            )


def snapshot(sessions: sessionmaker[Session]) -> dict[str, set[tuple[Any, ...]]]:
    """Every totals row, as plain tuples."""
    with sessions() as session:
        return {
            table.__tablename__: {
                tuple(row) for row in session.execute(select(*table.__table__.columns))
            }
            for table in (UsageDaily, UsageMonthly, UsageDailyScope)
        }


def test_a_rebuild_makes_the_totals_the_responses_made(sessions: sessionmaker[Session]) -> None:
    recorded_mix(sessions)
    counted = snapshot(sessions)
    with sessions.begin() as session:
        written = totals.rebuild(session)
    assert snapshot(sessions) == counted
    assert written == (len(counted["usage_daily"]), len(counted["usage_monthly"]))
    with sessions() as session:
        daily = session.scalars(select(UsageDaily)).all()
    assert sum(row.requests for row in daily) == 48
    assert {row.day.isoformat() for row in daily} == {
        "2026-10-31",
        "2026-11-01",
        "2026-12-03",
    }
    assert {row.user_id for row in daily} >= {0} and {row.channel_id for row in daily} >= {""}
    assert sum(row.unpriced for row in daily) == 24 and sum(row.errors for row in daily) > 0
    # Every bucket the latencies fall in, the first and the open last one among them.
    filled = {name for row in daily for name in LATENCY_COLUMNS if getattr(row, name)}
    assert {LATENCY_COLUMNS[0], LATENCY_COLUMNS[-1]} <= filled
    assert len(filled) == len({totals.latency_bucket(ms) for ms in LATENCIES})
    assert LATENCY_BOUNDS_MS[-1] == 587_747


def test_a_rebuild_keeps_the_months_already_notified(sessions: sessionmaker[Session]) -> None:
    recorded_mix(sessions)
    noticed = (
        UsageMonthly.team_id == "T1",
        UsageMonthly.scope.in_(("workspace", "user")),
        UsageMonthly.month == datetime(2026, 11, 1).date(),
    )
    with sessions.begin() as session:
        marked = session.execute(update(UsageMonthly).where(*noticed).values(notified=True))
        assert rowcount(marked) == 3  # the workspace, Ada and Bob
        # A total gone wrong, which the rebuild is there to mend.
        session.execute(update(UsageMonthly).where(*noticed).values(requests=999))
    with sessions.begin() as session:
        totals.rebuild(session)
    with sessions() as session:
        months = session.scalars(select(UsageMonthly)).all()
    assert {
        (m.team_id, m.month.isoformat(), m.scope, m.scope_id) for m in months if m.notified
    } == {
        ("T1", "2026-11-01", "workspace", ""),
        ("T1", "2026-11-01", "user", "UADA"),
        ("T1", "2026-11-01", "user", "UBOB"),
    }
    assert 999 not in {m.requests for m in months}


def test_the_totals_and_the_reports_read_from_them_equal_the_rows(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Per scope too, and what every kind of report reads from them: whole days (a workspace's,
    every workspace's, one model's) and a first day cut at noon, each against the rows."""
    recorded_mix(sessions)
    assert_totals_match_responses(engine)


def test_the_upgrade_fills_the_totals_per_scope_from_the_daily_ones(empty_db_url: str) -> None:
    """An installation with history reports the same figures right after the upgrade."""
    config = migrations.alembic_config(empty_db_url)
    command.upgrade(config, "0007")
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        user_id = connection.execute(
            insert(User).values(team_id="T1", slack_user_id="UADA").returning(User.id)
        ).scalar_one()
        connection.execute(
            insert(Response),
            [
                {
                    "team_id": ("T1", "T2")[number % 2],
                    "user_id": (user_id, None)[number % 3 == 0],
                    "channel_id": (None, "C1", "C2")[number % 3],
                    "model_used": ("gpt-4o", "llama-local")[number % 2],
                    "tokens_prompt": number,
                    "tokens_total": 2 * number,
                    "cost_usd": None if number % 2 else Decimal(number) / 10**6,
                    "completion_time_ms": LATENCIES[number % len(LATENCIES)],
                    "status": "error" if number % 5 == 2 else "ok",
                    "created_at": MOMENTS[number % len(MOMENTS)],
                }
                for number in range(24)
            ],
        )
        totals.rebuild(connection, daily_scopes=False)  # the totals as 0006 left them
    command.upgrade(config, "head")
    assert_totals_match_responses(engine)
    engine.dispose()
