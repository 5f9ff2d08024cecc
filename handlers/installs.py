"""The app removed from a workspace, its tokens revoked, and the workspaces of Grid orgs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.listener.builtins import TokenRevocationListeners

from bot.shell.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Forget a workspace's tokens when Slack says so (OAuth); note Grid orgs' workspaces.

    Only tokens go: the workspace's accounting stays, and its content follows retention.
    """
    store = services.installs
    revocations = TokenRevocationListeners(store) if store is not None else None

    def handle_app_uninstalled(context: BoltContext) -> None:
        log.info("uninstalled from %s", context.enterprise_id or context.team_id)
        if revocations is not None:
            revocations.handle_app_uninstalled_events(context)

    def handle_tokens_revoked(event: dict[str, Any], context: BoltContext) -> None:
        log.info("tokens revoked in %s", context.enterprise_id or context.team_id)
        if revocations is not None:
            revocations.handle_tokens_revoked_events(event, context)

    app.event("app_uninstalled")(handle_app_uninstalled)
    app.event("tokens_revoked")(handle_tokens_revoked)
    if store is not None:
        app.middleware(org_teams(store.note_org_team))


def org_teams(note: Callable[..., None]) -> Callable[..., Any]:
    """Middleware noting which Grid org serves each workspace it sees requests from.

    Replies are written outside the request, knowing only the workspace (`client_for`): for
    an org-wide install, this is how that finds the org's token. Each pair is written once
    per process.
    """
    seen: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def note_org_team(context: BoltContext, body: dict[str, Any], next: Callable[[], Any]) -> Any:
        enterprise_id, team_id = context.enterprise_id, workspace_of(body) or context.team_id
        if context.is_enterprise_install and enterprise_id and team_id:
            with lock:
                new = (team_id, enterprise_id) not in seen
                seen.add((team_id, enterprise_id))
            if new:
                note(team_id=team_id, enterprise_id=enterprise_id)
        return next()

    return note_org_team


def workspace_of(body: dict[str, Any]) -> str | None:
    """The workspace a request comes from (for an org-wide install Bolt's team id is None)."""
    event, user, team = body.get("event"), body.get("user"), body.get("team")
    candidates = (
        body.get("team_id"),  # event envelopes, slash commands
        event.get("team") if isinstance(event, dict) else None,
        user.get("team_id") if isinstance(user, dict) else None,  # interactivity
        team.get("id") if isinstance(team, dict) else None,
    )
    return next((c for c in candidates if isinstance(c, str) and c), None)
