"""OAuth's settings: what is required with it, keys that are not keys, Socket Mode refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.installs.crypto import InvalidToken, TokenCipher
from bot.shell.settings import Settings, SettingsError
from tests.bot.shell.test_cli import run_bot

BASE = {"OPENAI_API_KEY": "k", "SLACK_SIGNING_SECRET": "s"}


def settings(**env: str) -> Settings:
    return Settings.from_env(BASE | env, env_file=None)


def test_one_bot_token_is_one_workspace_as_before() -> None:
    one = settings(SLACK_BOT_TOKEN="xoxb-1")
    assert not one.oauth
    one.require_slack_credentials()
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is not set"):
        settings().require_slack_credentials()


def test_oauth_needs_the_client_secret_and_an_encryption_key() -> None:
    with pytest.raises(SettingsError, match="SLACK_CLIENT_SECRET is not set"):
        settings(SLACK_CLIENT_ID="1.2").require_slack_credentials()
    with pytest.raises(SettingsError, match=r"ENCRYPTION_KEY is not set: .*Fernet\.generate_key"):
        settings(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="x").require_slack_credentials()
    key = Fernet.generate_key().decode()
    full = settings(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="x", ENCRYPTION_KEY=key)
    full.require_slack_credentials()  # no bot token needed
    assert full.oauth and full.encryption_key == (key,)
    assert key not in repr(full)


def test_a_key_that_is_not_a_fernet_key_is_named_by_position_never_echoed() -> None:
    good = Fernet.generate_key().decode()
    with pytest.raises(SettingsError, match="ENCRYPTION_KEY key 2 is not a Fernet key") as error:
        settings(ENCRYPTION_KEY=f"{good}, not-a-key-secret")
    assert "not-a-key-secret" not in str(error.value)


def test_oauth_refuses_socket_mode() -> None:
    key = Fernet.generate_key().decode()
    oauth = settings(SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="x", ENCRYPTION_KEY=key)
    with pytest.raises(SettingsError, match="needs HTTP mode"):
        oauth.require_slack_credentials(socket_mode=True)


def test_keys_rotate_the_new_key_first_the_old_ones_still_decrypt() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = TokenCipher([old]).encrypt("xoxb-secret")

    rotated = TokenCipher([new, old])
    assert rotated.decrypt(stored) == "xoxb-secret"
    again = rotated.reencrypt(stored)
    assert TokenCipher([new]).decrypt(again) == "xoxb-secret"
    with pytest.raises(InvalidToken):
        TokenCipher([new]).decrypt(stored)


def test_check_and_socket_mode_name_oauths_missing_settings(tmp_path: Path) -> None:
    env = BASE | {
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "x",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    check = run_bot("check", env=env, cwd=tmp_path)
    assert "FAIL ENCRYPTION_KEY: ENCRYPTION_KEY is not set" in check.stdout
    assert "SLACK_BOT_TOKEN" not in check.stdout

    key = Fernet.generate_key().decode()
    socket = run_bot(
        "socket", env=env | {"ENCRYPTION_KEY": key, "SLACK_APP_TOKEN": "xapp-1"}, cwd=tmp_path
    )
    assert socket.returncode == 2
    assert "needs HTTP mode" in socket.stderr
