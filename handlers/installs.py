"""The app removed from a workspace, its tokens revoked, and the workspaces of Grid orgs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext

from bot.shell.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    """Forget a workspace's tokens when Slack says so (OAuth); place org-wide requests.

    Only tokens go: the workspace's accounting stays, and its content follows retention.
    """
    store = services.installs

    def handle_app_uninstalled(context: BoltContext) -> None:
        enterprise_id, team_id = _installation_of(context)
        log.info("uninstalled from %s", team_id or enterprise_id)
        if store is not None:
            store.delete_all(enterprise_id=enterprise_id, team_id=team_id)

    def handle_tokens_revoked(event: dict[str, Any], context: BoltContext) -> None:
        enterprise_id, team_id = _installation_of(context)
        log.info("tokens revoked in %s", team_id or enterprise_id)
        if store is None:
            return
        tokens = event.get("tokens") or {}
        for user_id in tokens.get("oauth") or ():
            store.delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)
        if tokens.get("bot"):
            store.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    app.event("app_uninstalled")(handle_app_uninstalled)
    app.event("tokens_revoked")(handle_tokens_revoked)
    if store is not None:
        app.middleware(org_workspaces(store.note_org_team))


def _installation_of(context: BoltContext) -> tuple[str | None, str | None]:
    # An org-wide installation is the org's, whichever workspace the event names.
    if context.is_enterprise_install:
        return context.enterprise_id, None
    return context.enterprise_id, context.team_id


def org_workspaces(note: Callable[..., None]) -> Callable[..., Any]:
    """Middleware for org-wide installs: each request's workspace, and its org noted.

    Bolt leaves `context.team_id` empty for events of an org-wide install; the workspace the
    request comes from is put there, so that each workspace of the org keeps its own rows.
    Replies are written outside the request, knowing only that workspace (`client_for`): the
    noted org is how they find the org's token. Each pair is written once per process.
    """
    seen: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def place_org_request(
        context: BoltContext, body: dict[str, Any], next: Callable[[], Any]
    ) -> Any:
        enterprise_id, team_id = context.enterprise_id, workspace_of(body) or context.team_id
        if context.is_enterprise_install and enterprise_id and team_id:
            context["team_id"] = team_id
            with lock:
                new = (team_id, enterprise_id) not in seen
                seen.add((team_id, enterprise_id))
            if new:
                note(team_id=team_id, enterprise_id=enterprise_id)
        return next()

    return place_org_request


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
