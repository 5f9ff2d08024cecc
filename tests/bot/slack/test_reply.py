"""The Slack reply writer on the real WebClient against the fake Web API."""

from __future__ import annotations

import gc

import pytest
from slack_sdk import WebClient

from bot.conversations.service import ReplyTarget
from bot.conversations.turn import TaskCard
from bot.slack.feedback_blocks import feedback_blocks
from bot.slack.pacing import AppendPace
from bot.slack.reply import LOST_NOTE, MESSAGE_LIMIT, SlackReplies, SlackReplyWriter
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.fakes.slack_api import SlackCall
from tests.harness import SlackAppHarness

THREAD = "1.000001"
TARGET = ReplyTarget("T1", "C1", THREAD, "U1")
PARAGRAPH = "word " * 199 + "end.\n\n"  # 1,000 characters


@pytest.fixture
def client(slack: FakeSlackAPI) -> WebClient:
    """A WebClient with slack_sdk's default retry handlers only (no rate-limit waits)."""
    return WebClient(token="xoxb-test", base_url=slack.base_url)


@pytest.fixture
def writer(client: WebClient) -> SlackReplyWriter:
    return SlackReplyWriter(client, TARGET)


def methods(slack: FakeSlackAPI) -> list[str]:
    return [call.method for call in slack.calls]


def text_of(call: SlackCall) -> str:
    """The text one chat.* call carries, as markdown_text or as ChatStream's chunks."""
    chunks = call.arg("chunks") or []
    return str(call.args.get("markdown_text") or "") + "".join(c["text"] for c in chunks)


def shown(slack: FakeSlackAPI) -> list[str]:
    """What the thread shows, message by message: streams as Slack took them, posts, updates."""
    messages: dict[str, str] = {}
    for call in slack.calls:
        ts = str(call.response.get("ts"))
        if not call.response.get("ok"):
            continue
        if call.method == "chat.startStream":
            messages[ts] = slack.streamed_text(ts)
        elif call.method in ("chat.postMessage", "chat.update"):
            messages[ts] = text_of(call)
    return list(messages.values())


# --- what a reply costs in Web API calls -----------------------------------------------------
def test_a_short_reply_is_two_calls_the_first_text_at_once_the_rest_and_the_buttons_on_the_stop(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    writer.write("Hello ")
    assert methods(slack) == ["chat.startStream"]  # shown before the model writes on
    writer.write("**Ada**!")
    first_ts = writer.finish()

    start, stop = slack.calls
    assert (start.method, stop.method) == ("chat.startStream", "chat.stopStream")
    assert (start.args["recipient_team_id"], start.args["recipient_user_id"]) == ("T1", "U1")
    assert (text_of(start), text_of(stop)) == ("Hello ", "**Ada**!")
    assert stop.arg("blocks") == feedback_blocks()
    assert first_ts == start.response["ts"] == stop.args["ts"]
    assert slack.open_streams() == []
    assert writer.delivered and writer.closed


def test_a_mention_answered_by_the_app_costs_two_web_api_calls(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="Hello **Ada**, here is the answer.", chunk_size=4))
    ts = app.mention("say hello")
    app.wait_idle()

    # (A status call comes only when the first text takes over 0.3 s: not counted here.)
    in_thread = [c for c in slack.calls if c.method.startswith("chat.")]
    assert [c.method for c in in_thread] == ["chat.startStream", "chat.stopStream"]
    start, stop = in_thread
    assert start.args["thread_ts"] == ts
    assert text_of(start) + text_of(stop) == "Hello **Ada**, here is the answer."
    assert stop.arg("blocks") == feedback_blocks()


