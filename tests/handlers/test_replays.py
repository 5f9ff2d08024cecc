"""Replayed and anonymous slash commands, signed as Slack signs them, into the real app."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CommandReceipt, ModelDefault, User
from handlers.replays import UNKNOWN_SENDER
from tests.harness import TEAM, SlackAppHarness

FORM = "application/x-www-form-urlencoded"


def command_body(app: SlackAppHarness, command: str, text: str, *, trigger_id: str) -> bytes:
    """A slash command's form, as Slack posts it, with a given trigger id."""
    return urlencode({
        "token": "unused", "team_id": TEAM, "team_domain": "example", "channel_id": "C0001",
        "channel_name": "general", "user_id": "U0001", "user_name": "u0001",
        "command": command, "text": text, "api_app_id": "A0001",
        "response_url": app.slack.response_url(), "trigger_id": trigger_id,
    }).encode()  # fmt: skip


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_replayed_command_runs_once(app: SlackAppHarness) -> None:
    body = command_body(app, "/model", "gpt-4o", trigger_id="13345224609.738474920.8088930838d")
    for _ in range(3):
        result = app.post(body, content_type=FORM)
        assert (result.status, result.body) == (200, "")
    app.wait_idle()

    assert len(app.slack.responses) == 1  # one answer, not three
    assert count(app.services.sessions, CommandReceipt) == 1
    with app.services.sessions() as session:
        assert session.scalars(select(ModelDefault.model)).all() == ["gpt-4o"]


def test_commands_with_different_trigger_ids_each_run(app: SlackAppHarness) -> None:
    for _ in range(2):
        assert app.command("/model", "").status == 200
    app.wait_idle()
    assert len(app.slack.responses) == 2


@pytest.mark.parametrize("command", ["/model", "/usage"])
@pytest.mark.parametrize(("team_id", "user"), [("", "U0001"), (TEAM, "")])
def test_a_command_without_a_team_or_user_id_is_refused_and_writes_nothing(
    app: SlackAppHarness, command: str, team_id: str, user: str
) -> None:
    result = app.command(command, "gpt-4o", team_id=team_id, user=user)
    app.wait_idle()
    assert result.status == 200
    assert result.json()["text"] == UNKNOWN_SENDER
    assert count(app.services.sessions, User) == 0
    assert count(app.services.sessions, CommandReceipt) == 0
    assert app.slack.responses == []
