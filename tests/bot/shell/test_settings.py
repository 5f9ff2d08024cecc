"""Settings: read once, validated, and never leaking secrets into messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.shell.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({}, env_file=None)
    assert settings.database_url == "sqlite:///switchboard.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert settings.auto_migrate is True


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DEFAULT_MODEL=from-file\nPORT=4000\n")
    settings = Settings.from_env({"DEFAULT_MODEL": "from-env"}, env_file=env_file)
    assert (settings.default_model, settings.port) == ("from-env", 4000)


def test_allowed_models_with_aliases() -> None:
    settings = Settings.from_env({"ALLOWED_MODELS": "gpt-4o, fast=gpt-4o-mini ,"}, env_file=None)
    assert settings.allowed_models == (("gpt-4o", "gpt-4o"), ("fast", "gpt-4o-mini"))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "abc", "PORT must be a whole number"),
        ("PORT", "70000", "PORT must be between 1 and 65535"),
        ("ALLOWED_MODELS", "fast=", "ALLOWED_MODELS has a malformed entry"),
        ("ADMIN_USER_IDS", "U123ABC,bob", "ADMIN_USER_IDS has 'bob'"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must be a URL for SQLite or PostgreSQL"),
        ("DATABASE_URL", "postgresql://u:pw@db:notaport/x", "DATABASE_URL is not a well-formed"),
        ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL must be an http"),
        ("AUTO_MIGRATE", "perhaps", "AUTO_MIGRATE must be true or false"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("MODEL_TIMEOUT", "-3", "MODEL_TIMEOUT must be a positive number"),
    ],
)
def test_malformed_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.from_env({name: value}, env_file=None)


def test_wrong_token_kind_names_variable_not_value() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SLACK_BOT_TOKEN": "xapp-super-secret"}, env_file=None)
    assert "SLACK_BOT_TOKEN" in str(raised.value)
    assert "super-secret" not in str(raised.value)


def test_require_names_the_missing_variable() -> None:
    settings = Settings.from_env({}, env_file=None)
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is not set"):
        settings.require("SLACK_BOT_TOKEN")


def test_oauth_mode_names_every_missing_setting_at_once() -> None:
    settings = Settings.from_env({"SLACK_CLIENT_ID": "123.456"}, env_file=None)
    with pytest.raises(SettingsError) as raised:
        settings.require_slack_credentials("OPENAI_API_KEY")
    message = str(raised.value)
    for name in ("SLACK_CLIENT_SECRET", "ENCRYPTION_KEY", "OPENAI_API_KEY"):
        assert f"{name} is not set" in message
    assert "SLACK_CLIENT_ID is not set" not in message


def test_secrets_are_not_in_repr() -> None:
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-secret",
            "OPENAI_API_KEY": "sk-secret",
            "SLACK_SIGNING_SECRET": "secret",
            "DATABASE_URL": "postgresql://u:secret@db/x",
        },
        env_file=None,
    )
    assert "secret" not in repr(settings)


def test_postgres_urls_are_accepted() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgres://u:p@db/x"}, env_file=None)
    assert settings.database_url == "postgres://u:p@db/x"


def test_suggested_prompts() -> None:
    assert Settings.from_env({}, env_file=None).suggested_prompts == ()
    value = "Summarise | Summarise this thread ; Translate|Translate to French: bonjour|salut;"
    assert Settings.from_env({"SUGGESTED_PROMPTS": value}, env_file=None).suggested_prompts == (
        ("Summarise", "Summarise this thread"),
        ("Translate", "Translate to French: bonjour|salut"),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Summarise", "SUGGESTED_PROMPTS has a malformed entry 'Summarise': use title|message"),
        ("|message", "SUGGESTED_PROMPTS has a malformed entry '|message'"),
        ("a|1;b|2;c|3;d|4;e|5", "SUGGESTED_PROMPTS has 5 prompts; Slack shows at most 4"),
    ],
)
def test_malformed_suggested_prompts_name_the_variable(value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match="for example") as problem:
        Settings.from_env({"SUGGESTED_PROMPTS": value}, env_file=None)
    assert str(problem.value).startswith(expected)
