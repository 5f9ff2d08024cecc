"""A turn claimed as its message was stored, whose store raised after it landed, is answered.

The acknowledgement's deadline can pass while the database answers COMMIT: the message and
its turn, claimed for this process, are stored, but the process believes the store failed and
no worker runs the turn; Slack's redelivery then finds the message already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.service import IncomingMessage
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
    # Stored and claimed for this process, as `accept` does, but never handed to a worker.
    accepted = app.runtime.services.conversations.accept(
        message, claim_for=(pipeline.owner, utcnow() + timedelta(seconds=1.5))
    )
    assert accepted.status == "claimed"
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
