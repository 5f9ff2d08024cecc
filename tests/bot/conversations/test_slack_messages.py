"""The one reading of a Slack message dict, on the shapes Slack sends in events and threads."""

from __future__ import annotations

from typing import Any

import pytest

from bot.conversations.intake import Handling, handling
from bot.conversations.slack_messages import parse_message
from bot.conversations.turn import Author, IncomingMessage, Origin


def parse(raw: dict[str, Any], **where: Any) -> IncomingMessage | None:
    return parse_message(raw, team_id="T1", bot_user_id="UBOT", bot_id="BBOT", **where)


def test_a_persons_message_in_an_event() -> None:
    message = parse(
        {"type": "message", "user": "U1", "text": "<@UBOT> hi <@U2>", "ts": "1.000002",
         "thread_ts": "1.000001", "channel": "C1", "channel_type": "channel"}
    )  # fmt: skip
    assert message is not None
    assert (message.author, message.user_id, message.channel_id) == (Author.PERSON, "U1", "C1")
    assert (message.thread_ts, message.is_dm) == ("1.000001", False)
    assert message.mentions_bot and message.mentions_others


def test_a_page_of_replies_lacks_the_channel_which_the_caller_gives() -> None:
    raw = {"type": "message", "user": "U1", "text": "hello", "ts": "1.000002"}
    assert parse(raw) is None
    message = parse(raw, channel_id="D1", is_dm=True)
    assert message is not None and message.is_dm and message.channel_id == "D1"


@pytest.mark.parametrize(
    ("raw", "author", "user_id", "name"),
    [
        ({"user": "UBOT", "bot_id": "BBOT"}, Author.SELF, "UBOT", None),
        ({"bot_id": "BBOT", "subtype": "bot_message"}, Author.SELF, "BBOT", None),
        ({"user": "UAPP", "bot_id": "BAPP", "bot_profile": {"name": "CI"}},
         Author.APP, "UAPP", "CI"),
        ({"bot_id": "BAPP", "subtype": "bot_message", "username": "Deploy Bot"},
         Author.APP, "BAPP", "Deploy Bot"),
    ],
)  # fmt: skip
def test_apps_and_the_bot_itself(
    raw: dict[str, Any], author: Author, user_id: str, name: str | None
) -> None:
    message = parse({"type": "message", "text": "done", "ts": "1.1", "channel": "C1"} | raw)
    assert message is not None
    assert (message.author, message.user_id, message.author_name) == (author, user_id, name)


@pytest.mark.parametrize(
    "raw",
    [
        {"subtype": "channel_join", "user": "U1"},
        {"subtype": "tombstone", "user": "USLACKBOT", "hidden": True},
        {"text": "no author"},
        {"user": "U1", "ts": ""},
    ],
)
def test_what_is_nothing_to_keep(raw: dict[str, Any]) -> None:
    assert parse({"type": "message", "text": "x", "ts": "1.1", "channel": "C1"} | raw) is None


@pytest.mark.parametrize(
    ("text", "others"),
    [
        ("<@UBOTX> what do you think?", True),  # not the bot: a longer id
        ("<!here> meeting at 3", True),
        ("<!subteam^S123|@oncall> look", True),
        ("<@UBOT|switchboard> and nobody else", False),
        ("plain words", False),
    ],
)
def test_mentions_of_others(text: str, others: bool) -> None:
    message = parse({"type": "message", "user": "U1", "text": text, "ts": "1.1", "channel": "C1"})
    assert message is not None and message.mentions_others is others
    assert message.mentions_bot is ("<@UBOT|" in text)


@pytest.mark.parametrize(
    ("origin", "text", "handled"),
    [
        (None, "hello", Handling.IGNORE),
        (None, "<@UBOT> hello", Handling.ANSWER),
        (Origin.MENTION, "a follow-up", Handling.ANSWER),
        (Origin.MENTION, "<@U2> can you write it?", Handling.CONTEXT),
        (Origin.MENTION, "<@U2> and <@UBOT> too", Handling.ANSWER),
        (Origin.CALLED_IN, "yes, tomorrow morning", Handling.CONTEXT),
        (Origin.CALLED_IN, "<@UBOT> and you?", Handling.ANSWER),
    ],
)
def test_whom_the_bot_answers(origin: Origin | None, text: str, handled: Handling) -> None:
    raw = {"type": "message", "user": "U1", "text": text, "ts": "1.2", "thread_ts": "1.1"}
    message = parse(raw, channel_id="C1")
    assert message is not None and handling(message, origin) is handled
    app = parse(raw | {"bot_id": "BAPP"}, channel_id="C1")
    assert app is not None and handling(app, origin) is (
        Handling.IGNORE if origin is None else Handling.CONTEXT
    )
    dm = parse(raw, channel_id="D1", is_dm=True)
    assert dm is not None and handling(dm, Origin.DM) is Handling.ANSWER
