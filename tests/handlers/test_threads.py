"""Threads end to end: called into a people's thread, the bot reads it from Slack once and
answers with it; whom it answers in each kind of thread; the thread's messages as context."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.history import KEEP_MESSAGES, PAGE_SIZE
from bot.conversations.service import ABOUT_THE_THREAD
from db.models import Conversation, Message
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.handlers.test_conversations import reply_text
from tests.handlers.test_retention import changed, deleted
from tests.harness import BOT_USER, SlackAppHarness

CHANNEL = "C0001"


def people(slack: FakeSlackAPI) -> None:
    slack.add_user("U0001", real_name="Ada Lovelace")
    slack.add_user("U0002", real_name="Grace Hopper")


def peoples_thread(slack: FakeSlackAPI) -> str:
    """A thread Ada and Grace wrote (with a deploy app's message) before the bot was called
    in; the parent's ts."""
    root = slack.add_message(CHANNEL, "The deploy of 4.2 failed at 02:00.", user="U0001")["ts"]
    slack.add_message(CHANNEL, "Rolled back at 02:20.", user="U0002", thread_ts=root)
    slack.add_message(
        CHANNEL, "deploy 4.2: FAILED (migrations)", user="UAPP", thread_ts=root,
        bot_id="BAPP", subtype="bot_message", username="Deploy Bot",
    )  # fmt: skip
    slack.add_message(CHANNEL, "The migration timed out, <@U0002> knows.", thread_ts=root)
    return str(root)


def contents(model: FakeOpenAI, request: int = -1) -> list[str]:
    return [m["content"] for m in model.completions()[request]["messages"][1:]]


def stored_ts(sessions: sessionmaker[Session]) -> list[str | None]:
    with sessions() as session:
        return list(session.scalars(select(Message.slack_ts).order_by(Message.id)))


def test_called_into_a_thread_it_reads_it_once_and_answers_with_who_said_what(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    people(slack)
    root = peoples_thread(slack)
    model.enqueue(FakeReply(text="The migration timed out."), FakeReply(text="Ask Grace."))
    app.mention("summarize this thread", user="U0002", thread_ts=root)
    app.wait_idle()

    [read] = slack.calls_to("conversations.replies")
    assert (read.args["channel"], read.args["ts"]) == (CHANNEL, root)
    assert int(read.args["limit"]) == PAGE_SIZE
    assert contents(model) == [
        "Ada Lovelace: The deploy of 4.2 failed at 02:00.",
        "Grace Hopper: Rolled back at 02:20.",
        "Deploy Bot: deploy 4.2: FAILED (migrations)",
        "Ada Lovelace: The migration timed out, <@U0002> knows.",
        "Grace Hopper: summarize this thread",
    ]
    assert reply_text(slack) == "The migration timed out."  # no note: it was all read

    # Messages the bot does not answer are kept; the thread is never read again.
    app.say("who can fix it?", user="U0001", thread_ts=root)
    app.mention("who knows the migrations?", user="U0001", thread_ts=root)
    app.wait_idle()
    assert len(slack.calls_to("conversations.replies")) == 1
    assert len(model.completions()) == 2
    assert contents(model)[-4:] == [
        "Grace Hopper: summarize this thread",
        "The migration timed out.",
        "Ada Lovelace: who can fix it?",
        "Ada Lovelace: who knows the migrations?",
    ]
    with sessions() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.origin, conversation.history) == ("called_in", "read")
    assert len(stored_ts(sessions)) == len(set(stored_ts(sessions))) == 9


def test_files_shared_in_a_thread_it_is_called_into_reach_the_model(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    people(slack)
    sheet = slack.add_file("staff.csv", b"name,notice\nAda,3 months\n", mimetype="text/csv")
    root = slack.add_message(CHANNEL, "Here is the sheet.", user="U0001", files=[sheet])["ts"]
    slack.add_message(CHANNEL, "Thanks.", user="U0002", thread_ts=root)
    model.enqueue(FakeReply(text="Ada has three months."))
    app.mention("what does the sheet say?", user="U0002", thread_ts=str(root))
    app.wait_idle()

    words = " ".join(str(content) for content in contents(model))
    assert "[File staff.csv (a text file)]" in words and "Ada,3 months" in words
    assert contents(model)[-1] == "Grace Hopper: what does the sheet say?"


def test_a_long_thread_is_read_in_pages_and_its_start_and_latest_messages_kept(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    root = slack.add_message(CHANNEL, "message 0")["ts"]
    for number in range(1, 450):
        slack.add_message(CHANNEL, f"message {number}", thread_ts=root)
    app.mention("what was the last one?", thread_ts=root)
    app.wait_idle()

    reads = slack.calls_to("conversations.replies")
    assert len(reads) == 3  # 450 messages, 200 a page (the parent heads each)
    assert [bool(call.args.get("cursor")) for call in reads] == [False, True, True]
    said = contents(model)
    assert said[0] == "message 0" and said[-2:] == ["message 449", "what was the last one?"]
    assert len(said) == KEEP_MESSAGES + 1
    assert "message 250" not in said and "message 251" in said


def test_a_rate_limited_read_answers_with_what_it_has_and_says_so_in_one_line(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    root = peoples_thread(slack)
    slack.fail("conversations.replies", "ratelimited", status=429, retry_after=1, times=1)
    model.enqueue(FakeReply(text="From your message alone: retry."), FakeReply(text="Now I see."))
    app.mention("what happened?", thread_ts=root)
    app.wait_idle()

    assert len(slack.calls_to("conversations.replies")) == 1  # not waited out, even for 1 s
    assert contents(model) == ["what happened?"]
    text = reply_text(slack)
    assert text.startswith("From your message alone: retry.\n\n")
    [note] = text.splitlines()[2:]
    assert "couldn't read the earlier messages of this thread" in note
    assert "Slack is limiting requests" in note

    # Not read yet: the next mention reads it, and nothing is stored twice.
    app.mention("and now?", thread_ts=root)
    app.wait_idle()
    assert len(slack.calls_to("conversations.replies")) == 2
    assert "The deploy of 4.2 failed at 02:00." in contents(model)[0]
    assert len(stored_ts(sessions)) == len(set(stored_ts(sessions)))


@pytest.mark.parametrize(
    ("error", "says"),
    [
        ("not_in_channel", "I am not a member of this channel"),
        ("missing_scope", "may not read message history here"),
        ("thread_not_found", "Slack could not find it"),
    ],
)
def test_a_thread_slack_will_not_show_is_answered_with_one_plain_line(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, error: str, says: str
) -> None:
    root = peoples_thread(slack)
    slack.fail("conversations.replies", error)
    model.default_reply = FakeReply(text="Answer.")
    app.mention("what happened?", thread_ts=root)
    app.wait_idle()
    lines = reply_text(slack).splitlines()
    assert lines[0] == "Answer." and says in lines[-1] and len(lines) == 3
    app.mention("again?", thread_ts=root)
    app.wait_idle()
    assert len(slack.calls_to("conversations.replies")) == 1  # the same refusal: not asked again
    assert reply_text(slack).count("couldn't read") == 1


def test_a_read_cut_short_and_done_again_stores_each_message_once(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    root = slack.add_message(CHANNEL, "message 0")["ts"]
    for number in range(1, 300):
        slack.add_message(CHANNEL, f"message {number}", thread_ts=root)
    # The second page fails; the first is stored, and the next mention reads it all again.
    slack.respond(
        "conversations.replies",
        lambda args: (
            slack.threads.replies(args)
            if not args.get("cursor")
            else {"ok": False, "error": "fatal_error"}
        ),
    )
    app.mention("first try", thread_ts=root)
    app.wait_idle()
    assert len(slack.calls_to("conversations.replies")) == 2
    assert "I could read only part of the earlier messages" in reply_text(slack)
    assert len(stored_ts(sessions)) == PAGE_SIZE + 2  # the first page, the mention, the answer

    slack.respond("conversations.replies", slack.threads.replies)
    app.mention("second try", thread_ts=root)
    app.wait_idle()
    ts = stored_ts(sessions)
    assert len(ts) == len(set(ts)) == 300 + 2 + 2  # the thread, both mentions and answers
    # Every stored message fits MAX_CONTEXT_TOKENS here: the thread, the first mention and
    # its answer, the second mention.
    assert len(contents(model)) == 300 + 3


def test_whom_the_bot_answers_in_each_kind_of_thread(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    people(slack)
    model.default_reply = FakeReply(text="ok")

    # A DM: every message, in threads too.
    dm = app.say("hello", channel="D0001", channel_type="im")
    app.say("and this", channel="D0001", channel_type="im", thread_ts=dm)
    app.wait_idle()
    assert len(model.completions()) == 2

    # A thread that began by mentioning the bot: follow-ups, unless addressed to someone else.
    started = app.mention("plan the postmortem")
    app.wait_idle()
    app.say("<@U0002> can you write the postmortem?", thread_ts=started)
    app.say("<!here> meeting at 3", thread_ts=started)
    app.wait_idle()
    assert len(model.completions()) == 3
    event = app.message_event(f"<@U0002> and <@{BOT_USER}> what do you think?", thread_ts=started)
    app.event(event | {"type": "app_mention"})
    app.event(event)
    app.wait_idle()
    app.say("what should it cover?", thread_ts=started)
    app.wait_idle()
    assert len(model.completions()) == 5
    assert contents(model)[-3:] == [
        "<@U0002> and what do you think?",
        "ok",
        "what should it cover?",
    ]
    assert "<@U0002> can you write the postmortem?" in contents(model)

    # A thread the bot was called into: only mentions.
    root = peoples_thread(slack)
    app.mention("summarize", thread_ts=root)
    app.wait_idle()
    app.say("yes, tomorrow morning", user="U0002", thread_ts=root)
    app.wait_idle()
    assert len(model.completions()) == 6
    app.mention("and what did Grace say?", thread_ts=root)
    app.wait_idle()
    assert len(model.completions()) == 7
    assert contents(model)[-2:] == [
        "Grace Hopper: yes, tomorrow morning",
        "Ada Lovelace: and what did Grace say?",
    ]
    with sessions() as session:
        origins = session.scalars(select(Conversation.origin).order_by(Conversation.id))
        assert list(origins) == ["dm", "mention", "called_in"]


def test_edits_and_deletions_reach_messages_read_from_the_thread(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    root = slack.add_message(CHANNEL, "the root")["ts"]
    typo = slack.add_message(CHANNEL, "teh typo", thread_ts=root)["ts"]
    gone = slack.add_message(CHANNEL, "a secret", thread_ts=root)["ts"]
    app.mention("read this", thread_ts=root)
    app.wait_idle()
    app.event(changed(app, typo, "the typo, fixed", thread_ts=root))
    app.event(deleted(app, gone, thread_ts=root))
    app.mention("and now?", thread_ts=root)
    app.wait_idle()
    said = contents(model)
    assert "the typo, fixed" in said and "a secret" not in said and "teh typo" not in said
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(Message))
    assert count == 6  # root, fixed, two mentions, two answers


def test_a_mention_alone_in_a_peoples_thread_asks_about_the_thread(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    people(slack)
    root = peoples_thread(slack)
    model.enqueue(FakeReply(text="A failed deploy."))
    app.mention("", user="U0002", thread_ts=root)
    app.wait_idle()
    assert contents(model)[0] == "Ada Lovelace: The deploy of 4.2 failed at 02:00."
    assert contents(model)[-1] == f"Grace Hopper: {ABOUT_THE_THREAD}"
    assert reply_text(slack) == "A failed deploy."


def test_messages_older_than_retention_days_are_not_read_in(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    app = make_app(retention_days=30)
    now = time.time()
    root = slack.add_message(CHANNEL, "an old message", ts="1600000000.000100")["ts"]
    slack.add_message(CHANNEL, "a recent message", ts=f"{now - 60:.6f}", thread_ts=root)
    app.mention("summarize", thread_ts=root, ts=f"{now:.6f}")
    app.wait_idle()
    assert contents(model) == ["a recent message", "summarize"]
