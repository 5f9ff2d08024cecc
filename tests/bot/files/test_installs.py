"""With many workspaces, a shared file is downloaded with its own workspace's token."""

from __future__ import annotations

from collections.abc import Callable

from tests.bot.installs.oauth_helpers import install, oauth_settings, send_event
from tests.fakes import FakeOpenAI, FakeSlackAPI
from tests.fakes.slack_oauth import FakeWorkspace
from tests.harness import SlackAppHarness

ACME = FakeWorkspace(team_id="T0ACME", bot_user_id="UACMEBOT", team_name="Acme")
GLOBEX = FakeWorkspace(team_id="T0GLOBEX", bot_user_id="UGLOBEXBOT", team_name="Globex")


def test_each_workspaces_files_are_fetched_with_its_own_token(
    make_app: Callable[..., SlackAppHarness], slack: FakeSlackAPI, model: FakeOpenAI
) -> None:
    app = make_app(**oauth_settings())
    assert install(app, "code-acme", ACME).status == 200
    assert install(app, "code-globex", GLOBEX).status == 200
    tokens = {w.team_id: t for t, w in slack.oauth.tokens().items()}
    acme_file = slack.add_file("acme.txt", b"acme plans", mimetype="text/plain",
                               token=tokens["T0ACME"], team_id="T0ACME")  # fmt: skip

    def share(team: str, bot_user: str, channel: str) -> None:
        ts = app.next_ts()
        event = {
            "type": "app_mention", "user": "U0001", "text": f"<@{bot_user}> read it",
            "ts": ts, "channel": channel, "channel_type": "channel", "team": team,
            "event_ts": ts, "files": [acme_file],
        }  # fmt: skip
        assert send_event(app, event, team=team, bot_user=bot_user).status == 200
        app.wait_idle()

    share("T0ACME", "UACMEBOT", "CACME")
    assert "acme plans" in str(model.completions()[-1]["messages"][-1]["content"])
    # The same file's link shared into another workspace: its token is not Acme's, so Slack
    # answers with the sign-in page and the file is named as unreadable.
    share("T0GLOBEX", "UGLOBEXBOT", "CGLOBEX")
    assert "acme plans" not in str(model.completions()[-1]["messages"][-1]["content"])
    assert [d.token for d in slack.downloads()] == [tokens["T0ACME"], tokens["T0GLOBEX"]]
