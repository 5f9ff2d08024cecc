"""Replies carry the model's Markdown as Slack draws it: on the real WebClient and the fakes."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.conversations.service import ReplyTarget
from bot.slack.feedback_blocks import feedback_blocks
from bot.slack.reply import SlackReplyWriter
from tests.blockkit_dump import dump
from tests.bot.slack.test_reply import client, methods, shown, text_of
from tests.fakes import FakeOpenAI, FakeReply, FakeSlackAPI
from tests.harness import SlackAppHarness

__all__ = ["client"]  # the fixture, shared with test_reply.py

TARGET = ReplyTarget("T1", "C1", "1.000001", "U1")
ANSWER = (
    "## Two fruits\n"
    "Prices as of **today**, see [the list](https://example.com):\n"
    "\n"
    "| Fruit | Price |\n"
    "|:------|------:|\n"
    "| Apple | 1.20 |\n"
    "| Kiwi | 10 |\n"
)
TABLE_BLOCK = {
    "type": "table",
    "rows": [
        [{"type": "raw_text", "text": "Fruit"}, {"type": "raw_text", "text": "Price"}],
        [{"type": "raw_text", "text": "Apple"}, {"type": "raw_text", "text": "1.20"}],
        [{"type": "raw_text", "text": "Kiwi"}, {"type": "raw_text", "text": "10"}],
    ],
    "column_settings": [
        {"align": "left", "is_wrapped": True},
        {"align": "right", "is_wrapped": True},
    ],
}
INTRO = "**Two fruits**\nPrices as of **today**, see [the list](https://example.com):\n\n"
AS_CODE = "```\nFruit  Price\n-----  -----\nApple   1.20\nKiwi      10\n```\n"


def write_in_pieces(writer: SlackReplyWriter, text: str, size: int) -> None:
    for at in range(0, len(text), size):
        writer.write(text[at : at + size])


def test_a_table_that_ends_an_answer_is_a_table_block_on_the_stop_in_two_calls(
    app: SlackAppHarness, slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text=ANSWER, chunk_size=7))  # rows cut across chunks
    app.mention("prices?")
    app.wait_idle()

    in_thread = [c for c in slack.calls if c.method.startswith("chat.")]
    assert [c.method for c in in_thread] == ["chat.startStream", "chat.stopStream"]
    start, stop = in_thread
    assert text_of(start) + text_of(stop) == INTRO  # no raw pipes, the heading bold
    assert stop.arg("blocks") == [TABLE_BLOCK, *feedback_blocks()]
    dump("reply_table_block", {"markdown_text": INTRO, "blocks": stop.arg("blocks")})
    # The thread's history keeps what the model wrote, for the next turn.
    model.enqueue(FakeReply(text="Sure."))
    app.say("and pears?", thread_ts=start.args["thread_ts"])
    app.wait_idle()
    assert model.completions()[-1]["messages"][-2]["content"] == ANSWER


def test_a_table_inside_an_answer_is_an_aligned_code_block_in_its_place(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    writer = SlackReplyWriter(client, TARGET)
    write_in_pieces(writer, ANSWER + "\nKiwis are dearer.\n", 3)
    writer.finish()

    assert shown(slack) == [INTRO + AS_CODE + "\nKiwis are dearer.\n"]
    [stop] = slack.calls_to("chat.stopStream")
    assert stop.arg("blocks") == feedback_blocks()
    dump("reply_table_code", {"markdown_text": shown(slack)[0], "blocks": stop.arg("blocks")})


def test_a_table_block_slack_refuses_goes_on_as_text_with_the_buttons(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    slack.fail("chat.stopStream", "invalid_blocks", times=1)
    writer = SlackReplyWriter(client, TARGET)
    write_in_pieces(writer, ANSWER, 11)
    writer.finish()

    refused, stopped = slack.calls_to("chat.stopStream")
    assert refused.arg("blocks") == [TABLE_BLOCK, *feedback_blocks()]
    assert stopped.arg("blocks") == feedback_blocks()
    assert shown(slack) == [INTRO + AS_CODE]
    assert slack.open_streams() == [] and writer.delivered


def test_where_no_block_can_go_the_table_is_text(slack: FakeSlackAPI, client: WebClient) -> None:
    # Streaming refused: messages updated in place carry text only.
    slack.fail("chat.startStream", "not_allowed_token_type")
    writer = SlackReplyWriter(client, TARGET)
    write_in_pieces(writer, ANSWER, 50)
    writer.finish()
    assert shown(slack) == [INTRO + AS_CODE]
    assert all(not c.args.get("blocks") for c in slack.calls if c.method.startswith("chat."))

    # Streaming refused half-way (an append fails): the rest goes on in a message updated in
    # place, its table as text.
    slack.reset()
    slack.fail("chat.appendStream", "internal_error")
    halfway = SlackReplyWriter(client, TARGET)
    halfway.write("Intro\n")
    halfway.write("word " * 900 + "\n")  # past FLUSH_SIZE: appended at once, and refused
    write_in_pieces(halfway, ANSWER, 50)
    halfway.finish()
    assert "".join(shown(slack)).endswith(INTRO + AS_CODE)
    assert all(not c.args.get("blocks") for c in slack.calls_to("chat.update"))

    # A reply that fails, or is interrupted, ends with its table as text before its note.
    slack.reset()
    failing = SlackReplyWriter(client, TARGET)
    write_in_pieces(failing, ANSWER, 50)
    failing.fail("The model stopped.")
    assert shown(slack) == [INTRO + AS_CODE + "\n\n:warning: The model stopped."]
    slack.reset()
    stopped = SlackReplyWriter(client, TARGET)
    write_in_pieces(stopped, ANSWER, 50)
    stopped.interrupt("_(Stopped.)_")
    assert shown(slack) == [INTRO + AS_CODE + "\n\n_(Stopped.)_"]


def test_an_answer_that_is_only_a_table_is_a_code_block_in_two_calls(
    slack: FakeSlackAPI, client: WebClient
) -> None:
    writer = SlackReplyWriter(client, TARGET)
    writer.write(ANSWER[ANSWER.index("|") :])
    writer.finish()
    assert methods(slack) == ["chat.startStream", "chat.stopStream"]
    assert shown(slack) == [AS_CODE]
