"""What a completion cost, from the endpoint's own figure or genai-prices' offline data."""

from __future__ import annotations

from decimal import Decimal

import genai_prices

from bot.llm.port import TokenUsage


def cost_usd(model: str, provider: str | None, usage: TokenUsage) -> Decimal | None:
    """The cost in USD, or None when nobody knows the model's price."""
    if usage.cost_usd is not None:
        return usage.cost_usd
    tokens = genai_prices.Usage(
        input_tokens=usage.prompt,
        output_tokens=usage.completion,
        cache_read_tokens=usage.cached or None,
    )
    # The provider narrows the search (OpenRouter's "openai/gpt-4o"); a host we do not know,
    # such as a proxy in front of OpenAI, should still find the model by its name alone.
    for provider_id in dict.fromkeys((provider, None)):
        try:
            price = genai_prices.calc_price(tokens, model_ref=model, provider_id=provider_id)
        except LookupError:
            continue
        return Decimal(price.total_price).quantize(Decimal("0.00000001"))
    return None
