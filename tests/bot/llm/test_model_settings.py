"""The MODEL_* settings of the model endpoint: deadlines, provider and prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.shell.settings import Settings, SettingsError


def settings(**env: str) -> Settings:
    return Settings.from_env(env, env_file=None)


def test_deadlines_default_for_slow_reasoning_models() -> None:
    s = settings()
    assert (s.model_first_token_timeout, s.model_idle_timeout, s.model_total_timeout) == (
        60.0,
        60.0,
        300.0,
    )


def test_model_timeout_still_sets_the_first_token_and_idle_timeouts() -> None:
    s = settings(MODEL_TIMEOUT="90", MODEL_IDLE_TIMEOUT="20")
    assert (s.model_first_token_timeout, s.model_idle_timeout, s.model_total_timeout) == (
        90.0,
        20.0,
        300.0,
    )


@pytest.mark.parametrize(
    "name", ["MODEL_FIRST_TOKEN_TIMEOUT", "MODEL_IDLE_TIMEOUT", "MODEL_TOTAL_TIMEOUT"]
)
def test_a_deadline_must_be_positive(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be a positive number of seconds"):
        settings(**{name: "0"})


def test_the_provider_is_named_by_the_operator() -> None:
    assert settings(MODEL_PROVIDER="OpenRouter").model_provider == "openrouter"
    assert settings().model_provider is None
    with pytest.raises(SettingsError, match="MODEL_PROVIDER must be one word"):
        settings(MODEL_PROVIDER="my provider")


def test_prices_are_read_per_million_tokens() -> None:
    s = settings(MODEL_PRICES="my-llama=0.10/0.30, meta-llama/llama-3-70b=1/2")
    assert s.model_prices == (
        ("my-llama", Decimal("0.10"), Decimal("0.30")),
        ("meta-llama/llama-3-70b", Decimal(1), Decimal(2)),
    )


@pytest.mark.parametrize("value", ["my-llama=0.10", "my-llama=cheap/dear", "=1/2", "x=-1/2"])
def test_malformed_prices_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="MODEL_PRICES has a malformed entry"):
        settings(MODEL_PRICES=value)
