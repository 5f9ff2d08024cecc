"""Workspace members: a `users` row per person, with names and admin flags cached from Slack."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from db import members, queries
from db.models import User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    """What the workspace says about a member."""

    username: str
    full_name: str
    email: str | None = None
    is_admin: bool = False
    is_active: bool = True


class ProfileSource(Protocol):
    """Where profiles come from (Slack's `users.info`, in production)."""

    def fetch(self, team_id: str, slack_user_id: str) -> Profile | None:
        """The member's profile, or None when it cannot be had right now."""
        ...


@dataclass(frozen=True)
class Member:
    """A member as the services see them."""

    id: int
    team_id: str
    slack_user_id: str
    name: str
    is_admin: bool


class NotOneMember(LookupError):
    """A name that fits nobody who used Switchboard here, or several people; says which."""


def display_name(user: User) -> str:
    """How a member is shown: their full name, else their username, else their Slack id."""
    return user.full_name or user.username or user.slack_user_id


def only_one(named: Sequence[Member], *, shown: str, example: str) -> Member:
    """The one member a name fits; NotOneMember, worded for people, when it fits 0 or 2+."""
    if len(named) == 1:
        return named[0]
    problem = "several people are" if named else "nobody who used Switchboard is"
    raise NotOneMember(
        f"I can't tell who {shown} is: {problem} called that here. Pick the person from the "
        f"list Slack offers as you type @, for example {example}."
    )


class UserDirectory:
    """Finds or creates the `users` row of a Slack member, refreshing the profile now and then."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        profiles: ProfileSource,
        *,
        admin_user_ids: frozenset[str] = frozenset(),
        max_age: timedelta = timedelta(minutes=15),
        memory_ttl: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._profiles = profiles
        self._admin_user_ids = admin_user_ids
        self._max_age = max_age
        # Every turn needs the member; a minute in memory spares the database a query per
        # message, and keeps a member's row within a minute of what other processes wrote.
        self._memory_ttl = memory_ttl
        self._remembered: dict[tuple[str, str], tuple[float, Member]] = {}
        # Row ids never change once a row exists (rows are not deleted while the bot runs).
        self._row_ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def member(self, team_id: str, slack_user_id: str) -> Member:
        """The member, with a profile no older than `max_age` when Slack can be reached."""
        key = (team_id, slack_user_id)
        with self._lock:
            remembered = self._remembered.get(key)
        if remembered is not None and time.monotonic() - remembered[0] < self._memory_ttl:
            return remembered[1]
        member = self._load(team_id, slack_user_id)
        with self._lock:
            self._remembered[key] = (time.monotonic(), member)
        return member

    def _load(self, team_id: str, slack_user_id: str) -> Member:
        with self._sessions() as session:
            user = queries.get_user(session, team_id, slack_user_id)
            if user is not None and not self._stale(user):
                return self._member(user)
        # Slack is asked outside any transaction: a slow API must not hold database locks.
        profile = self._profiles.fetch(team_id, slack_user_id)
        with self._sessions.begin() as session:
            user = self._store(session, team_id, slack_user_id, profile)
            return self._member(user)

    def row_id(self, session: Session, team_id: str, slack_user_id: str) -> int:
        """The id of the member's row, created bare when missing; never asks Slack.

        For the path that acknowledges Slack's events, which must stay fast: the profile is
        read later, when the turn runs.
        """
        key = (team_id, slack_user_id)
        with self._lock:
            known = self._row_ids.get(key)
        if known is None:
            known, created = queries.ensure_user(session, team_id, slack_user_id)
            if not created:  # a row made in this transaction is gone if it rolls back
                with self._lock:
                    self._row_ids[key] = known
        return known

    def known(self, team_id: str, slack_user_id: str) -> bool:
        """Whether the member has a row here or a profile in Slack (asked outside transactions)."""
        with self._sessions() as session:
            if queries.get_user(session, team_id, slack_user_id) is not None:
                return True
        return self._profiles.fetch(team_id, slack_user_id) is not None

    def named(self, team_id: str, name: str) -> list[Member]:
        """The workspace's members whose username or full name is `name`, ignoring case."""
        with self._sessions() as session:
            return [self._member(user) for user in members.users_named(session, team_id, name=name)]

    def is_admin(self, team_id: str, slack_user_id: str) -> bool:
        """Whether the member is a workspace admin or owner, or named in ADMIN_USER_IDS."""
        return self.member(team_id, slack_user_id).is_admin

    def _stale(self, user: User) -> bool:
        refreshed = user.profile_refreshed_at
        if refreshed is None:
            return True
        if refreshed.tzinfo is None:  # SQLite hands back naive datetimes
            refreshed = refreshed.replace(tzinfo=UTC)
        return datetime.now(UTC) - refreshed > self._max_age

    def _store(
        self, session: Session, team_id: str, slack_user_id: str, profile: Profile | None
    ) -> User:
        queries.insert_unless_exists(
            session,
            User,
            {"team_id": team_id, "slack_user_id": slack_user_id, "username": slack_user_id},
            unique=("team_id", "slack_user_id"),
        )
        if profile is not None:
            members.store_profile(
                session,
                team_id,
                slack_user_id,
                username=profile.username,
                full_name=profile.full_name,
                email=profile.email,
                is_admin=profile.is_admin,
                is_active=profile.is_active,
            )
        user = queries.get_user(session, team_id, slack_user_id)
        assert user is not None
        return user

    def _member(self, user: User) -> Member:
        return Member(
            id=user.id,
            team_id=user.team_id,
            slack_user_id=user.slack_user_id,
            name=display_name(user),
            is_admin=user.is_admin or user.slack_user_id in self._admin_user_ids,
        )
