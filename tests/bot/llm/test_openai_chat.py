"""The model client: the real `openai` client against the loopback OpenAI-compatible fake."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.port import ModelError, TokenUsage
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]


@pytest.fixture
def chat(model: FakeOpenAI) -> OpenAIChatModel:
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=10)
    return OpenAIChatModel(client)


def test_text_usage_and_model_come_from_the_stream(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(
        FakeReply(
            text="Hello there, friend.",
            chunk_size=4,
            model="gpt-4o-mini-2024-07-18",
            usage={
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 8},
                "completion_tokens_details": {"reasoning_tokens": 2},
                "cost": 0.00042,
            },
        )
    )
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream) == "Hello there, friend."
    assert stream.completion.model == "gpt-4o-mini-2024-07-18"
    assert stream.completion.finish_reason == "stop"
    assert stream.completion.usage == TokenUsage(
        prompt=12, completion=5, total=17, cached=8, reasoning=2, cost_usd=Decimal("0.00042")
    )
    [request] = model.completions()
    assert request["messages"] == QUESTION
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}


def test_text_is_handed_on_as_it_arrives(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(text="One, two, three.", chunk_size=5, chunk_delay=0.05))
    assert list(chat.stream("gpt-4o-mini", QUESTION)) == ["One, ", "two, ", "three", "."]


def test_tool_calls_without_an_index_or_with_one_id_twice_are_told_apart(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    def event(**call: Any) -> str:
        delta = {"tool_calls": [call]}
        return f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n"

    def lookup(arguments: str) -> dict[str, str]:
        return {"name": "lookup_order", "arguments": arguments}

    events = (
        # Gemini's endpoint: whole calls, no index; a fragment with no id goes on the last.
        event(id="g1", type="function", function=lookup('{"order_id": "1"}'))
        + event(id="g2", type="function", function=lookup('{"order_id"'))
        + event(function={"arguments": ': "2"}'})
        # Indexed, but an id already used, and none at all.
        + event(index=7, id="g1", function=lookup("{}"))
        + event(index=8, function=lookup("{}"))
        + 'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}\n\n'
        + "data: [DONE]\n\n"
    )
    model.enqueue(FakeReply(text="never sent", preamble=events))
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert list(stream) == []
    calls = stream.completion.tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("g1", "lookup_order", '{"order_id": "1"}'),
        ("g2", "lookup_order", '{"order_id": "2"}'),
        ("call_2", "lookup_order", "{}"),
        ("call_3", "lookup_order", "{}"),
    ]


def test_chunks_that_arrive_together_are_each_handed_on_at_once(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    events = "".join(
        f'data: {{"choices": [{{"index": 0, "delta": {{"content": "{word} "}}}}]}}\n\n'
        for word in ("All", "at", "once.")
    )
    model.enqueue(FakeReply(text="never sent", preamble=events + "data: [DONE]\n\n"))
    # One read, three chunks: the client's stream hands each on (the reply's writer batches).
    assert list(chat.stream("gpt-4o-mini", QUESTION)) == ["All ", "at ", "once. "]


def test_one_connection_serves_reply_after_reply(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    for _ in range(5):
        assert "".join(chat.stream("gpt-4o-mini", QUESTION)) == FakeReply().text
        time.sleep(0.1)  # the end of the body is read on another thread, just after the answer
    assert model.connections == 1


def test_comments_and_keep_alives_are_skipped(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(text="Fine.", preamble=": OPENROUTER PROCESSING\n\n: ping\n\n"))
    assert "".join(chat.stream("gpt-4o-mini", QUESTION)) == "Fine."


def test_an_error_event_in_the_stream_fails_the_turn(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(
        FakeReply(
            text="Partial answer that stops",
            chunk_size=8,
            cut_after=1,
            stream_error={"message": "Provider returned error", "code": 502},
        )
    )
    stream = chat.stream("gpt-4o-mini", QUESTION)
    received = []
    with pytest.raises(ModelError) as failed:
        for delta in stream:
            received.append(delta)
    assert received == ["Partial "]
    assert failed.value.retryable
    assert "Provider returned error" in failed.value.detail


@pytest.mark.parametrize(
    "event",
    [
        "data: <html>Bad gateway</html>\n\n",
        "data: 42\n\n",
        # Chunks read as they came, fields of another shape included.
        'data: {"choices": "none"}\n\n',
        'data: {"choices": [{"delta": ["x"]}]}\n\n',
        'data: {"choices": [{"delta": {"tool_calls": ["lookup_order"]}}]}\n\n',
        'data: {"choices": [], "usage": [1, 2]}\n\n',
    ],
)
def test_a_stream_that_is_not_chunks_is_explained(
    chat: OpenAIChatModel, model: FakeOpenAI, event: str
) -> None:
    model.enqueue(FakeReply(text="x", preamble=event))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert "not a chat completion" in failed.value.message


@pytest.mark.parametrize("after_done", ["", "\n\n", ": still here\n\n"])
def test_a_server_slow_to_end_the_body_does_not_hold_the_answer(
    chat: OpenAIChatModel, model: FakeOpenAI, after_done: str
) -> None:
    model.enqueue(FakeReply(text="All here.", after_done=after_done, hold_after_done=3))
    started = time.monotonic()
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream) == "All here."
    assert time.monotonic() - started < 2
    assert stream.completion.usage is not None


def test_line_separators_inside_the_text_are_kept(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    # JSON may carry U+2028, U+2029 and U+0085 unescaped; SSE lines end only at CR or LF.
    raw = '{"choices": [{"index": 0, "delta": {"content": "a\u2028b\u2029c\u0085d "}}]}'
    model.enqueue(FakeReply(text="and the rest.", preamble=f"data: {raw}\r\n\r\ndata:\n\n"))
    assert "".join(chat.stream("gpt-4o-mini", QUESTION)) == "a\u2028b\u2029c\u0085d and the rest."


def test_a_model_that_stops_writing_midway_times_out(model: FakeOpenAI) -> None:
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0, timeout=0.5)
    model.enqueue(FakeReply(text="Slow and then silent", chunk_size=5, chunk_delay=2))
    received = []
    with pytest.raises(ModelError) as failed:
        for delta in OpenAIChatModel(client).stream("gpt-4o-mini", QUESTION):
            received.append(delta)
    assert received == ["Slow "]
    assert "took too long" in failed.value.message
    assert failed.value.retryable


def test_an_endpoint_that_does_not_stream_still_answers(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    model.enqueue(FakeReply(text="The whole answer.", ignore_stream=True, usage=usage))
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert list(stream) == ["The whole answer."]
    assert stream.completion.usage == TokenUsage(prompt=42, completion=7, total=49)
    assert stream.completion.finish_reason == "stop"
    assert stream.completion.streamed is False


def test_a_model_that_refuses_streaming_is_asked_again_without(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="Given whole.", refuse_stream=True))
    stream = chat.stream("o1-pro", QUESTION)
    assert "".join(stream) == "Given whole."
    assert stream.completion.streamed is False
    streaming, plain = model.completions()
    assert streaming["stream"] is True
    assert plain["stream"] is False and "stream_options" not in plain
    assert plain["messages"] == QUESTION


def test_a_streamed_answer_is_marked_streamed(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream)
    assert stream.completion.streamed is True


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"<html><body>Please sign in</body></html>", "text/html; charset=utf-8"),
        (b"", "text/plain"),
        (b'{"object": "list", "data": []}', "application/json"),
    ],
)
def test_a_body_that_is_not_a_completion_is_said_so(
    chat: OpenAIChatModel, model: FakeOpenAI, raw: bytes, content_type: str
) -> None:
    model.enqueue(FakeReply(raw=raw, content_type=content_type))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert "not a chat completion" in failed.value.message
    assert "empty answer" not in failed.value.message


def test_an_event_stream_under_another_label_is_read(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    event = 'data: {"choices": [{"index": 0, "delta": {"content": "Hi."}}]}\n\ndata: [DONE]\n\n'
    model.enqueue(FakeReply(raw=event.encode(), content_type="text/plain"))
    assert "".join(chat.stream("gpt-4o-mini", QUESTION)) == "Hi."


def test_a_stream_that_ends_without_its_end_was_cut_off(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(
        FakeReply(text="The first part, then", chunk_size=5, finish_reason="", done=False)
    )
    received = []
    with pytest.raises(ModelError) as failed:
        for delta in chat.stream("gpt-4o-mini", QUESTION):
            received.append(delta)
    assert "".join(received) == "The first part, then"
    assert "cut off" in failed.value.message
    assert failed.value.retryable


def test_a_stream_with_a_finish_reason_needs_no_done(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="Complete.", done=False))
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream) == "Complete."
    assert stream.completion.finish_reason == "stop"


def test_a_refusal_in_the_stream_is_not_worth_retrying(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(cut_after=0, stream_error={"message": "Context too long", "code": 400}))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert not failed.value.retryable
    assert "Context too long" in failed.value.detail


def test_http_errors_become_model_errors(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(status=429))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert failed.value.retryable
    assert "rate-limiting" in failed.value.message
