"""Queries on installations, the workspaces of orgs installed org-wide, and OAuth states.

The token columns hold ciphertext: encrypting and decrypting is the caller's
(`bot.installs.store`). "" stands for "none" in `enterprise_id` and `team_id`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from db.dialects import insert_for
from db.install_models import SlackInstallation, SlackOAuthState, SlackOrgTeam


@dataclass(frozen=True)
class Key:
    """Which installation: the app's client id, the org ("" if none), the workspace ("": all)."""

    client_id: str
    enterprise_id: str
    team_id: str


@dataclass(frozen=True)
class BotRow:
    """The bot's part of an installation, tokens encrypted."""

    app_id: str | None
    enterprise_name: str | None
    team_name: str | None
    is_enterprise_install: bool
    bot_token_encrypted: str | None
    bot_id: str | None
    bot_user_id: str | None
    bot_scopes: str | None
    bot_refresh_token_encrypted: str | None
    bot_token_expires_at: int | None


@dataclass(frozen=True)
class InstallerRow:
    """Who installed the app, and their user token (encrypted) if it asked for one."""

    user_id: str | None
    user_token_encrypted: str | None
    user_scopes: str | None
    user_refresh_token_encrypted: str | None
    user_token_expires_at: int | None
    enterprise_url: str | None
    token_type: str | None


_BOT_COLUMNS = tuple(BotRow.__dataclass_fields__)
_INSTALLER_COLUMNS = tuple(InstallerRow.__dataclass_fields__)


def save(session: Session, key: Key, bot: BotRow, installer: InstallerRow | None = None) -> None:
    """Create or replace the installation at `key` (its installer's part too, when given)."""
    values = asdict(bot) | (asdict(installer) if installer is not None else {})
    statement = insert_for(session.get_bind().dialect.name, SlackInstallation.__table__).values(
        **asdict(key), **values
    )
    replaced: dict[str, Any] = {name: statement.excluded[name] for name in values}
    if installer is not None:
        replaced["installed_at"] = func.now()  # a new install, not a refreshed token
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["client_id", "enterprise_id", "team_id"],
            set_=replaced | {"updated_at": func.now()},
        )
    )


def find(session: Session, key: Key) -> SlackInstallation | None:
    """The installation at `key`."""
    return session.scalars(select(SlackInstallation).where(*_matches(key))).one_or_none()


def find_for_team(session: Session, client_id: str, team_id: str) -> SlackInstallation | None:
    """The installation that serves workspace `team_id`: its own, or its org's org-wide one."""
    own = session.scalars(
        select(SlackInstallation)
        .where(SlackInstallation.client_id == client_id, SlackInstallation.team_id == team_id)
        .order_by(SlackInstallation.updated_at.desc())
        .limit(1)
    ).one_or_none()
    if own is not None:
        return own
    return session.scalars(
        select(SlackInstallation)
        .join(SlackOrgTeam, SlackOrgTeam.enterprise_id == SlackInstallation.enterprise_id)
        .where(
            SlackInstallation.client_id == client_id,
            SlackInstallation.team_id == "",
            SlackInstallation.is_enterprise_install.is_(True),
            SlackOrgTeam.team_id == team_id,
        )
    ).one_or_none()


def rewrite_tokens(session: Session, rewrite: Callable[[str | None], str | None]) -> int:
    """Replace every encrypted token with `rewrite(it)` (a key rotation); how many rows."""
    rows = list(session.scalars(select(SlackInstallation).with_for_update()))
    for row in rows:
        row.bot_token_encrypted = rewrite(row.bot_token_encrypted)
        row.bot_refresh_token_encrypted = rewrite(row.bot_refresh_token_encrypted)
        row.user_token_encrypted = rewrite(row.user_token_encrypted)
        row.user_refresh_token_encrypted = rewrite(row.user_refresh_token_encrypted)
    return len(rows)


def clear_bot(session: Session, key: Key) -> None:
    """Forget the bot's tokens at `key` (revoked), keeping the rest of the row."""
    session.execute(
        update(SlackInstallation)
        .where(*_matches(key))
        .values(
            bot_token_encrypted=None,
            bot_refresh_token_encrypted=None,
            bot_token_expires_at=None,
            updated_at=func.now(),
        )
    )


def clear_user(session: Session, key: Key, user_id: str) -> None:
    """Forget the user token of `user_id` at `key` (revoked)."""
    session.execute(
        update(SlackInstallation)
        .where(*_matches(key))
        .where(SlackInstallation.user_id == user_id)
        .values(
            user_token_encrypted=None,
            user_refresh_token_encrypted=None,
            user_token_expires_at=None,
            updated_at=func.now(),
        )
    )


def remove(session: Session, key: Key) -> None:
    """Delete the installation at `key` (and, for an org-wide one, its org's workspaces)."""
    session.execute(delete(SlackInstallation).where(*_matches(key)))
    if key.team_id == "" and key.enterprise_id:
        session.execute(delete(SlackOrgTeam).where(SlackOrgTeam.enterprise_id == key.enterprise_id))


def note_org_team(session: Session, team_id: str, enterprise_id: str) -> None:
    """Remember that workspace `team_id` belongs to org `enterprise_id`."""
    statement = insert_for(session.get_bind().dialect.name, SlackOrgTeam.__table__).values(
        team_id=team_id, enterprise_id=enterprise_id
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["team_id"],
            set_={"enterprise_id": statement.excluded.enterprise_id, "seen_at": func.now()},
        )
    )


def add_state(session: Session, state: str, expires_at: datetime) -> None:
    """Store an OAuth state handed out for an install."""
    session.add(SlackOAuthState(state=state, expires_at=expires_at))


def consume_state(session: Session, state: str, now: datetime) -> bool:
    """Delete `state`; whether it was there and unexpired. Expired states go too."""
    session.execute(delete(SlackOAuthState).where(SlackOAuthState.expires_at <= now))
    deleted = session.execute(
        delete(SlackOAuthState).where(SlackOAuthState.state == state).returning(SlackOAuthState.id)
    )
    return deleted.first() is not None


def _matches(key: Key) -> tuple[ColumnElement[bool], ...]:
    return (
        SlackInstallation.client_id == key.client_id,
        SlackInstallation.enterprise_id == key.enterprise_id,
        SlackInstallation.team_id == key.team_id,
    )
