"""The running totals equal the sums of `responses` after every kind of turn, through the real app.

Every way a turn can end is played out on one database: answered, failed at the model, cut
off midway, unpriced, refused by a channel's and by a member's limit, expired, given up
after its attempts, deleted while it was answered, and the turns that record nothing. Then
the totals are compared with `responses` summed in the test, and rebuilt (changing nothing).
The same comparison ends the two-process burst in `test_budget_race.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, func, select, update

from db.engine import make_sessionmaker
from db.models import Response, Turn
from tests.bot.usage.accounting import assert_totals_match_responses
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.harness import TEAM, SlackAppHarness


def deleted(app: SlackAppHarness, ts: str) -> dict:
    """The `message_deleted` event Slack sends when the top-level message `ts` is deleted."""
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": "C0001",
        "channel_type": "channel",
        "ts": app.next_ts(),
        "deleted_ts": ts,
        "event_ts": app.next_ts(),
        "previous_message": {"type": "message", "user": "U0001", "text": "…", "ts": ts},
    }


def outcomes(engine: Engine) -> Counter[str | None]:
    """How many turns ended each way."""
    with engine.connect() as connection:
        return Counter(connection.scalars(select(Turn.outcome)))


def statuses(engine: Engine) -> Counter[tuple[str, bool, bool]]:
    """(status, priced, linked to a message) of each response."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Response.status, Response.cost_usd, Response.conversation_id)
        )
        return Counter((status, cost is not None, link is not None) for status, cost, link in rows)


def test_totals_equal_the_responses_after_every_kind_of_turn(
    make_app: Callable[..., SlackAppHarness],
    slack: FakeSlackAPI,
    model: FakeOpenAI,
    engine: Engine,
) -> None:
    app = make_app(turn_poll_seconds=0.1)
    budgets = app.services.budgets

    # Answered: at the top level, in a thread, in a DM, by a model without a price.
    root = app.mention("hello", user="U0001")
    app.wait_idle()
    app.say("and then?", thread_ts=root, user="U0002")
    app.say("a private question", channel="D0001", channel_type="im", user="U0003")
    model.enqueue(FakeReply(text="From a model nobody prices.", model="mystery-model"))
    app.mention("who are you?", channel="C0003", user="U0001")
    app.wait_idle()
    # Failed: the model refuses, or its stream is cut (the text kept, its tokens estimated).
    model.enqueue(FakeReply(status=500))
    app.mention("fail please", user="U0002")
    app.wait_idle()
    model.enqueue(FakeReply(text="The first part arrives, then", chunk_size=5, cut_after=3))
    app.mention("cut please", user="U0002")
    app.wait_idle()

    # Refused by budgets: a channel's (said in the thread) and a member's (said to them only).
    budgets.operator(TEAM, ["set", "channel", "<#C0002>", "10", "tokens"])
    budgets.operator(TEAM, ["set", "user", "<@U0004>", "10", "tokens"])
    app.mention("first in C0002", channel="C0002", user="U0001")  # nothing spent yet: answered
    app.wait_idle()
    app.mention("second in C0002", channel="C0002", user="U0001")
    app.mention("first of U0004", user="U0004")
    app.wait_idle()
    app.mention("second of U0004", user="U0004")
    app.wait_idle()

    # Expired and given up: two follow-ups queued behind a slow answer, one made old, the
    # other given its last attempt already.
    model.enqueue(FakeReply(text="Slowly.", first_token_delay=2.0))  # room for a busy machine
    root = app.mention("slow", user="U0001")
    app.say("too late", thread_ts=root, user="U0001")
    app.say("too often", thread_ts=root, user="U0001")
    # Through the app's session factory: on SQLite its transactions that write take the write
    # lock as they begin, so the app's workers committing meanwhile cannot fail the update.
    with make_sessionmaker(engine).begin() as connection:
        queued = list(connection.scalars(select(Turn.id).where(Turn.state == "queued")))
        assert len(queued) == 2, queued
        stored_at = connection.scalar(select(Turn.created_at).where(Turn.id == queued[0]))
        assert stored_at is not None
        old = stored_at - timedelta(hours=1)  # in Python: SQLite keeps datetimes as text
        connection.execute(update(Turn).where(Turn.id == queued[0]).values(created_at=old))
        connection.execute(update(Turn).where(Turn.id == queued[1]).values(attempts=3))
    app.wait_idle()

    # Deleted while it was answered: accounted, unlinked from any message.
    model.enqueue(FakeReply(text="A slow answer.", first_token_delay=0.6))
    asked = len(model.completions())
    root = app.mention("soon deleted", user="U0001")
    model.wait_for_requests(asked + 1, path="/v1/chat/completions")
    assert app.event(deleted(app, root)).status == 200
    app.wait_idle()

    # No model call, no response: an empty mention, and `model NAME` in a thread.
    app.mention("", user="U0001")
    root = app.mention("hi again", user="U0001")
    app.wait_idle()
    app.say("model gpt-4o", thread_ts=root, user="U0001")
    app.wait_idle()

    # The deleted message's turn ran on, unlinked, and ended answered; each other kind of
    # ending happened too.
    assert outcomes(engine) == {
        "answered": 9,
        "failed": 3,
        "refused": 3,
        "expired": 1,
        "model_set": 1,
    }
    assert statuses(engine) == {
        ("ok", True, True): 8,  # the deleted one's still linked to its conversation
        ("ok", False, True): 1,  # the model nobody prices
        # Cut off; refused twice, expired, given up: $0; and failed before any text: an
        # error that cost nothing, not "unpriced" (its model has a price).
        ("error", True, True): 6,
    }
    with engine.connect() as connection:
        over_budget = connection.scalar(
            select(func.count()).where(Response.error == "not answered: over budget")
        )
    assert over_budget == 2
    assert_totals_match_responses(engine)
