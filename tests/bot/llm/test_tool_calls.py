"""Tool calls: offered with `tools=`, streamed back as index-keyed fragments, assembled."""

from __future__ import annotations

import json

import pytest

from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.port import ToolCall, ToolSpec
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather now in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
CALLS = [
    ("call_1", "get_weather", '{"city": "Paris", "units": "metric"}'),
    ("call_2", "get_weather", '{"city": "Oslo"}'),
]


@pytest.fixture
def chat(model: FakeOpenAI) -> OpenAIChatModel:
    return OpenAIChatModel(build_client(base_url=model.base_url, api_key="sk-test", max_retries=0))


def test_the_tools_are_offered_to_the_model(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    assert "".join(chat.stream("gpt-4o-mini", QUESTION, tools=[WEATHER]))
    [request] = model.completions()
    assert request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather now in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]


def test_no_tools_are_sent_when_none_are_offered(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    assert "".join(chat.stream("gpt-4o-mini", QUESTION))
    [request] = model.completions()
    assert "tools" not in request
    assert chat.stream("gpt-4o-mini", QUESTION).completion.tool_calls == ()


@pytest.mark.parametrize("chunk_size", [1, 5, 100])
def test_streamed_calls_are_assembled_from_their_fragments(
    chat: OpenAIChatModel, model: FakeOpenAI, chunk_size: int
) -> None:
    model.enqueue(FakeReply(text="", tool_calls=CALLS, chunk_size=chunk_size))
    stream = chat.stream("gpt-4o-mini", QUESTION, tools=[WEATHER])
    assert "".join(stream) == ""
    assert stream.completion.finish_reason == "tool_calls"
    assert stream.completion.tool_calls == tuple(ToolCall(*call) for call in CALLS)
    assert json.loads(stream.completion.tool_calls[0].arguments)["city"] == "Paris"
    assert stream.completion.streamed is True


def test_text_before_the_calls_is_handed_on(chat: OpenAIChatModel, model: FakeOpenAI) -> None:
    model.enqueue(FakeReply(text="Let me look.", tool_calls=CALLS[:1]))
    stream = chat.stream("gpt-4o-mini", QUESTION, tools=[WEATHER])
    assert "".join(stream) == "Let me look."
    assert stream.completion.tool_calls == (ToolCall(*CALLS[0]),)


def test_calls_of_an_endpoint_that_does_not_stream(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="", tool_calls=CALLS, ignore_stream=True))
    stream = chat.stream("gpt-4o-mini", QUESTION, tools=[WEATHER])
    assert list(stream) == []
    assert stream.completion.streamed is False
    assert stream.completion.finish_reason == "tool_calls"
    assert stream.completion.tool_calls == tuple(ToolCall(*call) for call in CALLS)


def test_calls_of_a_model_asked_again_without_streaming(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(text="", tool_calls=CALLS[1:], refuse_stream=True))
    stream = chat.stream("o1-pro", QUESTION, tools=[WEATHER])
    assert list(stream) == []
    assert stream.completion.tool_calls == (ToolCall(*CALLS[1]),)
    assert [r["tools"][0]["function"]["name"] for r in model.completions()] == ["get_weather"] * 2
