"""Races around `BudgetGate.admit`, played out one step at a time on the real database.

Turns are rows as the pipeline leaves them (claimed, leased to an owner); what a turn spent
is recorded as the service records it (the turn finished and its response counted in one
transaction). A price of $0.001 per completion token makes an answer of 100 tokens $0.10.
"""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.gate import BudgetGate
from db import budgets, queries, retention, turns
from db.models import Message, Turn, utcnow
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
            default_model="gpt-4o-mini",
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
            outcome: turns.Ending = "answered" if status == "ok" else "refused"
            assert turns.finish(
                session, turn_id=turn_id, owner=owner, outcome=outcome, now=utcnow()
            )
        row = response(member=member, completion=completion, status=status)
        user_id, _ = queries.ensure_user(session, TEAM, member)
        member = row.pop("slack_user_id")
        queries.add_response(
            session, queries.ResponseRecord(user_id=user_id, **row), slack_user_id=member
        )


def spent(engine: Engine) -> Decimal:
    """What the workspace spent, from `responses`."""
    with engine.connect() as connection:
        total = connection.scalar(text("SELECT COALESCE(SUM(cost_usd), 0) FROM responses"))
    return Decimal(str(total)).quantize(Decimal("0.00000001"))  # SQLite sums in floats


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


# --- reservations of turns that stop running -----------------------------------------------
def test_a_message_deleted_while_answered_still_holds_its_share(
    sessions: sessionmaker[Session], gate: BudgetGate, engine: Engine
) -> None:
    """Deleting the question does not stop the answer, nor its cost (it is recorded unlinked)."""
    set_limit(sessions, "workspace", "", "1")
    for _ in range(9):
        record(sessions, None)  # $0.90 spent: one more answer may pass the limit, no more
    admitted = 0
    for _ in range(3):
        turn = claimed_turn(sessions)
        if not admit(gate, turn):
            break
        admitted += 1
        with sessions.begin() as session:  # its author deletes it while the model writes
            ts = session.scalar(select(Message.slack_ts).join(Turn).where(Turn.id == turn))
            assert ts is not None
            retention.delete_message(session, team_id=TEAM, channel_id="C1", thread_ts=None, ts=ts)
    for _ in range(admitted):  # the answers end, each recorded without its message
        record(sessions, None)
    assert admitted == 1, f"{admitted} answers admitted at $0.90 of $1: {spent(engine)} spent"


def test_a_turn_given_back_or_finished_holds_nothing_and_its_successor_holds_once(
    sessions: sessionmaker[Session], gate: BudgetGate
) -> None:
    set_limit(sessions, "workspace", "", "1")
    for _ in range(7):
        record(sessions, None)  # $0.70 spent: room for three answers at once
    given_back, other = claimed_turn(sessions), claimed_turn(sessions)
    assert admit(gate, given_back) and admit(gate, other)
    with sessions.begin() as session:  # a deploy stops this process: the turn is queued again
        assert turns.give_back(session, owner="A", ids=[given_back], refund=True) == [given_back]
    # Queued, its reservation is not counted: $0.70 + 0.10 held + 0.10 leaves room.
    third = claimed_turn(sessions)
    assert admit(gate, third)
    # Another process claims it again: it is admitted against the others alone, not against
    # the reservation of its own first attempt ($0.70 + 0.20 held + 0.10 = $1.00).
    with sessions.begin() as session:
        now = utcnow()
        [again] = turns.claim(
            session, owner="B", now=now, until=now + timedelta(minutes=5), limit=1
        )
    assert again.id == given_back
    assert admit(gate, given_back, owner="B")
    # Three running: nothing more fits. Once one finishes, its reservation is spent instead.
    assert not admit(gate, claimed_turn(sessions))
    record(sessions, other)
    assert not admit(gate, claimed_turn(sessions))  # $0.80 + 0.20 held + 0.10 > $1
    record(sessions, third)
    record(sessions, given_back, owner="B")
    assert not admit(gate, claimed_turn(sessions))  # $1.00 spent: reached


def test_a_crashed_turn_holds_its_share_until_it_is_taken_over(
    sessions: sessionmaker[Session], gate: BudgetGate, engine: Engine
) -> None:
    """Its lease ran out, but its process may only be stalled, and could still record it."""
    set_limit(sessions, "workspace", "", "1")
    for _ in range(9):
        record(sessions, None)  # $0.90
    crashed = claimed_turn(sessions)
    assert admit(gate, crashed)
    with sessions.begin() as session:
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(Turn).where(Turn.id == crashed).values(lease_until=past))
    assert not admit(gate, claimed_turn(sessions))  # $0.90 + 0.10 held + 0.10 > $1
    with sessions.begin() as session:  # taken over: answered again, from the start
        now, until = utcnow(), utcnow() + timedelta(minutes=5)
        [again] = turns.claim(session, owner="B", now=now, until=until, limit=1)
    assert again.id == crashed
    assert admit(gate, crashed, owner="B")  # alone again: its own first hold is not counted
    record(sessions, crashed, owner="B")
    assert spent(engine) == Decimal("1.00")


