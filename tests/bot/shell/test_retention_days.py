"""RETENTION_DAYS: validated like every setting, and a daily purge in the running app."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import retention
from bot.shell.settings import Settings, SettingsError
from db.models import Message
from tests.bot.conversations.test_retention import seed
from tests.harness import SlackAppHarness


def test_unset_keeps_everything_forever() -> None:
    assert Settings.from_env({}, env_file=None).retention_days is None
    assert Settings.from_env({"RETENTION_DAYS": " "}, env_file=None).retention_days is None


@pytest.mark.parametrize(("value", "days"), [("90", 90), ("1", 1), ("30d", 30), ("36500", 36500)])
def test_days(value: str, days: int) -> None:
    assert Settings.from_env({"RETENTION_DAYS": value}, env_file=None).retention_days == days


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "90h", "36501", "²", "9999999"])
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^RETENTION_DAYS must be a whole number of days"):
        Settings.from_env({"RETENTION_DAYS": value}, env_file=None)


def old_messages(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


@pytest.mark.parametrize(("retention_days", "left"), [(30, 0), (None, 2)])
def test_the_running_app_purges_only_when_set(
    make_app: Callable[..., SlackAppHarness],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    retention_days: int | None,
    left: int,
) -> None:
    monkeypatch.setattr(retention, "FIRST_PURGE_AFTER", 0.05)
    seed(sessions, days_old=45)
    make_app(retention_days=retention_days)
    deadline = time.monotonic() + (10 if left == 0 else 0.5)
    while old_messages(sessions) != left and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2 if left else 0)
    assert old_messages(sessions) == left
