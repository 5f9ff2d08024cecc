"""Queries on the chain of model defaults: workspace, channel and DM defaults, and the model
chosen for a person's next message. They take a Session and never commit.

Which default wins is decided in `bot.model_choice.chain`, not here: these read and write rows.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from db import queries
from db.models import ModelDefault, PendingOverride, WorkspaceSettings

# The model defaults that apply where a thread starts: its channel's (or, in a DM, the
# person's) and the workspace's, in one read.
_SCOPE_DEFAULT = (
    select(ModelDefault.model)
    .where(
        ModelDefault.team_id == bindparam("team_id"),
        ModelDefault.scope == bindparam("scope"),
        ModelDefault.scope_id == bindparam("scope_id"),
    )
    .scalar_subquery()
)
_WORKSPACE_DEFAULT = (
    select(ModelDefault.model)
    .where(ModelDefault.team_id == bindparam("team_id"), ModelDefault.scope == "workspace")
    .scalar_subquery()
)
_DEFAULTS_HERE = select(_SCOPE_DEFAULT, _WORKSPACE_DEFAULT)


def defaults_here(
    session: Session, *, team_id: str, scope: str, scope_id: str
) -> tuple[str | None, str | None]:
    """The default model of this channel or DM (`scope`), and the workspace's; None if unset."""
    row = session.execute(
        _DEFAULTS_HERE, {"team_id": team_id, "scope": scope, "scope_id": scope_id}
    ).one()
    return row[0], row[1]


def workspace_default(session: Session, team_id: str) -> str | None:
    """The workspace default an admin set, if any."""
    return session.scalars(
        select(ModelDefault.model).where(
            ModelDefault.team_id == team_id, ModelDefault.scope == "workspace"
        )
    ).first()


def set_default(
    session: Session, *, team_id: str, scope: str, scope_id: str, model: str, set_by: str
) -> None:
    """Set (or replace) the default of a workspace, channel or user's DMs."""
    queries.insert_or_update(
        session,
        ModelDefault,
        {"team_id": team_id, "scope": scope, "scope_id": scope_id},
        {"model": model, "set_by": set_by},
    )


def delete_default(session: Session, *, team_id: str, scope: str, scope_id: str) -> bool:
    """Clear a default; whether there was one."""
    result = session.execute(
        delete(ModelDefault).where(
            ModelDefault.team_id == team_id,
            ModelDefault.scope == scope,
            ModelDefault.scope_id == scope_id,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_pending(
    session: Session, *, team_id: str, channel_id: str, slack_user_id: str, model: str
) -> None:
    """Choose the model of a person's next message in a channel (the latest choice wins)."""
    # The database decides, so two quick presses of the button cannot collide.
    queries.insert_or_update(
        session,
        PendingOverride,
        {"team_id": team_id, "channel_id": channel_id, "slack_user_id": slack_user_id},
        {"model": model},
    )


# Run on every message: built once, executed with parameters.
_pending = PendingOverride.__table__.c
_TAKE_PENDING = (
    delete(PendingOverride.__table__)
    .where(
        _pending.team_id == bindparam("team_id"),
        _pending.channel_id == bindparam("channel_id"),
        _pending.slack_user_id == bindparam("slack_user_id"),
    )
    .returning(_pending.model)
)


def take_pending(
    session: Session, *, team_id: str, channel_id: str, slack_user_id: str
) -> str | None:
    """The model chosen for this person's next message here, used up by reading it."""
    key = {"team_id": team_id, "channel_id": channel_id, "slack_user_id": slack_user_id}
    return session.scalars(_TAKE_PENDING, key).first()


def peek_pending(
    session: Session, *, team_id: str, channel_id: str, slack_user_id: str
) -> str | None:
    """The model chosen for this person's next message here, left in place."""
    return session.scalars(
        select(PendingOverride.model).where(
            PendingOverride.team_id == team_id,
            PendingOverride.channel_id == channel_id,
            PendingOverride.slack_user_id == slack_user_id,
        )
    ).first()


def channel_defaults_admins_only(session: Session, team_id: str) -> bool:
    """Whether only admins may change channel defaults in this workspace."""
    row = session.get(WorkspaceSettings, team_id)
    return bool(row and row.channel_defaults_admins_only)


def set_channel_defaults_admins_only(
    session: Session, team_id: str, value: bool, *, set_by: str
) -> None:
    """Restrict (or open up) channel-default changes."""
    # The database decides, so two admins switching at once cannot both insert the row.
    queries.insert_or_update(
        session,
        WorkspaceSettings,
        {"team_id": team_id},
        {"channel_defaults_admins_only": value, "updated_by": set_by},
    )
