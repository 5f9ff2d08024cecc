"""`client_for`: a workspace's own client, and one Slack refuses where there is no install."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy.orm import Session, sessionmaker

from bot.installs.clients import WorkspaceClients
from bot.installs.crypto import TokenCipher
from bot.installs.store import DatabaseInstallationStore
from tests.bot.installs.oauth_helpers import CLIENT_ID, KEY
from tests.fakes import FakeSlackAPI
from tests.fakes.slack_oauth import FakeWorkspace
from tests.harness import SlackAppHarness


def test_each_workspace_gets_its_token_and_one_without_an_install_none(
    sessions: sessionmaker[Session], slack: FakeSlackAPI
) -> None:
    store = DatabaseInstallationStore(sessions, client_id=CLIENT_ID, cipher=TokenCipher([KEY]))
    slack.oauth.add_token("xoxb-acme", FakeWorkspace(team_id="T0ACME", bot_user_id="UA"))
    store.save(
        Installation(
            team_id="T0ACME", bot_token="xoxb-acme", bot_id="B1", bot_user_id="UA", user_id="U1"
        )
    )
    clients = WorkspaceClients(
        store, make_client=lambda token: WebClient(token=token, base_url=slack.base_url)
    )

    clients("T0ACME").chat_postMessage(channel="C1", text="hi")
    with pytest.raises(SlackApiError) as refused:
        clients("T0GONE").chat_postMessage(channel="C2", text="hi")

    assert refused.value.response["error"] == "not_authed"
    assert [call.token for call in slack.calls_to("chat.postMessage")] == ["xoxb-acme", None]


def test_one_workspace_mode_takes_slacks_uninstall_events_quietly(app: SlackAppHarness) -> None:
    assert app.event({"type": "app_uninstalled", "event_ts": app.next_ts()}).status == 200
    assert app.event({"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}}).status == 200
