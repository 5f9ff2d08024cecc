"""Prices: the endpoint's own figure, the operator's, or genai-prices' for providers it knows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.llm.openai_chat import OpenAIChatModel, build_client, provider_name
from bot.llm.port import Completion
from bot.llm.pricing import cost_usd
from tests.fakes import FakeOpenAI, FakeReply

QUESTION = [{"role": "user", "content": "Hi?"}]
MILLION = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000}


def answered(model: FakeOpenAI, name: str, usage: dict) -> Completion:
    """The completion of one answer from the loopback endpoint."""
    model.enqueue(FakeReply(text="Priced.", model=name, usage=usage))
    client = build_client(base_url=model.base_url, api_key="sk-test", max_retries=0)
    stream = OpenAIChatModel(client).stream(name, QUESTION)
    assert "".join(stream) == "Priced."
    assert stream.completion.usage is not None
    return stream.completion


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        (None, "openai"),
        ("https://api.openai.com/v1", "openai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://my-team.openai.azure.com/openai", "azure"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://127.0.0.1:8000/v1", None),
        ("https://llm.internal.example.com/v1", None),
    ],
)
def test_the_provider_is_a_name_or_none_never_a_host(base_url: str | None, provider: str) -> None:
    assert provider_name(base_url) == provider


def test_a_model_of_a_known_provider_is_priced_by_its_name(model: FakeOpenAI) -> None:
    completion = answered(model, "gpt-4o-mini", MILLION)
    assert completion.usage is not None
    assert cost_usd(completion.model, "openai", completion.usage) == Decimal("0.75")


def test_the_cost_the_endpoint_reports_wins(model: FakeOpenAI) -> None:
    completion = answered(model, "openai/gpt-4o", {**MILLION, "cost": 0.0123})
    assert completion.usage is not None
    assert cost_usd(completion.model, "openrouter", completion.usage) == Decimal("0.0123")


@pytest.mark.parametrize("provider", ["ollama", None, "vllm"])
def test_a_cloud_model_name_on_other_hardware_has_no_price(
    model: FakeOpenAI, provider: str | None
) -> None:
    completion = answered(model, "mistral-large-latest", MILLION)
    assert completion.usage is not None
    assert cost_usd(completion.model, provider, completion.usage) is None


def test_a_price_the_operator_configured_is_used(model: FakeOpenAI) -> None:
    completion = answered(model, "my-llama", MILLION)
    assert completion.usage is not None
    prices = (("my-llama", Decimal("0.10"), Decimal("0.30")), ("other", Decimal(1), Decimal(2)))
    assert cost_usd(completion.model, None, completion.usage, prices=prices) == Decimal("0.4")
    assert cost_usd("unlisted", None, completion.usage, prices=prices) is None
