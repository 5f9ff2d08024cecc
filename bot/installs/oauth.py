"""Bolt's OAuth flow and authorization on our stores, talking to SLACK_API_URL's Slack."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urljoin

from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.installs.store import DatabaseInstallationStore, DatabaseOAuthStateStore

# The bot scopes app.yaml asks for (tests/test_manifest.py holds the two together).
BOT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "im:write",
    "users:read",
    "users:read.email",
)
# Refresh a rotating token this long before it expires (Bolt's default; Slack's last 12 h).
ROTATE_MINUTES = 120


@dataclass(frozen=True)
class OAuth:
    """What `App(...)` takes to install into many workspaces."""

    settings: OAuthSettings
    authorize: InstallationStoreAuthorize


def build_oauth(
    *,
    client_id: str,
    client_secret: str,
    store: DatabaseInstallationStore,
    sessions: sessionmaker[Session],
    client: WebClient,
) -> OAuth:
    """Bolt's OAuth settings and authorization, every call going to `client`'s Slack."""
    logger = logging.getLogger("slack_bolt")
    settings = OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        installation_store=store,
        installation_store_bot_only=True,
        state_store=DatabaseOAuthStateStore(sessions),
        # Slack's page where an admin approves the install, on the same host as the Web API
        # (slack.com, GovSlack's slack-gov.com, or the tests' fake).
        authorization_url=authorize_url(client.base_url),
        token_rotation_expiration_minutes=ROTATE_MINUTES,
        logger=logger,
    )
    authorize = InstallationStoreAuthorize(
        logger=logger,
        installation_store=store,
        client_id=client_id,
        client_secret=client_secret,
        token_rotation_expiration_minutes=ROTATE_MINUTES,
        bot_only=True,
        # Bolt's own OAuthSettings builds its authorize without a client, so its token
        # rotation would call slack.com whatever SLACK_API_URL says: this one uses `client`.
        client=client,
        # auth.test once per token rather than on every request Slack sends.
        cache_enabled=True,
    )
    return OAuth(settings=settings, authorize=authorize)


def authorize_url(api_url: str) -> str:
    """`https://slack.com/oauth/v2/authorize` for `https://slack.com/api/`, and so on."""
    return urljoin(api_url, "../oauth/v2/authorize")
