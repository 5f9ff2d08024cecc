"""Conversations end to end: signed events in, the real app, fake Slack and model endpoints."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Conversation, Message, Response, User
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.harness import BOT_USER, TEAM, SlackAppHarness


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def responses(sessions: sessionmaker[Session]) -> list[Response]:
    with sessions() as session:
        return list(session.scalars(select(Response).order_by(Response.id)))


def reply_text(slack: FakeSlackAPI) -> str:
    """Everything the bot wrote in threads, streamed or posted, in order."""
    parts = []
    for call in slack.calls:
        if call.method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            parts.append(call.args.get("markdown_text") or "")
            for chunk in call.arg("chunks") or []:
                parts.append(chunk.get("text", ""))
        elif call.method == "chat.postMessage":
            parts.append(call.args.get("markdown_text") or call.args.get("text") or "")
    return "".join(parts)


def test_mention_is_answered_in_its_thread_and_recorded(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    slack.add_user("U0001", name="ada", real_name="Ada Lovelace", is_admin=True)
    model.enqueue(FakeReply(text="Hello **Ada**!", usage={
        "prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }))  # fmt: skip

    ts = app.mention("say hello")
    app.wait_idle()

    start = slack.calls_to("chat.startStream")[0]
    assert start.args["thread_ts"] == ts
    assert start.args["recipient_user_id"] == "U0001"
    assert start.args["recipient_team_id"] == TEAM
    assert reply_text(slack) == "Hello **Ada**!"
    assert slack.calls_to("assistant.threads.setStatus") == []  # the answer came at once

    sent = model.completions()[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][-1] == {"role": "user", "content": "say hello"}  # mention stripped
    assert sent["messages"][0]["role"] == "system"

    with sessions() as session:
        user = session.scalars(select(User)).one()
        assert (user.team_id, user.slack_user_id, user.full_name) == (TEAM, "U0001", "Ada Lovelace")
        assert user.is_admin
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.channel_id, conversation.thread_ts) == ("C0001", ts)
        assert conversation.default_model == "gpt-4o-mini"
        roles = [m.role for m in session.scalars(select(Message).order_by(Message.id))]
        assert roles == ["user", "assistant"]
    [response] = responses(sessions)
    assert response.status == "ok"
    assert response.model_used == "gpt-4o-mini"
    assert (response.tokens_prompt, response.tokens_completion, response.tokens_total) == (
        20,
        5,
        25,
    )
    assert (response.tokens_cached, response.tokens_reasoning) == (8, 2)
    assert response.tokens_estimated is False
    assert response.cost_usd is not None and response.cost_usd > 0
    assert response.is_streaming
    assert response.time_to_first_token_ms is not None
    assert response.query_size == len("say hello")
    assert response.response_size == len("Hello **Ada**!")
    assert response.channel_id == "C0001"


def test_a_slow_model_shows_a_status_until_the_first_text(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="Thought about it.", first_token_delay=0.8))
    ts = app.mention("think hard")
    app.wait_idle()
    [status] = slack.calls_to("assistant.threads.setStatus")
    assert (status.args["channel_id"], status.args["thread_ts"]) == ("C0001", ts)
    assert status.at < slack.calls_to("chat.startStream")[0].at
    assert len(status.arg("loading_messages")) >= 2  # Slack rotates them while it waits


def test_a_new_conversation_in_the_messages_tab_is_titled_after_its_first_question(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    question = "How do I rotate the API keys of our staging cluster without downtime, please?"
    root = app.say(question, channel="D0001", channel_type="im")
    app.wait_idle()
    [title] = slack.calls_to("assistant.threads.setTitle")
    assert (title.args["channel_id"], title.args["thread_ts"]) == ("D0001", root)
    assert title.args["title"].startswith("How do I rotate the API keys")
    assert len(title.args["title"]) <= 60
    assert title.at > slack.calls_to("chat.startStream")[0].at  # never before the answer

    app.say("and in production?", channel="D0001", channel_type="im", thread_ts=root)
    app.mention("a channel thread has no title", channel="C0001")
    app.wait_idle()
    assert len(slack.calls_to("assistant.threads.setTitle")) == 1


def test_follow_ups_in_the_thread_need_no_mention_and_carry_history(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="Paris."), FakeReply(text="About 2.1 million."))
    root = app.mention("capital of France?")
    app.wait_idle()
    app.say("how many people live there?", thread_ts=root)
    app.wait_idle()

    history = model.completions()[1]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert [m["content"] for m in history[1:]] == [
        "capital of France?",
        "Paris.",
        "how many people live there?",
    ]
    assert count(sessions, Conversation) == 1
    assert count(sessions, Response) == 2


def test_several_people_in_one_thread_are_named(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    slack.add_user("U0001", real_name="Ada")
    slack.add_user("U0002", real_name="Grace")
    root = app.mention("hi", user="U0001")
    app.wait_idle()
    app.say("and me?", user="U0002", thread_ts=root)
    app.wait_idle()

    contents = [m["content"] for m in model.completions()[1]["messages"]]
    assert "Ada: hi" in contents
    assert "Grace: and me?" in contents


@pytest.mark.parametrize(
    "event",
    [
        {"text": "just chatting"},  # top level, no mention
        {"text": "reply", "thread_ts": "1700000000.000001"},  # a thread the bot is not in
        {"text": "hi", "bot_id": "B999"},  # another bot
        {"text": "hi", "subtype": "message_changed"},
        {"text": "", "subtype": "message_deleted"},
        {"text": "hi", "subtype": "channel_join"},
    ],
)
def test_messages_the_bot_does_not_answer(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session], event: dict
) -> None:
    extra = {k: v for k, v in event.items() if k != "text"}
    app.say(event["text"], **extra)
    app.wait_idle()
    assert model.completions() == []
    assert count(sessions, Message) == 0


def test_every_dm_is_answered(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app.say("hello there", channel="D0001", channel_type="im")
    app.say("another question", channel="D0001", channel_type="im")
    app.wait_idle()
    assert len(model.completions()) == 2
    assert count(sessions, Conversation) == 2  # each top-level DM starts its own thread
    assert len(slack.calls_to("chat.startStream")) == 2


def test_retried_events_are_answered_once(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    event = app.message_event(f"<@{BOT_USER}> once please") | {"type": "app_mention"}
    for retry in (None, 1, 2, 3):
        assert app.event(event, retry_num=retry).status == 200
    app.wait_idle()
    assert len(model.completions()) == 1
    assert count(sessions, Message) == 2
    assert count(sessions, Response) == 1


def test_mention_and_message_events_for_one_message_answer_once(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app.mention("hi")  # Slack sends app_mention and message for the same ts
    app.wait_idle()
    assert len(model.completions()) == 1
    assert count(sessions, Response) == 1


def test_a_reply_also_sent_to_the_channel_is_answered(
    app: SlackAppHarness, model: FakeOpenAI
) -> None:
    root = app.mention("first")
    app.wait_idle()
    app.say("and to everyone", thread_ts=root, subtype="thread_broadcast")
    app.wait_idle()
    assert len(model.completions()) == 2


def test_two_app_instances_racing_for_one_event_answer_once(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    first, second = make_app(), make_app()
    event = first.message_event(f"<@{BOT_USER}> race") | {"type": "app_mention"}
    model.default_reply = FakeReply(text="only once", first_token_delay=0.2)
    barrier = threading.Barrier(4)

    def deliver(instance: SlackAppHarness, retry: int | None) -> None:
        barrier.wait()
        instance.event(event, retry_num=retry)

    threads = [
        threading.Thread(target=deliver, args=(instance, retry))
        for instance in (first, second)
        for retry in (None, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first.wait_idle()
    second.wait_idle()
    assert len(model.completions()) == 1
    assert count(sessions, Response) == 1


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (FakeReply(status=500), "internal error"),
        (FakeReply(status=429), "rate-limiting"),
        (FakeReply(status=404), "does not know this model"),
        (FakeReply(status=401), "refused our credentials"),
        (FakeReply(text=""), "empty answer"),
    ],
)
def test_model_failures_are_explained_and_recorded(
    app: SlackAppHarness,
    slack: FakeSlackAPI,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
    reply: FakeReply,
    says: str,
) -> None:
    model.enqueue(reply, FakeReply(text="fine again"))
    root = app.mention("please")
    app.wait_idle()
    assert says in reply_text(slack)

    [failed] = responses(sessions)
    assert failed.status == "error"
    assert failed.error
    assert failed.message_id is None  # no text came, so no assistant message
    if reply.status != 200:
        # Refused before any text: an error that cost nothing, not an unpriced answer.
        assert (failed.tokens_total, failed.cost_usd) == (0, Decimal(0))
        assert not failed.tokens_estimated

    app.say("again?", thread_ts=root)  # the process keeps serving
    app.wait_idle()
    assert responses(sessions)[-1].status == "ok"
    assert "fine again" in reply_text(slack)


def test_a_stream_cut_midway_keeps_the_text_and_says_so(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="The first part arrives, then", chunk_size=5, cut_after=3))
    app.mention("tell me")
    app.wait_idle()

    shown = reply_text(slack)
    assert shown.startswith("The first part")
    assert "connection to the model broke off" in shown
    [response] = responses(sessions)
    assert response.status == "error"
    with sessions() as session:
        reply = session.get_one(Message, response.message_id)
        assert reply.content == "The first part "  # three chunks of five


def test_a_slack_failure_while_answering_is_recorded_and_the_bot_keeps_serving(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    slack.fail("chat.startStream", error="channel_not_found", times=1)
    slack.fail("chat.postMessage", error="channel_not_found", times=1)
    root = app.mention("where am I?")
    app.wait_idle()
    [failed] = responses(sessions)
    assert failed.status == "error"
    assert "channel_not_found" in (failed.error or "")

    app.say("still there?", thread_ts=root)
    app.wait_idle()
    assert responses(sessions)[-1].status == "ok"


def test_an_answer_cut_at_the_length_limit_says_so(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="The story goes on and", finish_reason="length"))
    app.mention("tell a long story")
    app.wait_idle()
    assert reply_text(slack).endswith("_(Cut off: the model reached its length limit.)_")


def test_model_errors_never_store_a_key(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-abc123*****wxyz", "type": "x"}}
    model.enqueue(FakeReply(status=401, error_body=body))
    app.mention("hi")
    app.wait_idle()
    [failed] = responses(sessions)
    assert "sk-abc" not in (failed.error or "")
    assert "[redacted]" in (failed.error or "")


def test_model_timeout_is_explained(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI,
    sessions: sessionmaker[Session],
) -> None:  # fmt: skip
    app = make_app(model_first_token_timeout=0.3)
    model.enqueue(FakeReply(hang=2.0))
    app.mention("slow one")
    app.wait_idle()
    assert "took too long" in reply_text(slack)
    assert responses(sessions)[0].status == "error"


def test_long_replies_continue_in_further_messages(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    paragraph = "word " * 199 + "end.\n\n"  # 1,000 characters
    text = paragraph * 30
    model.enqueue(FakeReply(text=text, chunk_size=500))
    app.mention("write a lot")
    app.wait_idle()

    starts = slack.calls_to("chat.startStream")
    assert len(starts) == 3
    assert len(slack.calls_to("chat.stopStream")) == 3
    assert reply_text(slack) == text
    for call in starts:
        assert len(slack.streamed_text(call.response["ts"])) <= 12_000


def test_refused_streaming_falls_back_to_a_message_updated_in_place(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    slack.fail("chat.startStream", error="not_allowed_token_type")
    model.enqueue(FakeReply(text="Fallback works fine.", chunk_size=4, chunk_delay=0.3))
    app.mention("hi")
    app.wait_idle()

    posted = slack.calls_to("chat.postMessage")
    assert len(posted) == 1
    updates = slack.calls_to("chat.update")
    assert updates and updates[-1].args["markdown_text"] == "Fallback works fine."
    assert len(updates) < 5  # at most about once a second, not per token
    assert responses(sessions)[0].status == "ok"


def test_missing_usage_is_estimated_and_marked(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="x" * 40, usage=None))
    app.mention("count for me")
    app.wait_idle()
    [response] = responses(sessions)
    assert response.tokens_estimated is True
    assert response.tokens_completion == 10
    assert response.tokens_prompt > 0


def test_endpoint_reported_cost_and_model_are_used(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    model.enqueue(FakeReply(text="hi", model="gpt-4o-mini-2024-07-18", usage={
        "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost": 0.0123,
    }))  # fmt: skip
    app.mention("hi")
    app.wait_idle()
    [response] = responses(sessions)
    assert response.model_used == "gpt-4o-mini-2024-07-18"
    assert response.cost_usd == Decimal("0.0123")


def test_unknown_price_is_null(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app = make_app(default_model="my-local-llama")
    app.mention("hi")
    app.wait_idle()
    [response] = responses(sessions)
    assert response.model_used == "my-local-llama"
    assert response.cost_usd is None


@pytest.mark.parametrize(("secret", "age"), [("forged-secret", 0), ("test-signing-secret", 600)])
def test_forged_or_stale_signatures_are_refused(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session], secret: str, age: int
) -> None:
    event = app.message_event(f"<@{BOT_USER}> hi") | {"type": "app_mention"}
    result = app.event(event, secret=secret, timestamp=int(time.time()) - age)
    app.wait_idle()
    assert result.status == 401
    assert model.completions() == []
    assert count(sessions, User) == 0


def test_events_are_acknowledged_before_the_model_answers(
    app: SlackAppHarness, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="slow", first_token_delay=1.5))
    started = time.monotonic()
    app.mention("take your time")
    acked = time.monotonic() - started
    app.wait_idle()
    assert acked < 1.5  # the ack did not wait for the model
    assert len(model.completions()) == 1


def test_many_conversations_are_answered_at_once(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app = make_app(max_concurrent_turns=64)
    model.default_reply = FakeReply(text="done", first_token_delay=3.0)
    for n in range(40):
        app.mention(f"question {n}", channel=f"C{n:04d}")
    # Every request reaches the model while the first is still waiting for its first token.
    model.wait_for_requests(count=40, timeout=2.5, path="/v1/chat/completions")
    app.wait_idle(timeout=30)
    assert count(sessions, Response) == 40


def test_health_check(app: SlackAppHarness) -> None:
    result = app.get("/healthz")
    assert (result.status, result.body) == (200, "ok\n")


def test_slack_api_url_is_the_only_slack_host_contacted(
    app: SlackAppHarness, slack: FakeSlackAPI
) -> None:
    app.mention("hi")
    app.wait_idle()
    api_calls = [call for call in slack.calls if call.method != "response_url"]
    assert api_calls
    assert {call.token for call in api_calls} == {"xoxb-test"}


def test_a_burst_of_requests_is_acknowledged_without_dropping_any(
    app: SlackAppHarness, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    events = [
        app.message_event(f"<@{BOT_USER}> burst {n}", channel=f"C{n:04d}") | {"type": "app_mention"}
        for n in range(120)
    ]
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda e=event: statuses.append(app.event(e).status))
        for event in events
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    app.wait_idle(timeout=60)
    assert statuses == [200] * 120
    assert count(sessions, Response) == 120


def test_an_answer_given_whole_is_recorded_as_not_streamed(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    model.enqueue(FakeReply(text="All at once.", ignore_stream=True, usage=usage))
    app.mention("hi")
    app.wait_idle()
    assert "All at once." in reply_text(slack)
    [response] = responses(sessions)
    assert (response.status, response.is_streaming) == ("ok", False)
    assert (response.tokens_prompt, response.tokens_completion) == (42, 7)


def test_a_configured_price_prices_a_local_model(
    make_app: Callable[..., SlackAppHarness], model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    app = make_app(
        default_model="my-llama",
        model_provider=None,
        model_prices=(("my-llama", Decimal("0.10"), Decimal("0.30")),),
    )
    model.enqueue(FakeReply(text="hi", usage={
        "prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000,
    }))  # fmt: skip
    app.mention("hi")
    app.wait_idle()
    [response] = responses(sessions)
    assert response.cost_usd == Decimal("0.4")
    assert response.provider is None


def test_a_long_slack_rate_limit_is_not_waited_out_and_the_turn_says_why(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    slack.fail("chat.startStream", "ratelimited", status=429, retry_after=30)
    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=30)
    model.enqueue(FakeReply(text="You will not see this in Slack."))
    started = time.monotonic()
    app.mention("hello")
    app.wait_idle(timeout=20)
    assert time.monotonic() - started < 10  # not 30 s (or six waits of it) per call
    with sessions() as session:
        status, error = session.execute(select(Response.status, Response.error)).one()
    assert status == "error" and "ratelimited" in (error or "")


def test_a_short_slack_rate_limit_is_waited_out(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI, sessions: sessionmaker[Session]
) -> None:
    slack.fail("chat.startStream", "ratelimited", status=429, retry_after=1, times=1)
    model.enqueue(FakeReply(text="After a second."))
    app.mention("hello")
    app.wait_idle(timeout=20)
    assert len(slack.calls_to("chat.startStream")) == 2
    with sessions() as session:
        assert session.scalars(select(Response.status)).all() == ["ok"]


@pytest.mark.parametrize("missing", ["user", "channel", "ts"])
def test_messages_without_user_channel_or_ts_are_ignored_quietly(
    app: SlackAppHarness,
    model: FakeOpenAI,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    missing: str,
) -> None:
    event = app.message_event(f"<@{BOT_USER}> from a workflow")
    del event[missing]
    assert app.event(event | {"type": "app_mention"}).status == 200
    assert app.event(event).status == 200
    app.wait_idle()
    assert count(sessions, Message) == 0
    assert model.completions() == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_mention_of_another_user_whose_id_starts_like_the_bots_is_not_one(
    app: SlackAppHarness, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="Started."), FakeReply(text="I think so too."))
    root = app.mention("let us talk")
    app.wait_idle()
    # In the bot's thread, a message mentioning someone else (<@UBOTX>) is addressed to them,
    # not to the bot: it is kept as context, not answered (and not taken for a mention of the
    # bot, whose app_mention event would answer it).
    app.say(f"<@{BOT_USER}X> what do you think?", thread_ts=root)
    app.wait_idle()
    assert len(model.completions()) == 1
    app.say("and you, bot?", thread_ts=root)
    app.wait_idle()
    assert len(model.completions()) == 2
    contents = [m["content"] for m in model.completions()[-1]["messages"]]
    assert contents[-2:] == [f"<@{BOT_USER}X> what do you think?", "and you, bot?"]
