"""How the model client reads event streams and keeps its connection, and the SDK behaviour
that is the reason for each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.transport import EventDecoder
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Hi?"}]
SDK_QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi?"}]


def read(*pieces: bytes) -> list[str]:
    """The data of the events a stream yields when `pieces` arrive one read at a time."""
    return [event.data for event in EventDecoder().iter_bytes(iter(pieces))]


def events_by_read(*pieces: bytes) -> list[list[str]]:
    """For each read, the data of the events handed on before the decoder asked for the next."""
    found: list[list[str]] = []

    def reads() -> Iterator[bytes]:
        for piece in pieces:
            found.append([])
            yield piece

    for event in EventDecoder().iter_bytes(reads()):
        found[-1].append(event.data)
    return found


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"])
def test_lines_end_at_lf_cr_or_crlf(end: bytes) -> None:
    events = b"data: one" + end + end + b"data: two" + end + end
    assert read(events) == ["one", "two"]


def test_a_crlf_split_across_reads_is_one_line_end() -> None:
    assert read(b"data: one\r", b"\n\r", b"\ndata: two\r\n\r\n") == ["one", "two"]


def test_an_event_ended_by_cr_comes_at_once_not_with_the_next_read() -> None:
    # The LF of the third read ends the CR's line of the second.
    reads = events_by_read(b"data: one\r\r", b"", b"\ndata: two\r", b"\n\r\n")
    assert reads == [["one"], [], [], ["two"]]


def test_unicode_line_separators_inside_data_are_not_line_ends() -> None:
    text = 'data: {"content": "a\u2028b\u2029c\u0085d"}\n\n'
    assert read(text.encode()) == ['{"content": "a\u2028b\u2029c\u0085d"}']


def test_comments_keep_alives_and_other_fields_are_ignored() -> None:
    events = b": OPENROUTER PROCESSING\n\n: ping\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\n"
    assert read(events) == ["x"]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert read(b"event: ping\n\ndata:\n\n") == []


def test_data_lines_of_one_event_are_joined_with_newlines() -> None:
    assert read(b"data: first\ndata:second\ndata:  indented\n\n") == ["first\nsecond\n indented"]


def test_an_event_split_across_reads_comes_when_it_is_complete() -> None:
    reads = events_by_read(b"da", b"ta: hel", b"lo\n", b"\ndata: next", b"\n\n")
    assert reads == [[], [], [], ["hello"], ["next"]]


def test_a_multibyte_character_split_across_reads_is_decoded_whole() -> None:
    encoded = "data: héllo 漢字\n\n".encode()
    cut = encoded.index("漢".encode()) + 1
    assert read(encoded[:cut], encoded[cut:]) == ["héllo 漢字"]


# ----- contracts: the SDK behaviour each piece of bot/llm/transport.py is there for --------


def test_the_openai_sdk_still_drops_the_connection_after_a_stream(model: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=10)
    for _ in range(2):
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi?"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        time.sleep(0.1)  # give a connection on its way back to the pool the time to get there
    assert model.connections == 2, (
        "openai-python now reuses connections after a stream (openai-python#3440 fixed?): "
        "_WatchedStream's drain and ResponseEndings in bot/llm/transport.py can go"
    )


def test_the_openai_sdk_still_fails_on_an_event_without_data(model: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=10)
    model.enqueue(FakeReply(text="Fine.", preamble="event: ping\n\n"))
    stream = client.chat.completions.create(model="m", messages=SDK_QUESTION, stream=True)
    with pytest.raises(ValueError):  # json.loads("")
        list(stream)
    # The day this fails, the SDK drops such events itself and EventDecoder can go.


def test_our_client_keeps_one_connection_for_reply_after_reply(model: FakeOpenAI) -> None:
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=10)
    chat = OpenAIChatModel(client)
    for _ in range(2):
        assert "".join(chat.stream("m", QUESTION))
        time.sleep(0.1)  # the end of the body is read on another thread, just after the answer
    assert model.connections == 1


def test_a_plain_sdk_stream_on_our_client_keeps_its_connection_too(model: FakeOpenAI) -> None:
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=10)
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=SDK_QUESTION, stream=True)
        # Our client hands chunks over as the JSON objects they came as (`ChatClient`).
        chunks = cast(Iterator[dict[str, Any]], stream)
        assert "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        time.sleep(0.1)
    assert model.connections == 1
