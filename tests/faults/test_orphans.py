"""A turn whose claim landed while this process believed it failed is answered.

A deadline can pass while the database answers the COMMIT of a claim: the turn is leased to
this process, but no worker runs it, and `claim` never takes back a process's own leases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.service import IncomingMessage
from db import turns
from db.models import utcnow
from tests.fakes import FakeSlackAPI
from tests.harness import BOT_USER, TEAM, SlackAppHarness


def test_a_turn_leased_here_that_no_worker_runs_is_answered_once_its_lease_runs_out(
    make_app: Callable[..., SlackAppHarness],
    slack: FakeSlackAPI,
    sessions: sessionmaker[Session],
) -> None:
    app = make_app(turn_lease_seconds=1.5, turn_poll_seconds=0.2)
    pipeline = app.runtime.services.turns
    ts = app.next_ts()
    message = IncomingMessage(
        team_id=TEAM, channel_id="C0001", user_id="U0001", text=f"<@{BOT_USER}> hello",
        ts=ts, mentions_bot=True, bot_user_id=BOT_USER,
    )  # fmt: skip
    # Stored, then claimed for this process as the dispatcher does, but never handed to a
    # worker (if the dispatcher's own claim comes first, the turn is simply answered).
    accepted = app.runtime.services.conversations.accept(message)
    assert accepted.status == "queued"
    with sessions.begin() as session:
        now = utcnow()
        turns.claim(
            session, owner=pipeline.owner, now=now, until=now + timedelta(seconds=1.5), limit=1
        )
    # Slack's redelivery finds it stored: nothing more is queued.
    assert (
        app.event(app.message_event(f"<@{BOT_USER}> hello", ts=ts) | {"type": "app_mention"}).status
        == 200
    )
    deadline = time.monotonic() + 15
    while not any(c.args.get("thread_ts") == ts for c in slack.calls_to("chat.startStream")):
        assert time.monotonic() < deadline, "the turn left leased here was never answered"
        time.sleep(0.1)
    app.wait_idle(timeout=20)
    starts = [c for c in slack.calls_to("chat.startStream") if c.args.get("thread_ts") == ts]
    assert len(starts) == 1
