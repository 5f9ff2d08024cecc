"""`python -m bot purge`, run as a real process on a seeded database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Base, Conversation, Message, Response
from tests.bot.conversations.test_retention import seed
from tests.bot.shell.test_cli import run_bot


def counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as session:

        def count(model: type[Base]) -> int:
            return session.scalar(select(func.count()).select_from(model)) or 0

        return count(Message), count(Conversation), count(Response)


def test_dry_run_then_purge(db_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    seed(sessions, days_old=100, questions=2)
    seed(sessions, days_old=100, last_turn="running")
    seed(sessions, days_old=3)
    env = {"DATABASE_URL": db_url}

    dry = run_bot("purge", "--older-than", "90d", "--dry-run", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would remove 4 messages and 1 conversations older than ")
    assert counts(sessions) == (7, 3, 3)

    done = run_bot("purge", "--older-than", "2160h", "--batch-size", "1", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Removed 4 messages and 1 conversations older than ")
    assert "every responses row is kept" in done.stdout
    assert counts(sessions) == (3, 2, 3)


def test_purge_of_one_workspace(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(sessions, days_old=100, team="T1")
    seed(sessions, days_old=100, team="T2")
    result = run_bot(
        "purge", "--older-than", "30d", "--team", "T2", env={"DATABASE_URL": db_url}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Removed 2 messages and 1 conversations in workspace T2 ")
    assert counts(sessions) == (2, 1, 2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--older-than", "abc"], "--older-than must be a positive number of days or hours"),
        (["--older-than=-5d"], "--older-than must be a positive number of days or hours"),
        (["--older-than", "-5d"], "--older-than: expected one argument"),
        (["--older-than", "0d"], "--older-than must be a positive number of days or hours"),
        (["--older-than", "90"], "such as 90d or 36h, not '90'"),
        ([], "purge needs --older-than"),
        (["--older-than", "90d", "--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_arguments_fail_in_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    database = tmp_path / "untouched.db"
    result = run_bot("purge", *args, env={"DATABASE_URL": f"sqlite:///{database}"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert result.stderr.startswith("switchboard: ")
    assert not database.exists()
