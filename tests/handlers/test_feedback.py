"""Feedback on answers end to end: signed clicks on the real app, votes in the database."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.feedback_blocks import FEEDBACK_ACTION, feedback_blocks
from db.models import Feedback, Message, Response
from tests.fakes import FakeOpenAI, FakeReply
from tests.harness import TEAM, SlackAppHarness


def answer(app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]) -> str:
    """Mention the bot and let it answer; the Slack ts of the answer."""
    model.enqueue(FakeReply(text="Paris."))
    app.mention("capital of France?")
    app.wait_idle()
    with sessions() as session:
        ts = session.scalars(select(Message.slack_ts).where(Message.role == "assistant")).one()
    assert ts is not None
    return ts


def click(
    app: SlackAppHarness, message_ts: str, value: str = "up", *, user: str = "U0001",
    user_team: str = TEAM, team: str = TEAM, channel: str = "C0001",
    overrides: dict[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """Click a feedback button under message `message_ts`; the response_url answers it led to."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team, "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": user_team},
        "api_app_id": "A0001",
        "token": "unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "channel": {"id": channel, "name": "general"},
        "message": {"type": "message", "ts": message_ts, "blocks": feedback_blocks()},
        "actions": [
            {
                "type": "feedback_buttons",
                "block_id": "answer_feedback",
                "action_id": FEEDBACK_ACTION,
                "value": value,
                "text": {"type": "plain_text", "text": "👍" if value == "up" else "👎"},
                "action_ts": str(time.time()),
            }
        ],
    } | (overrides or {})
    before = len(app.slack.responses)
    assert app.action(payload).status == 200
    app.wait_idle()
    return app.slack.responses[before:]


def votes(sessions: sessionmaker[Session]) -> set[tuple[int, str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(Feedback.response_id, Feedback.team_id, Feedback.slack_user_id, Feedback.rating)
        )
        return {(*row,) for row in rows}


def response_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalars(select(Response.id)).one()


def test_feedback_blocks_are_the_shape_slack_documents() -> None:
    assert feedback_blocks() == [
        {
            "type": "context_actions",
            "block_id": "answer_feedback",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": "answer_feedback",
                    "positive_button": {
                        "text": {"type": "plain_text", "text": "👍", "emoji": True},
                        "accessibility_label": "Good answer",
                        "value": "up",
                    },
                    "negative_button": {
                        "text": {"type": "plain_text", "text": "👎", "emoji": True},
                        "accessibility_label": "Bad answer",
                        "value": "down",
                    },
                }
            ],
        }
    ]
    # Under a later message of a long answer, the block names the answer's first message.
    assert (
        feedback_blocks("1700000000.000100")[0]["block_id"] == "answer_feedback 1700000000.000100"
    )


