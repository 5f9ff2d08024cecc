"""The app's installations in workspaces and Enterprise Grid orgs, and OAuth states.

Imported by `db.models`, so that `Base.metadata` (and Alembic) holds these tables too. Token
columns hold Fernet ciphertext (`bot.installs.crypto`), never a token in plain text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, created, intpk, slack_id, updated


class SlackInstallation(Base):
    """The app installed in one workspace, or org-wide in a Grid org (then `team_id` is "").

    One row per (app, org, workspace): a reinstall replaces the row, so the newest tokens are
    the only ones kept. "" stands for "none" in `enterprise_id` and `team_id`, so that the
    unique constraint holds on both databases (NULLs never collide in one).
    """

    __tablename__ = "slack_installations"
    __table_args__ = (UniqueConstraint("client_id", "enterprise_id", "team_id"),)

    id: Mapped[intpk]
    client_id: Mapped[str] = mapped_column(String(64))
    app_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_id: Mapped[str] = mapped_column(String(32), default="")
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_url: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str] = mapped_column(String(32), default="")
    team_name: Mapped[str | None] = mapped_column(String(200))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    # The bot: its token (and refresh token, with token rotation) encrypted.
    bot_token_encrypted: Mapped[str | None] = mapped_column(Text)
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(Text)
    bot_refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    # Unix seconds, as slack_sdk counts them (None: the token does not expire).
    bot_token_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # Who installed it, and their user token when the app asks for user scopes (it does not).
    user_id: Mapped[str | None] = mapped_column(String(32))
    user_token_encrypted: Mapped[str | None] = mapped_column(Text)
    user_scopes: Mapped[str | None] = mapped_column(Text)
    user_refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    user_token_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    token_type: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[created]
    updated_at: Mapped[updated]


class SlackOrgTeam(Base):
    """A workspace of a Grid org the app is installed in org-wide, as seen in its requests.

    Replies are written outside Slack's request, knowing only the workspace: this row finds
    the org's installation (and its token) for it.
    """

    __tablename__ = "slack_org_teams"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[slack_id] = mapped_column(index=True)
    seen_at: Mapped[created]


class SlackOAuthState(Base):
    """A `state` handed out by `/slack/install`, good once, until it expires."""

    __tablename__ = "slack_oauth_states"

    id: Mapped[intpk]
    state: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
