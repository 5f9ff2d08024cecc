"""The fake Slack's side of installing into many workspaces: OAuth codes, tokens, rotation.

Once a workspace is added, the fake is strict about tokens, as Slack is: every Web API call
must carry a token it issued and has not revoked, and `auth.test` says whose it is.
"""

from __future__ import annotations

import base64
import itertools
import threading
from dataclasses import dataclass
from typing import Any

Payload = dict[str, Any]


@dataclass(frozen=True)
class FakeWorkspace:
    """An install Slack would grant: a workspace (or, org-wide, a Grid org) and its bot."""

    team_id: str | None
    bot_user_id: str
    bot_id: str = "BBOT"
    enterprise_id: str | None = None
    org_wide: bool = False
    team_name: str = "Example"
    installer: str = "UINSTALLER"
    # Token rotation: tokens expire after this many seconds and come with a refresh token.
    expires_in: int | None = None


class FakeSlackOAuth:
    """Codes and tokens of the fake Slack; `answer` serves auth.test and oauth.v2.access."""

    def __init__(self) -> None:
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self._codes: dict[str, FakeWorkspace] = {}
        self._tokens: dict[str, FakeWorkspace] = {}  # valid access tokens
        self._refresh: dict[str, FakeWorkspace] = {}  # valid refresh tokens
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def strict(self) -> bool:
        """Whether tokens are checked (some workspace was added)."""
        with self._lock:
            return bool(self._codes or self._tokens)

    def app(self, client_id: str, client_secret: str) -> None:
        """The app's credentials that oauth.v2.access accepts."""
        self.client_id, self.client_secret = client_id, client_secret

    def add_code(self, code: str, workspace: FakeWorkspace) -> None:
        """oauth.v2.access with `code` installs `workspace` (once)."""
        with self._lock:
            self._codes[code] = workspace

    def add_token(self, token: str, workspace: FakeWorkspace) -> None:
        """A token already issued (as if installed before)."""
        with self._lock:
            self._tokens[token] = workspace

    def revoke(self, token: str) -> None:
        """Slack stops taking `token`."""
        with self._lock:
            self._tokens.pop(token, None)

    def tokens(self) -> dict[str, FakeWorkspace]:
        """The valid access tokens."""
        with self._lock:
            return dict(self._tokens)

    def refuse(self, method: str, token: str | None) -> str | None:
        """The error Slack answers a call with `token` with, if any."""
        if method in ("oauth.v2.access", "response_url") or not self.strict:
            return None
        if not token:
            return "not_authed"
        with self._lock:
            return None if token in self._tokens else "invalid_auth"

    def answer(self, method: str, args: Payload, headers: dict[str, str]) -> Payload | None:
        """The answer to auth.test and oauth.v2.access in strict mode; None for the rest."""
        if not self.strict:
            return None
        if method == "auth.test":
            token = _bearer(headers)
            with self._lock:
                workspace = self._tokens.get(token or "")
            assert workspace is not None  # `refuse` answered for unknown tokens
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": workspace.team_name,
                "user": "switchboard",
                "team_id": workspace.team_id,
                "user_id": workspace.bot_user_id,
                "bot_id": workspace.bot_id,
                "enterprise_id": workspace.enterprise_id,
                "is_enterprise_install": workspace.org_wide,
            }
        if method == "oauth.v2.access":
            return self._access(args, headers)
        return None

    def _access(self, args: Payload, headers: dict[str, str]) -> Payload:
        if _basic(headers) != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        with self._lock:
            if args.get("grant_type") == "refresh_token":
                workspace = self._refresh.get(str(args.get("refresh_token")))
                if workspace is None:
                    return {"ok": False, "error": "invalid_refresh_token"}
            else:
                workspace = self._codes.pop(str(args.get("code")), None)
                if workspace is None:
                    return {"ok": False, "error": "invalid_code"}
            n = next(self._ids)
            token = f"xoxb-{workspace.enterprise_id or ''}{workspace.team_id or ''}-{n}"
            self._tokens[token] = workspace
            extra: Payload = {}
            if workspace.expires_in is not None:
                refresh = f"xoxe-1-{n}"
                self._refresh[refresh] = workspace
                extra = {"refresh_token": refresh, "expires_in": workspace.expires_in}
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": "chat:write,commands",
            "bot_user_id": workspace.bot_user_id,
            "app_id": "A0001",
            "team": {"id": workspace.team_id, "name": workspace.team_name}
            if workspace.team_id
            else None,
            "enterprise": {"id": workspace.enterprise_id, "name": "Org"}
            if workspace.enterprise_id
            else None,
            "is_enterprise_install": workspace.org_wide,
            "authed_user": {"id": workspace.installer},
            **extra,
        }


def _bearer(headers: dict[str, str]) -> str | None:
    auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


def _basic(headers: dict[str, str]) -> tuple[str, str] | None:
    auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    return user, password