# --- leases lost meanwhile -----------------------------------------------------------------
def test_a_turn_taken_over_before_it_is_checked_is_lost_not_refused(
    sessions: sessionmaker[Session], gate: BudgetGate
) -> None:
    """A refusal from a process that no longer holds the turn would be posted beside the
    answer (or refusal) of the process that does."""
    set_limit(sessions, "workspace", "", "1")
    for _ in range(10):
        record(sessions, None)  # the limit is reached
    turn = claimed_turn(sessions, owner="A")
    with sessions.begin() as session:  # A stalled past its lease; B took the turn over
        session.execute(update(Turn).where(Turn.id == turn).values(lease_owner="B"))
    admission = gate.admit(
        turn_id=turn, owner="A", team_id=TEAM, channel_id="C1", member="U1",
        prompt_tokens=10, price=price,
    )  # fmt: skip
    assert admission.lost and not admission.admitted


# --- PostgreSQL: the check and the record, in two transactions at once ---------------------
@pytest.fixture
def postgres_only(db_backend: str) -> None:
    """Skip on SQLite, whose one writer at a time leaves no such race."""
    if db_backend != "postgresql":
        pytest.skip("row locks and snapshots of concurrent transactions: PostgreSQL")


def test_a_turn_recorded_during_a_check_is_counted_once_and_neither_waits(
    postgres_only: None, sessions: sessionmaker[Session], gate: BudgetGate, engine: Engine
) -> None:
    """The record holds the totals' rows locked while the check reads them: the check must
    not wait for it, nor see the turn both held and spent, nor in neither."""
    set_limit(sessions, "workspace", "", "1")
    for _ in range(8):
        record(sessions, None)  # $0.80
    first = claimed_turn(sessions)
    assert admit(gate, first)

    recording = sessions()
    with recording.begin():
        assert turns.finish(recording, turn_id=first, owner="A", outcome="answered", now=utcnow())
        user_id, _ = queries.ensure_user(recording, TEAM, "U1")
        row = response(member="U1", completion=100)
        member = row.pop("slack_user_id")
        queries.add_response(
            recording, queries.ResponseRecord(user_id=user_id, **row), slack_user_id=member
        )
        # Uncommitted: the first is still running, holding $0.10, to everyone else.
        second = claimed_turn(sessions)
        checked: list[bool] = []
        checker = threading.Thread(target=lambda: checked.append(admit(gate, second)))
        checker.start()
        checker.join(timeout=10)
        assert checked == [True], "the check waited for the record, or failed"  # $0.80 + 0.10
        third = claimed_turn(sessions)
        assert not admit(gate, third)  # $0.80 + 0.20 held + 0.10 > $1
    recording.close()
    # Committed: the first is spent, no longer held: $0.90 + 0.10 held + 0.10 > $1.
    assert not admit(gate, claimed_turn(sessions))
    record(sessions, second)
    assert spent(engine) == Decimal("1.00")
    assert not admit(gate, claimed_turn(sessions))  # reached


def test_checks_of_one_workspace_wait_for_each_other(
    sessions: sessionmaker[Session], gate: BudgetGate
) -> None:
    """A check that starts while another is between its read and its commit waits for it,
    and then counts what it reserved (SQLite: the write lock; PostgreSQL: the advisory one)."""
    set_limit(sessions, "workspace", "", "1")
    for _ in range(9):
        record(sessions, None)  # $0.90: room for one answer while none other runs
    first, second = claimed_turn(sessions), claimed_turn(sessions)
    checked: list[bool] = []
    checker = threading.Thread(target=lambda: checked.append(admit(gate, second)))
    with sessions.begin() as session:  # the first's check, admitting it
        budgets.lock_team(session, TEAM)
        assert budgets.hold(session, turn_id=first, owner="A", usd=Decimal("0.1"), tokens=110)
        checker.start()
        checker.join(timeout=0.5)
        assert checker.is_alive(), "the second check did not wait for the first"
    checker.join(timeout=10)
    assert checked == [False]  # $0.90 + 0.10 held + 0.10 > $1
