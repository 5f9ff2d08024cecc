"""What a completion cost: the endpoint's own figure, the operator's price, or genai-prices'."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot

from bot.llm.port import TokenUsage

# (model, USD per million input tokens, USD per million output tokens): MODEL_PRICES.
ModelPrice = tuple[str, Decimal, Decimal]

_CENT_MILLIONTHS = Decimal("0.00000001")
_MILLION = Decimal(1_000_000)


def cost_usd(
    model: str, provider: str | None, usage: TokenUsage, *, prices: Sequence[ModelPrice] = ()
) -> Decimal | None:
    """The cost in USD, or None when nobody knows the model's price at this provider.

    A model's name alone says nothing of its price on the operator's own hardware (Ollama,
    vLLM) or behind an unknown proxy, so genai-prices is asked only about providers it knows.
    """
    if usage.cost_usd is not None:
        return usage.cost_usd
    for name, per_input, per_output in prices:
        if name == model:
            cost = (usage.prompt * per_input + usage.completion * per_output) / _MILLION
            return cost.quantize(_CENT_MILLIONTHS)
    if provider is None or not known_provider(provider):
        return None
    tokens = genai_prices.Usage(
        input_tokens=usage.prompt,
        output_tokens=usage.completion,
        cache_read_tokens=usage.cached or None,
    )
    try:
        price = genai_prices.calc_price(tokens, model_ref=model, provider_id=provider)
    except LookupError:
        return None
    return Decimal(price.total_price).quantize(_CENT_MILLIONTHS)


def known_provider(provider: str) -> bool:
    """Whether genai-prices has prices for `provider`."""
    snapshot = data_snapshot.get_snapshot()
    return data_snapshot.find_provider_by_id(snapshot.providers, provider) is not None
