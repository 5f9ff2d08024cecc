"""Command receipts on a real database: first delivery wins, old receipts go."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.deliveries.receipts import CommandReceipts
from db.models import CommandReceipt, utcnow


def test_the_first_delivery_of_a_trigger_id_wins_across_processes(
    sessions: sessionmaker[Session],
) -> None:
    one, other = CommandReceipts(sessions), CommandReceipts(sessions)
    assert one.first_delivery(trigger_id="t1", team_id="T1")
    assert not one.first_delivery(trigger_id="t1", team_id="T1")
    assert not other.first_delivery(trigger_id="t1", team_id="T1")
    assert other.first_delivery(trigger_id="t2", team_id="T1")


def test_receipts_older_than_an_hour_are_pruned(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for trigger_id, age in (("old", timedelta(hours=2)), ("recent", timedelta(minutes=5))):
            session.add(
                CommandReceipt(trigger_id=trigger_id, team_id="T1", created_at=utcnow() - age)
            )
    CommandReceipts(sessions).first_delivery(trigger_id="new", team_id="T1")
    with sessions() as session:
        left = set(session.scalars(select(CommandReceipt.trigger_id)))
    assert left == {"recent", "new"}