def test_a_long_reply_goes_on_in_further_messages_each_stopped_the_buttons_under_the_last(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    text = PARAGRAPH * 30
    for at in range(0, len(text), 500):
        writer.write(text[at : at + 500])
    first_ts = writer.finish()

    # First text at once, then batches of FLUSH_SIZE; what fills a message rides on its stop.
    assert methods(slack) == [
        *("chat.startStream", "chat.appendStream", "chat.appendStream", "chat.stopStream"),
        *("chat.startStream", "chat.appendStream", "chat.appendStream", "chat.stopStream"),
        *("chat.startStream", "chat.appendStream", "chat.stopStream"),
    ]
    starts = slack.calls_to("chat.startStream")
    assert "".join(slack.streamed_text(call.response["ts"]) for call in starts) == text
    assert all(len(slack.streamed_text(c.response["ts"])) <= MESSAGE_LIMIT for c in starts)
    *earlier, last = slack.calls_to("chat.stopStream")
    assert all(stop.arg("blocks") is None for stop in earlier)
    assert last.arg("blocks") == feedback_blocks(first_ts)  # a click finds the first message
    assert slack.open_streams() == []
    assert writer.delivered


def test_each_message_of_a_long_reply_is_noted_so_a_successor_can_close_the_open_one(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    # A process that dies while the second message streams must leave that one's ts behind:
    # the first is stopped already, and closing it again would leave the second open.
    noted: list[str] = []
    writer = SlackReplyWriter(client, TARGET, on_start=noted.append)
    for _ in range(MESSAGE_LIMIT // 1000 + 2):
        writer.write(PARAGRAPH)
    starts = [str(call.response["ts"]) for call in slack.calls_to("chat.startStream")]
    assert len(starts) == 2
    assert noted == starts
    writer.finish()


def test_the_writer_of_a_turn_talks_to_the_client_of_its_workspace(slack: FakeSlackAPI) -> None:
    clients = {
        team: WebClient(token=f"xoxb-{team}", base_url=slack.base_url) for team in ("T1", "T2")
    }
    replies = SlackReplies(clients.__getitem__)
    try:
        writer = replies(ReplyTarget("T2", "C1", THREAD, "U1"), lambda ts: None)
        writer.write("Hello")
        writer.finish()
    finally:
        replies.close()
    assert {call.token for call in slack.calls} == {"xoxb-T2"}


# --- every reply ends in a state Slack shows as finished --------------------------------------
def test_a_stop_refused_once_is_tried_again_and_keeps_its_text_and_buttons(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.stopStream", "internal_error", status=500, times=1)
    writer.write("Hello ")
    writer.write("world")
    writer.finish()

    refused, stopped = slack.calls_to("chat.stopStream")
    assert refused.response == {"ok": False, "error": "internal_error"}
    assert text_of(stopped) == "world" and stopped.arg("blocks") == feedback_blocks()
    assert slack.open_streams() == []
    assert slack.calls_to("chat.update") == []
    assert shown(slack) == ["Hello world"]
    assert writer.delivered


def test_a_rate_limited_stop_waits_as_slack_asks(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.stopStream", "ratelimited", status=429, retry_after=1, times=1)
    writer.write("Hello")
    writer.finish()

    limited, stopped = slack.calls_to("chat.stopStream")
    assert stopped.at - limited.at >= 1.0  # Retry-After: 1
    assert stopped.arg("blocks") == feedback_blocks()
    assert slack.open_streams() == [] and writer.delivered


def test_a_stop_refused_for_good_is_replaced_by_an_update_with_the_whole_text(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.stopStream", "internal_error", status=500)
    writer.write("Hello ")
    writer.write("world")
    writer.finish()

    assert len(slack.calls_to("chat.stopStream")) == 3  # one try and two retries
    stops = slack.calls_to("chat.stopStream")
    assert stops[-1].at - stops[0].at < 4.0  # tier 2: retried within a few seconds
    [update] = slack.calls_to("chat.update")
    assert update.args["ts"] == stops[0].args["ts"]
    assert shown(slack) == ["Hello world"]
    assert writer.delivered  # every word shows; only the buttons are missing


def test_a_stop_and_an_update_refused_for_good_lose_text_and_say_so(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.stopStream", "internal_error", status=500)
    slack.fail("chat.update", "internal_error", status=500)
    writer.write("Hello ")
    writer.write("world")
    writer.finish()

    assert shown(slack) == ["Hello ", LOST_NOTE]
    assert not writer.delivered


def test_an_end_too_long_for_slack_stops_without_it_and_goes_on_in_a_new_message(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.stopStream", "msg_too_long", times=1)
    writer.write("Hello ")
    writer.write("world")
    first_ts = writer.finish()

    too_long, stopped, rest_stopped = slack.calls_to("chat.stopStream")
    assert text_of(too_long) == "world"
    assert stopped.args["ts"] == first_ts and text_of(stopped) == ""
    assert stopped.arg("blocks") is None  # the buttons go under the end of the answer
    assert rest_stopped.arg("blocks") == feedback_blocks(first_ts)
    assert shown(slack) == ["Hello ", "world"]
    assert slack.open_streams() == []
    assert writer.delivered


def test_a_failed_append_and_failed_updates_lose_text_and_say_so(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    # issue #19: the person saw 124 of 304 characters, no note, and the row said ok.
    slack.fail("chat.appendStream", "internal_error", status=500)
    slack.fail("chat.update", "internal_error", status=500)
    first, second, third = "a" * 124, "b" * 4_100, "c" * 180
    writer.write(first)
    writer.write(second)  # FLUSH_SIZE reached: an append, refused
    writer.write(third)
    writer.finish()

    assert shown(slack) == [first, second, LOST_NOTE]  # the stream stopped, then a message
    assert slack.open_streams() == []
    assert not writer.delivered


def test_a_failed_append_goes_on_in_a_new_message_and_loses_nothing(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.appendStream", "ratelimited")
    writer.write("a" * 124)
    writer.write("b" * 4_100)
    writer.write("c" * 180)
    writer.finish()

    assert shown(slack) == ["a" * 124, "b" * 4_100 + "c" * 180]
    assert slack.open_streams() == []
    assert writer.delivered


def test_an_interrupted_stream_left_open_is_stopped_with_its_note_after_a_refusal(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    ts = client.chat_startStream(
        channel="C1", thread_ts=THREAD, recipient_team_id="T1", recipient_user_id="U1"
    )["ts"]
    slack.fail("chat.stopStream", "service_unavailable", status=503, times=1)
    SlackReplyWriter(client, TARGET).close_interrupted(ts, "_(Interrupted.)_")
    assert slack.open_streams() == []
    assert slack.streamed_text(ts) == "_(Interrupted.)_"


def test_a_text_refused_at_the_start_is_not_delivered(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.startStream", "channel_not_found")
    slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(Exception, match="channel_not_found"):
        writer.write("Hello")
    assert not writer.delivered


# --- task cards (tool calls) ------------------------------------------------------------------
def test_task_cards_go_in_the_stream_between_the_texts_and_the_status_names_the_tool(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    writer.write("Let me look. ")
    writer.task(TaskCard("call_1", "lookup_order (42)", "in_progress", details="x" * 300))
    writer.task(TaskCard("call_1", "lookup_order (42)", "complete", output="Done in 0.1 s"))
    writer.write("Order 42 shipped.")
    writer.finish()

    assert methods(slack) == [
        "chat.startStream", "assistant.threads.setStatus", "chat.appendStream",
        "chat.appendStream", "chat.stopStream",
    ]  # fmt: skip
    status = slack.calls_to("assistant.threads.setStatus")[0]
    assert status.args["status"] == "is using lookup_order (42)…"
    cards = slack.task_updates()  # the fake refuses what Slack would: all were taken
    assert [(c["id"], c["status"]) for c in cards] == [
        ("call_1", "in_progress"), ("call_1", "complete"),
    ]  # fmt: skip
    assert len(cards[0]["details"]) == 256
    ts = str(slack.calls_to("chat.startStream")[0].response["ts"])
    assert slack.streamed_text(ts) == "Let me look. Order 42 shipped."
    assert slack.open_streams() == [] and writer.delivered


def test_a_card_first_opens_the_stream_as_a_timeline(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    opened: list[str] = []
    writer = SlackReplyWriter(client, TARGET, on_start=opened.append)
    writer.task(TaskCard("c", "search_runbooks (disk full)", "in_progress"))
    writer.task(TaskCard("c", "search_runbooks (disk full)", "error", output="Failed"))
    writer.write("I could not reach the runbooks.")
    assert writer.finish() == opened[0]

    start = slack.calls_to("chat.startStream")[0]
    assert start.args["task_display_mode"] == "timeline"
    assert [c["status"] for c in slack.task_updates()] == ["in_progress", "error"]
    assert slack.streamed_text(opened[0]) == "I could not reach the runbooks."


def test_without_streaming_cards_are_left_out_and_the_text_still_comes(
    slack: FakeSlackAPI, writer: SlackReplyWriter
) -> None:
    slack.fail("chat.startStream", "not_allowed_token_type")
    writer.task(TaskCard("c", "lookup_order (1)", "in_progress"))
    writer.task(TaskCard("c", "lookup_order (1)", "complete"))
    writer.write("Order 1 shipped.")
    writer.finish()

    assert slack.task_updates() == []
    assert shown(slack) == ["Order 1 shipped."]
    assert writer.delivered


# --- pacing: the replies streaming in a workspace share appendStream's rate tier -------------
class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def appends_by_channel(slack: FakeSlackAPI) -> dict[str, int]:
    counted: dict[str, int] = {}
    for call in slack.calls:
        if call.method == "chat.appendStream":
            channel = str(call.args.get("channel"))
            counted[channel] = counted.get(channel, 0) + 1
    return counted


def test_a_reply_alone_appends_about_once_a_second(slack: FakeSlackAPI, client: WebClient) -> None:
    clock = Clock()
    writer = SlackReplyWriter(client, TARGET, pace=AppendPace(clock))
    for _ in range(30):  # 3 s of a model writing a word every 0.1 s
        writer.write("word ")
        clock.now += 0.1
    writer.finish()
    assert appends_by_channel(slack) == {"C1": 2}
    assert shown(slack) == ["word " * 30]


def test_replies_streaming_at_once_in_a_workspace_append_less_often_each(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    clock = Clock()
    pace = AppendPace(clock)
    # Ten replies in T1 share its 100 appends a minute (each every 6 s); one in T2 is alone.
    busy = [ReplyTarget("T1", f"C{n}", THREAD, "U1") for n in range(10)]
    alone = ReplyTarget("T2", "D1", THREAD, "U1")
    writers = [SlackReplyWriter(client, target, pace=pace) for target in [*busy, alone]]
    for _ in range(100):  # 10 s, a word every 0.1 s
        for writer in writers:
            writer.write("word ")
        clock.now += 0.1
    assert pace.interval("T1") == 6.0 and pace.interval("T2") == 1.0
    appends = appends_by_channel(slack)
    assert all(appends[f"C{n}"] == 1 for n in range(10))  # at 6 s: 10 in 10 s for T1
    assert appends["D1"] == 9
    for writer in writers:
        writer.finish()
    assert pace.interval("T1") == 1.0  # all ended: a new reply appends once a second again
    assert shown(slack) == ["word " * 100] * 11


def test_a_reply_dropped_without_its_end_stops_counting(client: WebClient) -> None:
    pace = AppendPace(Clock())
    writers = [SlackReplyWriter(client, TARGET, pace=pace) for _ in range(3)]
    for each in writers:
        each.write("word ")
    del each
    assert pace.interval("T1") == 1.8
    del writers[1:]  # their turns crashed: nothing finished them
    gc.collect()
    assert pace.interval("T1") == 1.0
