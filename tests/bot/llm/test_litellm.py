"""What LiteLLM's proxy says outside the usage: the cost in a header, its own error words."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.llm.openai_chat import OpenAIChatModel, build_client
from bot.llm.port import ModelError
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Hi?"}]
USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


@pytest.fixture
def chat(model: FakeOpenAI) -> OpenAIChatModel:
    return OpenAIChatModel(build_client(base_url=model.base_url, api_key="sk-test", max_retries=0))


@pytest.mark.parametrize(
    "reply",
    [
        FakeReply(response_cost=0.000123, usage=USAGE),
        FakeReply(response_cost=0.000123, usage=USAGE, ignore_stream=True),
        FakeReply(response_cost=0.000123, usage=USAGE, refuse_stream=True),
    ],
    ids=["streamed", "not-streamed", "asked-again-without-streaming"],
)
def test_the_cost_in_the_header_is_the_answers_cost(
    chat: OpenAIChatModel, model: FakeOpenAI, reply: FakeReply
) -> None:
    model.enqueue(reply)
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream)
    assert stream.completion.usage is not None
    assert stream.completion.usage.cost_usd == Decimal("0.000123")


def test_the_cost_in_the_usage_wins_over_the_header(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(response_cost=0.5, usage={**USAGE, "cost": 0.25}))
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream)
    assert stream.completion.usage is not None
    assert stream.completion.usage.cost_usd == Decimal("0.25")


@pytest.mark.parametrize("value", ["None", "", "-1", "nan"])
def test_a_header_that_is_not_a_cost_is_ignored(
    chat: OpenAIChatModel, model: FakeOpenAI, value: str
) -> None:
    model.enqueue(FakeReply(usage=USAGE, headers={"x-litellm-response-cost": value}))
    stream = chat.stream("gpt-4o-mini", QUESTION)
    assert "".join(stream)
    assert stream.completion.usage is not None
    assert stream.completion.usage.cost_usd is None


def test_the_endpoints_own_error_message_is_kept_for_operators(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    model.enqueue(FakeReply(status=400, error_body={"error": {"message": "No connected db."}}))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert failed.value.message == "The model's endpoint rejected the request (HTTP 400)."
    assert failed.value.detail == "HTTP 400: No connected db."


def test_an_error_page_that_is_not_json_is_kept_too(
    chat: OpenAIChatModel, model: FakeOpenAI
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    model.enqueue(FakeReply(status=502, raw=page, content_type="text/html"))
    with pytest.raises(ModelError) as failed:
        list(chat.stream("gpt-4o-mini", QUESTION))
    assert "internal error" in failed.value.message
    assert failed.value.detail == f"HTTP 502: {page.decode()}"
