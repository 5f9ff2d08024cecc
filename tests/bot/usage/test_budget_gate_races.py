"""Races around `BudgetGate.admit`, played out one step at a time on the real database.

Turns are rows as the pipeline leaves them (claimed, leased to an owner); what a turn spent
is recorded as the service records it (the turn finished and its response counted in one
transaction). A price of $0.001 per completion token makes an answer of 100 tokens $0.10.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.usage.budgets import BudgetGate
from db import budgets, queries, turns
from db.models import utcnow
from db.totals import month_of

TEAM = "T1"
_ts = itertools.count(1)


def price(prompt_tokens: int, completion_tokens: int) -> Decimal:
    """$0.001 a completion token; prompts are free (see `test_budget_race.py`)."""
    return Decimal(completion_tokens) / 1000


@pytest.fixture
def gate(sessions: sessionmaker[Session]) -> BudgetGate:
    """The gate the service uses, on this test's database."""
    return BudgetGate(sessions)


def set_limit(sessions: sessionmaker[Session], scope: str, scope_id: str, usd: str) -> None:
    """A monthly limit, as `/usage budget set` leaves it."""
    with sessions.begin() as session:
        budgets.set_budget(
            session,
            team_id=TEAM,
            scope=scope,
            scope_id=scope_id,
            limit_usd=Decimal(usd),
            limit_tokens=None,
            set_by=None,
            month=month_of(utcnow().date()),
        )


def claimed_turn(
    sessions: sessionmaker[Session], *, member: str = "U1", owner: str = "A", channel: str = "C1"
) -> int:
    """A message by `member` in a thread of its own, its turn claimed by `owner`; the turn."""
    ts = f"1700000000.{next(_ts):06d}"
    with sessions.begin() as session:
        user_id, _ = queries.ensure_user(session, TEAM, member)
        thread = queries.start_conversation(
            session,
            team_id=TEAM,
            channel_id=channel,
            thread_ts=ts,
            scope="channel",
            scope_id=channel,
            setting_default="gpt-4o-mini",
            user_id=user_id,
            title="question",
        )
        assert thread is not None
        message_id = queries.add_message_once(
            session,
            conversation_id=thread.id,
            user_id=user_id,
            role="user",
            content="question",
            slack_ts=ts,
        )
        assert message_id is not None
        return turns.add_turn(
            session,
            message_id=message_id,
            conversation_id=thread.id,
            owner=owner,
            until=utcnow() + timedelta(minutes=5),
        )


def admit(gate: BudgetGate, turn_id: int, *, member: str = "U1", owner: str = "A") -> bool:
    """Whether the gate lets the turn call the model."""
    admission = gate.admit(
        turn_id=turn_id,
        owner=owner,
        team_id=TEAM,
        channel_id="C1",
        member=member,
        prompt_tokens=10,
        price=price,
    )
    return admission.admitted


def response(*, member: str, completion: int, status: str = "ok") -> dict:
    """A `responses` row as the service writes it, costing `completion` tokens' price."""
    return {
        "team_id": TEAM,
        "channel_id": "C1",
        "model_used": "gpt-4o-mini",
        "tokens_prompt": 10 if completion else 0,
        "tokens_completion": completion,
        "tokens_total": completion + 10 if completion else 0,
        "cost_usd": price(0, completion),
        "status": status,
        "slack_user_id": member,
    }


def record(
    sessions: sessionmaker[Session], turn_id: int | None, *, member: str = "U1",
    completion: int = 100, status: str = "ok", owner: str = "A",
) -> None:  # fmt: skip
    """Record what a turn spent as the service does: its end and its response, at once."""
    with sessions.begin() as session:
        if turn_id is not None:
            outcome = "answered" if status == "ok" else "refused"
            assert turns.finish(
                session, turn_id=turn_id, owner=owner, outcome=outcome, now=utcnow()
            )
        row = response(member=member, completion=completion, status=status)
        user_id, _ = queries.ensure_user(session, TEAM, member)
        queries.add_response(session, user_id=user_id, **row)


def spent(engine: Engine) -> Decimal:
    """What the workspace spent, from `responses`."""
    with engine.connect() as connection:
        total = connection.scalar(text("SELECT COALESCE(SUM(cost_usd), 0) FROM responses"))
    return Decimal(total)


# --- what a turn is expected to cost -------------------------------------------------------
def test_refused_turns_do_not_make_answers_look_cheaper(
    sessions: sessionmaker[Session], gate: BudgetGate, engine: Engine
) -> None:
    """Refusals are counted as requests of no tokens: they must not lower the estimate.

    Five answers of $0.10 and 45 refusals this month: the average request wrote 10 tokens, the
    average answer 100. Guessing $0.01 a turn, a burst was admitted ten at a time.
    """
    set_limit(sessions, "workspace", "", "1")
    for _ in range(5):
        record(sessions, None, member="U1")
    for _ in range(45):
        record(sessions, None, member="U2", completion=0, status="error")

    running = [claimed_turn(sessions) for _ in range(10)]
    admitted = [turn for turn in running if admit(gate, turn)]
    # $0.50 spent: room for five answers at once (the last of them while none other runs).
    assert len(admitted) == 5
    for turn in admitted:
        record(sessions, turn)
    assert spent(engine) <= Decimal("1.10")
