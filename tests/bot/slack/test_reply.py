"""The Slack reply writer on the real WebClient against the fake Web API."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.conversations.service import ReplyTarget
from bot.slack.reply import MESSAGE_LIMIT, SlackReplyWriter
from tests.fakes import FakeSlackAPI


def test_each_message_of_a_long_reply_is_noted_so_a_successor_can_close_the_open_one(
    slack: FakeSlackAPI,
) -> None:
    # A process that dies while the second message streams must leave that one's ts behind:
    # the first is stopped already, and closing it again would leave the second open.
    noted: list[str] = []
    writer = SlackReplyWriter(
        WebClient(token="xoxb-test", base_url=slack.base_url),
        ReplyTarget("T1", "C1", "1.000001", "U1"),
        on_start=noted.append,
    )
    for _ in range(MESSAGE_LIMIT // 1000 + 2):
        writer.write("word " * 199 + "end.\n\n")
    starts = [str(call.response["ts"]) for call in slack.calls_to("chat.startStream")]
    assert len(starts) == 2
    assert noted == starts
    writer.finish()
