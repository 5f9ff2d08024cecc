"""slack_sdk's installation and OAuth state stores on our tables, tokens encrypted.

slack_sdk's own SQLAlchemy stores create their tables themselves and keep tokens in plain
text; these keep the same contract (find the newest bot of an org or workspace, org-wide
installs keyed by the org alone) on tables Alembic owns.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy.orm import Session, sessionmaker

from bot.installs.crypto import TokenCipher
from db import installations
from db.install_models import SlackInstallation
from db.installations import BotRow, InstallerRow, Key

log = logging.getLogger(__name__)


class DatabaseInstallationStore(InstallationStore):
    """Bolt's `InstallationStore`: one row per workspace or org, tokens Fernet-encrypted."""

    def __init__(
        self, sessions: sessionmaker[Session], *, client_id: str, cipher: TokenCipher
    ) -> None:
        self._sessions = sessions
        self._client_id = client_id
        self._cipher = cipher

    @property
    def logger(self) -> logging.Logger:
        """The logger slack_sdk and Bolt expect a store to have."""
        return log

    # --- saving -----------------------------------------------------------------------------
    def save(self, installation: Installation) -> None:
        """Store a new installation (the OAuth flow's last step), replacing an older one."""
        key = self._key(installation.enterprise_id, installation.team_id, installation)
        installer = InstallerRow(
            user_id=installation.user_id,
            user_token_encrypted=self._cipher.encrypt(installation.user_token),
            user_scopes=",".join(installation.user_scopes or ()) or None,
            user_refresh_token_encrypted=self._cipher.encrypt(installation.user_refresh_token),
            user_token_expires_at=installation.user_token_expires_at,
            enterprise_url=installation.enterprise_url,
            token_type=installation.token_type,
        )
        with self._sessions.begin() as session:
            installations.save(session, key, self._bot_row(installation.to_bot()), installer)

    def save_bot(self, bot: Bot) -> None:
        """Store a bot's refreshed tokens (token rotation)."""
        with self._sessions.begin() as session:
            installations.save(
                session, self._key(bot.enterprise_id, bot.team_id, bot), self._bot_row(bot)
            )

    # --- finding ----------------------------------------------------------------------------
    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        """The bot of a workspace, or of an org installed org-wide (then `team_id` is ignored)."""
        key = self._lookup_key(enterprise_id, team_id, is_enterprise_install)
        with self._sessions() as session:
            row = installations.find(session, key)
            return self._bot(row) if row is not None else None

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The installation of a workspace or org; None when `user_id` is not its installer."""
        key = self._lookup_key(enterprise_id, team_id, is_enterprise_install)
        with self._sessions() as session:
            row = installations.find(session, key)
            if row is None or (user_id is not None and row.user_id != user_id):
                return None
            bot = self._bot(row)
            return Installation(
                app_id=row.app_id,
                enterprise_id=row.enterprise_id or None,
                enterprise_name=row.enterprise_name,
                enterprise_url=row.enterprise_url,
                team_id=row.team_id or None,
                team_name=row.team_name,
                bot_token=bot.bot_token if bot else None,
                bot_id=row.bot_id,
                bot_user_id=row.bot_user_id,
                bot_scopes=row.bot_scopes or "",
                bot_refresh_token=bot.bot_refresh_token if bot else None,
                bot_token_expires_at=row.bot_token_expires_at,
                user_id=row.user_id or "",
                user_token=self._cipher.decrypt(row.user_token_encrypted),
                user_scopes=row.user_scopes or "",
                user_refresh_token=self._cipher.decrypt(row.user_refresh_token_encrypted),
                user_token_expires_at=row.user_token_expires_at,
                is_enterprise_install=row.is_enterprise_install,
                token_type=row.token_type,
                installed_at=_timestamp(row.installed_at),
            )

    def find_bot_for_team(self, team_id: str) -> Bot | None:
        """The bot that serves workspace `team_id`: its own install or its org's org-wide one."""
        with self._sessions() as session:
            row = installations.find_for_team(session, self._client_id, team_id)
            return self._bot(row) if row is not None else None

    # --- deleting (app_uninstalled, tokens_revoked) ------------------------------------------
    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget the bot's tokens of a workspace or org."""
        with self._sessions.begin() as session:
            installations.clear_bot(session, self._delete_key(enterprise_id, team_id))

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Forget one user's token, or (no `user_id`) the whole installation."""
        key = self._delete_key(enterprise_id, team_id)
        with self._sessions.begin() as session:
            if user_id is not None:
                installations.clear_user(session, key, user_id)
            else:
                installations.remove(session, key)

    def delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget everything of a workspace or org (the app was uninstalled)."""
        with self._sessions.begin() as session:
            installations.remove(session, self._delete_key(enterprise_id, team_id))

    def reencrypt(self) -> int:
        """Encrypt every stored token with the first key (after a key rotation); how many rows."""
        with self._sessions.begin() as session:
            return installations.rewrite_tokens(session, self._cipher.reencrypt)

    # --- org-wide installs ------------------------------------------------------------------
    def note_org_team(self, *, team_id: str, enterprise_id: str) -> None:
        """Remember that workspace `team_id` is served by org `enterprise_id`'s installation."""
        with self._sessions.begin() as session:
            installations.note_org_team(session, team_id, enterprise_id)

    # --- rows <-> slack_sdk's models --------------------------------------------------------
    def _key(self, enterprise_id: str | None, team_id: str | None, what: Any) -> Key:
        org_wide = bool(getattr(what, "is_enterprise_install", False))
        return Key(self._client_id, enterprise_id or "", "" if org_wide else team_id or "")

    def _lookup_key(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> Key:
        # slack_sdk's contract: an org-wide install answers for every workspace of its org.
        team = "" if is_enterprise_install or team_id is None else team_id
        return Key(self._client_id, enterprise_id or "", team)

    def _delete_key(self, enterprise_id: str | None, team_id: str | None) -> Key:
        # Bolt passes the request's ids: for an org-wide install events carry no team.
        return Key(self._client_id, enterprise_id or "", team_id or "")

    def _bot_row(self, bot: Bot) -> BotRow:
        return BotRow(
            app_id=bot.app_id,
            enterprise_name=bot.enterprise_name,
            team_name=bot.team_name,
            is_enterprise_install=bool(bot.is_enterprise_install),
            bot_token_encrypted=self._cipher.encrypt(bot.bot_token),
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=",".join(bot.bot_scopes or ()) or None,
            bot_refresh_token_encrypted=self._cipher.encrypt(bot.bot_refresh_token),
            bot_token_expires_at=bot.bot_token_expires_at,
        )

    def _bot(self, row: SlackInstallation) -> Bot | None:
        token = self._cipher.decrypt(row.bot_token_encrypted)
        if token is None:
            return None  # revoked
        return Bot(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id or None,
            enterprise_name=row.enterprise_name,
            team_id=row.team_id or None,
            team_name=row.team_name,
            bot_token=token,
            bot_id=row.bot_id or "",
            bot_user_id=row.bot_user_id or "",
            bot_scopes=row.bot_scopes or "",
            bot_refresh_token=self._cipher.decrypt(row.bot_refresh_token_encrypted),
            bot_token_expires_at=row.bot_token_expires_at,
            is_enterprise_install=row.is_enterprise_install,
            installed_at=_timestamp(row.installed_at),
        )


class DatabaseOAuthStateStore(OAuthStateStore):
    """Bolt's `OAuthStateStore`: each `state` is good once, for `expiration_seconds`."""

    def __init__(self, sessions: sessionmaker[Session], *, expiration_seconds: int = 600) -> None:
        self._sessions = sessions
        self._lifetime = timedelta(seconds=expiration_seconds)

    @property
    def logger(self) -> logging.Logger:
        """The logger slack_sdk expects a store to have."""
        return log

    def issue(self, *args: Any, **kwargs: Any) -> str:
        """A new state for `/slack/install`."""
        state = secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            installations.add_state(session, state, datetime.now(UTC) + self._lifetime)
        return state

    def consume(self, state: str) -> bool:
        """Whether `state` was issued and is unexpired; it is used up either way."""
        with self._sessions.begin() as session:
            return installations.consume_state(session, state, datetime.now(UTC))


def _timestamp(moment: datetime) -> float:
    # SQLite hands back naive datetimes; we stored UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
