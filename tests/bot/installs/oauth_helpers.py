"""Installing the real app into fake workspaces, and events from them, as Slack sends them."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.fernet import Fernet

from tests.fakes.slack_oauth import FakeWorkspace
from tests.harness import HttpResult, SlackAppHarness, _send

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "test-client-secret"
KEY = Fernet.generate_key().decode()


def oauth_settings(**overrides: Any) -> dict[str, Any]:
    """Overrides for `make_app`: OAuth on, no single bot token."""
    return {
        "slack_bot_token": None,
        "slack_client_id": CLIENT_ID,
        "slack_client_secret": CLIENT_SECRET,
        "encryption_key": (KEY,),
    } | overrides


def install(app: SlackAppHarness, code: str, workspace: FakeWorkspace) -> HttpResult:
    """An admin clicks "Add to Slack", approves, and comes back to the redirect URL."""
    app.slack.oauth.app(CLIENT_ID, CLIENT_SECRET)
    app.slack.oauth.add_code(code, workspace)
    page = app.get("/slack/install")
    assert page.status == 200, page
    cookie = page.headers["Set-Cookie"].split(";")[0]
    state = cookie.split("=", 1)[1]
    # The page links to Slack's authorize URL on SLACK_API_URL's host, with our state.
    link = next(part for part in page.body.split('"') if "/oauth/v2/authorize" in part)
    link = link.replace("&amp;", "&")
    assert link.startswith(app.slack.url + "/oauth/v2/authorize?")
    query = parse_qs(urlsplit(link).query)
    assert query["state"] == [state] and query["client_id"] == [CLIENT_ID]
    redirect = f"{app.url}/slack/oauth_redirect?{urlencode({'code': code, 'state': state})}"
    return _send(urllib.request.Request(redirect, headers={"Cookie": cookie}))


def envelope(
    event: dict[str, Any], *, team: str, bot_user: str, enterprise: str | None = None,
    org_wide: bool = False,
) -> bytes:  # fmt: skip
    """An Events API callback from workspace `team` (of org `enterprise`, maybe org-wide)."""
    return json.dumps(
        {
            "token": "unused",
            "team_id": team,
            "enterprise_id": enterprise,
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [
                {
                    "enterprise_id": enterprise,
                    "team_id": None if org_wide else team,
                    "user_id": bot_user,
                    "is_bot": True,
                    "is_enterprise_install": org_wide,
                }
            ],
            "is_ext_shared_channel": False,
        }
    ).encode()


def mention(
    app: SlackAppHarness, *, team: str, bot_user: str, channel: str, user: str = "U0001",
    text: str = "hello", **where: Any,
) -> str:  # fmt: skip
    """Mention the bot in a channel of workspace `team`; the message ts."""
    ts = app.next_ts()
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{bot_user}> {text}",
        "ts": ts,
        "channel": channel,
        "channel_type": "channel",
        "team": team,
        "event_ts": ts,
    }
    body = envelope(event, team=team, bot_user=bot_user, **where)
    result = app.post(body, content_type="application/json")
    assert result.status == 200, result
    return ts


def send_event(app: SlackAppHarness, event: dict[str, Any], **where: Any) -> HttpResult:
    """Deliver any event (`team` and `bot_user` given in `where`)."""
    return app.post(envelope(event, **where), content_type="application/json")
