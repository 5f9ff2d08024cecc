"""Starting the bot: migrations on start, health checks, and the choice of HTTP or Socket Mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect

from db.engine import normalize_url
from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.harness import SlackAppHarness, harness_settings

ROOT = Path(__file__).resolve().parents[3]


def test_the_app_migrates_an_empty_database_on_start(
    slack: FakeSlackAPI, model: FakeOpenAI, empty_db_url: str
) -> None:
    app = SlackAppHarness(
        harness_settings(slack, model, empty_db_url, auto_migrate=True), slack, model
    )
    try:
        app.mention("hello")
        app.wait_idle()
    finally:
        app.close()
    engine = create_engine(normalize_url(empty_db_url))
    assert {"users", "conversations", "messages", "responses"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
    assert slack.calls_to("chat.startStream")


def test_health_check_fails_when_the_database_is_unreachable(
    slack: FakeSlackAPI, model: FakeOpenAI, tmp_path: Path
) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    app = SlackAppHarness(harness_settings(slack, model, url), slack, model)
    try:
        result = app.get("/healthz")
    finally:
        app.close()
    assert result.status == 503


def _start_bot(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_with_an_app_token_the_bot_connects_in_socket_mode(
    slack: FakeSlackAPI, tmp_path: Path
) -> None:
    process = _start_bot({
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_APP_TOKEN": "xapp-test",
        "SLACK_API_URL": slack.base_url,
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
    })  # fmt: skip
    try:
        [call] = slack.wait_for("apps.connections.open", timeout=30)[:1]
        assert call.token == "xapp-test"  # Socket Mode, through SLACK_API_URL
    finally:
        process.kill()
        process.communicate()


def test_socket_mode_without_an_app_token_names_the_variable(tmp_path: Path) -> None:
    process = _start_bot(
        {"SLACK_BOT_TOKEN": "xoxb-test", "OPENAI_API_KEY": "k",
         "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
        "socket",
    )  # fmt: skip
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "SLACK_APP_TOKEN is not set" in stderr


def test_http_mode_without_a_bot_token_names_the_variable(tmp_path: Path) -> None:
    process = _start_bot({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, "serve")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.startswith("switchboard: SLACK_BOT_TOKEN is not set: put the app's Bot User")
    assert len(stderr.strip().splitlines()) == 1
    # A first run names every missing setting at once, where they go, and what to run next.
    assert "SLACK_SIGNING_SECRET is not set" in stderr
    assert "OPENAI_API_KEY is not set" in stderr
    assert ".env in the working directory" in stderr
    assert "`python -m bot check`" in stderr


def _slack_env(slack: FakeSlackAPI, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-revoked",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": slack.base_url,
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        **extra,
    }


def test_a_bot_token_slack_refuses_stops_the_start_with_one_line(
    slack: FakeSlackAPI, tmp_path: Path
) -> None:
    slack.fail("auth.test", "invalid_auth")
    process = _start_bot(_slack_env(slack, tmp_path), "serve")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.startswith("switchboard: SLACK_BOT_TOKEN was refused by Slack (invalid_auth): ")
    assert len(stderr.strip().splitlines()) == 1


def test_an_app_token_slack_refuses_stops_socket_mode_with_one_line(
    slack: FakeSlackAPI, tmp_path: Path
) -> None:
    slack.fail("apps.connections.open", "invalid_auth")
    process = _start_bot(_slack_env(slack, tmp_path, SLACK_APP_TOKEN="xapp-revoked"), "socket")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.startswith("switchboard: SLACK_APP_TOKEN was refused by Slack (invalid_auth): ")
    assert len(stderr.strip().splitlines()) == 1


def test_slack_out_of_reach_at_start_stops_with_one_line(
    slack: FakeSlackAPI, tmp_path: Path
) -> None:
    env = _slack_env(slack, tmp_path, SLACK_API_URL="http://127.0.0.1:1/api/")
    process = _start_bot(env, "serve")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.startswith("switchboard: Slack did not answer at http://127.0.0.1:1/api/ (")
    assert "SLACK_API_URL" in stderr
    assert len(stderr.strip().splitlines()) == 1
