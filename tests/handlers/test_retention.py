"""Edits and deletions in Slack, end to end: signed events in, the real app, fake endpoints."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Conversation, Message, Response
from tests.fakes import FakeOpenAI, FakeReply
from tests.harness import BOT_USER, SlackAppHarness


def deleted(app: SlackAppHarness, ts: str, *, thread_ts: str | None, **previous: Any) -> dict:
    """The `message_deleted` event Slack sends when the message `ts` is deleted."""
    before = {"type": "message", "user": "U0001", "text": "…", "ts": ts} | previous
    if thread_ts:
        before["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": "C0001",
        "channel_type": "channel",
        "ts": app.next_ts(),
        "deleted_ts": ts,
        "event_ts": app.next_ts(),
        "previous_message": before,
    }


def changed(app: SlackAppHarness, ts: str, text: str, *, thread_ts: str | None, **new: Any) -> dict:
    """The `message_changed` event Slack sends when the message `ts` now reads `text`."""
    message = {"type": "message", "user": "U0001", "text": text, "ts": ts} | new
    if thread_ts:
        message["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": "C0001",
        "channel_type": "channel",
        "ts": app.next_ts(),
        "event_ts": app.next_ts(),
        "message": message,
        "previous_message": {"type": "message", "user": "U0001", "text": "…", "ts": ts},
    }


def stored(sessions: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    with sessions() as session:
        rows = session.execute(
            select(Message.role, Message.content, Message.slack_ts).order_by(Message.id)
        )
        return [(*row,) for row in rows]


def contents(completion: dict) -> list[str]:
    return [m["content"] for m in completion["messages"][1:]]


def test_a_deleted_message_leaves_the_database_and_the_next_context(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="Hi."), FakeReply(text="Noted."), FakeReply(text="Sure."))
    root = app.mention("hello")
    app.wait_idle()
    secret = app.say("my password is swordfish", thread_ts=root)
    app.wait_idle()
    assert "my password is swordfish" in contents(model.completions()[-1])

    assert app.event(deleted(app, secret, thread_ts=root)).status == 200
    app.wait_idle()
    assert all("swordfish" not in content for _, content, _ in stored(sessions))
    assert [ts for *_, ts in stored(sessions)].count(secret) == 0

    app.say("what did I tell you?", thread_ts=root)
    app.wait_idle()
    sent = contents(model.completions()[-1])
    assert sent[0] == "hello" and sent[-1] == "what did I tell you?"
    assert not any("swordfish" in content for content in sent)
    assert len(sent) == 4  # hello, Hi., Noted. (the reply stays, as in the thread), the question
    with sessions() as session:
        assert len(session.scalars(select(Response)).all()) == 3


def test_deleting_the_bots_reply_keeps_its_accounting_unlinked(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="The answer is 42."), FakeReply(text="Ok."))
    root = app.mention("the answer?")
    app.wait_idle()
    [(_, _, reply_ts)] = [row for row in stored(sessions) if row[0] == "assistant"]
    assert reply_ts

    event = deleted(app, reply_ts, thread_ts=root, user=None, bot_id="B0001")
    assert app.event(event).status == 200
    app.wait_idle()

    assert [role for role, *_ in stored(sessions)] == ["user"]
    with sessions() as session:
        [response] = session.scalars(select(Response)).all()
        assert response.message_id is None
        assert response.conversation_id is not None and response.tokens_total > 0
    app.say("and?", thread_ts=root)
    app.wait_idle()
    assert contents(model.completions()[-1]) == ["the answer?", "and?"]


def test_an_edit_replaces_the_stored_text_and_the_next_context(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="Lyon."), FakeReply(text="Paris, then."))
    root = app.mention("capital of Frnace?\x00")
    app.wait_idle()

    edit = changed(app, root, f"<@{BOT_USER}>  capital of France?\x00", thread_ts=None)
    assert app.event(edit).status == 200
    app.wait_idle()
    assert stored(sessions)[0] == ("user", "capital of France?", root)
    with sessions() as session:
        assert session.scalars(select(Conversation.title)).one() == "capital of France?"

    app.say("sure?", thread_ts=root)
    app.wait_idle()
    assert contents(model.completions()[-1]) == ["capital of France?", "Lyon.", "sure?"]


def test_a_thread_whose_first_message_is_deleted_keeps_its_replies(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="A."), FakeReply(text="B."), FakeReply(text="C."))
    root = app.mention("top secret plan")
    app.wait_idle()
    app.say("more", thread_ts=root)
    app.wait_idle()

    # Slack turns a first message with replies into a tombstone rather than deleting it.
    tombstone = changed(
        app,
        root,
        "This message was deleted.",
        thread_ts=root,
        subtype="tombstone",
        user="USLACKBOT",
    )
    assert app.event(tombstone).status == 200
    app.wait_idle()
    assert all("secret" not in content for _, content, _ in stored(sessions))
    with sessions() as session:
        assert session.scalars(select(Conversation.title)).one() == ""

    app.say("go on", thread_ts=root)  # still the bot's thread
    app.wait_idle()
    sent = contents(model.completions()[-1])
    assert not any("secret" in content for content in sent)
    assert sent == ["more", "B.", "go on"]  # a context never opens with a reply


@pytest.mark.parametrize(
    "kind", ["deleted", "edited", "bot streaming update", "no message", "no channel"]
)
def test_changes_to_messages_never_stored_are_ignored_quietly(
    app: SlackAppHarness,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    model.enqueue(FakeReply(text="Reply."))
    root = app.mention("keep me")
    app.wait_idle()
    before = stored(sessions)
    [(_, _, reply_ts)] = [row for row in before if row[0] == "assistant"]
    assert reply_ts is not None
    events = {
        "deleted": deleted(app, "1600000000.000100", thread_ts=None),
        "edited": changed(app, "1600000000.000100", "new", thread_ts=root),
        "bot streaming update": changed(app, reply_ts, "Rep", thread_ts=root, bot_id="B0001"),
        "no message": {"type": "message", "subtype": "message_changed", "channel": "C0001"},
        "no channel": deleted(app, root, thread_ts=None) | {"channel": None},
    }
    with caplog.at_level(logging.WARNING):
        assert app.event(events[kind]).status == 200
        app.wait_idle()
    assert stored(sessions) == before
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_message_deleted_while_it_is_answered_is_still_accounted(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="A slow answer.", first_token_delay=0.6))
    root = app.mention("slow question")
    model.wait_for_requests(1, path="/v1/chat/completions")
    assert app.event(deleted(app, root, thread_ts=None)).status == 200
    app.wait_idle()

    assert stored(sessions) == []  # neither the question nor the reply to it
    with sessions() as session:
        [response] = session.scalars(select(Response)).all()
    assert response.status == "ok" and response.message_id is None
    assert response.tokens_total > 0 and response.conversation_id is not None
