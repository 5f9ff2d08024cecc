"""Usage and cost reports: who used which model, how much, at what cost (no Slack here)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from bot.users import UserDirectory


class UsageService:
    """Builds usage reports for workspace members, admins and operators."""

    def __init__(self, sessions: sessionmaker[Session], users: UserDirectory) -> None:
        self._sessions = sessions
        self._users = users