def test_a_vote_is_stored_and_thanked_privately(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    ts = answer(app, model, sessions)
    [(_, thanks)] = click(app, ts, "up")
    assert thanks["response_type"] == "ephemeral"
    assert thanks["replace_original"] is False  # the answer itself stays as it is
    assert "👍" in thanks["text"]
    assert votes(sessions) == {(response_id(sessions), TEAM, "U0001", "up")}


def test_one_vote_per_person_the_latest_counts(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    ts = answer(app, model, sessions)
    click(app, ts, "up")
    [(_, thanks)] = click(app, ts, "down")
    assert "👎" in thanks["text"]
    click(app, ts, "up", user="U0002")
    rid = response_id(sessions)
    assert votes(sessions) == {(rid, TEAM, "U0001", "down"), (rid, TEAM, "U0002", "up")}


def test_votes_from_another_workspace_are_stored_with_the_voters_team(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    ts = answer(app, model, sessions)
    click(app, ts, "up")
    # A shared channel: a member of T0002 with the same user id votes under our answer.
    click(app, ts, "down", user_team="T0002")
    rid = response_id(sessions)
    assert votes(sessions) == {(rid, TEAM, "U0001", "up"), (rid, "T0002", "U0001", "down")}


def test_an_answer_of_another_workspace_is_not_found(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    ts = answer(app, model, sessions)
    [(_, said)] = click(app, ts, "up", team="T0002", user_team="T0002")
    assert "can't find that answer" in said["text"]
    assert votes(sessions) == set()


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ({"message_ts": "1600000000.000001"}, "up", "can't find that answer"),  # stale, forged
        ({"channel_id": "C0404"}, "up", "can't find that answer"),
        ({}, "sideways", "not one I know"),
    ],
)
def test_bad_clicks_are_answered_privately_without_a_trace(
    app: SlackAppHarness,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    where: dict[str, str],
    value: str,
    expected: str,
) -> None:
    ts = answer(app, model, sessions)
    caplog.clear()
    container = {"type": "message", "message_ts": ts, "channel_id": "C0001"} | where
    [(_, said)] = click(app, ts, value, overrides={"container": container})
    assert expected in said["text"]
    assert said["response_type"] == "ephemeral"
    assert votes(sessions) == set()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "changes",
    [
        {"container": {"type": "message"}},
        {"user": {}},
        {"team": {}, "user": {"id": "U0001"}},
    ],
)
def test_clicks_missing_fields_are_ignored_without_a_trace(
    app: SlackAppHarness,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    changes: dict[str, Any],
) -> None:
    ts = answer(app, model, sessions)
    caplog.clear()
    assert click(app, ts, overrides=changes) == []
    assert votes(sessions) == set()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_failed_answer_takes_no_votes(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(
        FakeReply(text="Half an answer", cut_after=1, stream_error={"message": "overloaded"})
    )
    app.mention("hi")
    app.wait_idle()
    with sessions() as session:
        ts = session.scalars(select(Message.slack_ts).where(Message.role == "assistant")).first()
    if ts is None:
        pytest.skip("a failed answer keeps no text here")
    [(_, said)] = click(app, ts)
    assert "can't find that answer" in said["text"]
    assert votes(sessions) == set()


def test_a_finished_answer_carries_the_buttons_on_its_last_stop_and_a_failed_one_none(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    answer(app, model, sessions)
    [stop] = app.slack.calls_to("chat.stopStream")
    blocks = stop.arg("blocks")
    assert blocks and blocks[0]["type"] == "context_actions"
    assert blocks[0]["elements"][0]["type"] == "feedback_buttons"

    model.enqueue(FakeReply(status=500), FakeReply(status=500))
    app.mention("and now?")
    app.wait_idle()
    failed = app.slack.calls_to("chat.stopStream")[1:] + app.slack.calls_to("chat.postMessage")
    assert failed and all(not c.arg("blocks") for c in failed)


def test_buttons_under_a_later_message_of_a_long_answer_name_its_first(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text=("A paragraph of a long answer.\n\n" * 500)[:15000]))
    app.mention("a very long answer, please")
    app.wait_idle()
    starts = app.slack.calls_to("chat.startStream")
    assert len(starts) == 2
    first_ts = str(starts[0].response["ts"])
    [last_stop] = [c for c in app.slack.calls_to("chat.stopStream") if c.args["ts"] != first_ts]
    assert last_stop.arg("blocks")[0]["block_id"].endswith(first_ts)
    with sessions() as session:
        stored = session.scalars(select(Message.slack_ts).where(Message.role == "assistant")).one()
    assert stored == first_ts
    block_id = last_stop.arg("blocks")[0]["block_id"]
    action = {
        "type": "feedback_buttons",
        "block_id": block_id,
        "action_id": FEEDBACK_ACTION,
        "value": "up",
        "action_ts": str(time.time()),
    }
    later_ts = str(starts[1].response["ts"])
    click(app, later_ts, overrides={"actions": [action]})  # found through the block id
    assert votes(sessions) == {(response_id(sessions), TEAM, "U0001", "up")}
