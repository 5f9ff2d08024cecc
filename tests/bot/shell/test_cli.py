"""The command line, run as a real process: `python -m bot migrate|check|--help`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAI, FakeSlackAPI

READY = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "secret", "OPENAI_API_KEY": "k"}


@pytest.fixture
def ready(slack: FakeSlackAPI, model: FakeOpenAI) -> dict[str, str]:
    """Every required setting, with Slack and the model endpoint on the loopback fakes."""
    return READY | {"SLACK_API_URL": slack.base_url, "OPENAI_BASE_URL": model.base_url}


def run_bot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` with only `env` (plus PATH) as its environment."""
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).parents[3])}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=base | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _existing(url: str) -> str:
    """`url`, its SQLite file created empty (check would say a missing one does not exist)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).touch()
    return url


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_bot("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "socket", "migrate", "check", "usage"):
        assert command in result.stdout


def test_migrate_then_check_passes(
    empty_db_url: str, tmp_path: Path, ready: dict[str, str], model: FakeOpenAI
) -> None:
    env = ready | {"DATABASE_URL": empty_db_url}
    assert run_bot("migrate", env=env, cwd=tmp_path).returncode == 0

    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout
    assert "OK   migrations" in result.stdout
    assert "OK   slack\n" in result.stdout
    assert f"OK   model endpoint: {len(model.models)} models\n" in result.stdout


def test_check_reports_an_unmigrated_database(
    empty_db_url: str, tmp_path: Path, ready: dict[str, str]
) -> None:
    env = ready | {"DATABASE_URL": _existing(empty_db_url), "AUTO_MIGRATE": "false"}
    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL migrations" in result.stdout
    assert "python -m bot migrate" in result.stdout


def test_check_says_pending_migrations_are_applied_on_start_with_auto_migrate(
    empty_db_url: str, tmp_path: Path, ready: dict[str, str]
) -> None:
    result = run_bot("check", env=ready | {"DATABASE_URL": _existing(empty_db_url)}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "OK   migrations: database is at no revision, newest is " in result.stdout
    assert "; applied on start (AUTO_MIGRATE)\n" in result.stdout
    assert "python -m bot migrate" not in result.stdout


def test_check_prints_one_line_per_item_and_nothing_else(
    empty_db_url: str, tmp_path: Path, ready: dict[str, str]
) -> None:
    env = ready | {"DATABASE_URL": empty_db_url, "LOG_LEVEL": "DEBUG"}
    assert run_bot("migrate", env=env, cwd=tmp_path).returncode == 0
    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) >= 6
    assert all(line.startswith(("OK   ", "FAIL ")) for line in lines), result.stdout


def test_check_fails_on_models_the_endpoint_does_not_offer(
    tmp_path: Path, ready: dict[str, str]
) -> None:
    env = ready | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "DEFAULT_MODEL": "llama3",
        "ALLOWED_MODELS": "fast=gpt-4o-mini,gpt-5",
    }
    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL models")]
    assert line.startswith("FAIL models: the endpoint does not offer llama3, gpt-5 (")
    assert "gpt-4o-mini" not in line.split("(")[0]


def test_check_passes_the_models_the_endpoint_offers(tmp_path: Path, ready: dict[str, str]) -> None:
    env = ready | {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "ALLOWED_MODELS": "gpt-4o"}
    result = run_bot("check", env=env, cwd=tmp_path)
    assert "OK   models: gpt-4o-mini, gpt-4o\n" in result.stdout


@pytest.mark.parametrize(
    ("auto_migrate", "code", "line"),
    [
        ("true", 0, "OK   database: {db} does not exist yet; created on start (AUTO_MIGRATE)"),
        ("false", 1, "FAIL database: {db} does not exist: run `python -m bot migrate`."),
    ],
)
def test_check_creates_no_database_file(
    auto_migrate: str, code: int, line: str, tmp_path: Path, ready: dict[str, str]
) -> None:
    db = tmp_path / "new.db"
    env = ready | {"DATABASE_URL": f"sqlite:///{db}", "AUTO_MIGRATE": auto_migrate}
    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == code, result.stdout
    assert line.format(db=db) + "\n" in result.stdout
    assert not db.exists()


def test_usage_creates_no_database_file(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = run_bot("usage", env={"DATABASE_URL": f"sqlite:///{db}"}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"switchboard: {db} does not exist: run `python -m bot migrate` (or start the bot) first.\n"
    )
    assert not db.exists()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "Connection refused"),
        ("sqlite:////nonexistent-dir/x.db", "unable to open database file"),
    ],
)
def test_check_with_a_bad_database_url_fails(
    url: str, reason: str, tmp_path: Path, ready: dict[str, str]
) -> None:
    result = run_bot("check", env=ready | {"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL database" in result.stdout
    assert reason in result.stdout


def test_check_names_a_missing_bot_token(tmp_path: Path, ready: dict[str, str]) -> None:
    env = {k: v for k, v in ready.items() if k != "SLACK_BOT_TOKEN"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL SLACK_BOT_TOKEN: SLACK_BOT_TOKEN is not set" in result.stdout


def test_malformed_setting_stops_with_one_line(tmp_path: Path) -> None:
    result = run_bot("migrate", env={"PORT": "http"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "switchboard: PORT must be a whole number, for example 3000."


def test_env_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'from-env-file.db'}\n")
    assert run_bot("migrate", env={}, cwd=tmp_path).returncode == 0
    assert (tmp_path / "from-env-file.db").exists()


def test_check_says_why_slack_refuses_the_token(
    tmp_path: Path, ready: dict[str, str], slack: FakeSlackAPI
) -> None:
    slack.fail("auth.test", "invalid_auth")
    result = run_bot(
        "check", env=ready | {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, cwd=tmp_path
    )
    assert result.returncode == 1
    assert (
        "FAIL slack: SLACK_BOT_TOKEN was refused by Slack (invalid_auth): copy the Bot User "
        "OAuth Token (xoxb-…) again" in result.stdout
    )
    assert "OK   model endpoint: 3 models\n" in result.stdout


def test_check_says_why_the_model_endpoint_fails(tmp_path: Path, ready: dict[str, str]) -> None:
    env = ready | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
    }
    result = run_bot("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if "model endpoint" in line]
    assert line.startswith("FAIL model endpoint: cannot reach http://127.0.0.1:1/v1/models")
    assert "OK   slack\n" in result.stdout
