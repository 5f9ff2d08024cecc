"""The /model command: read the text, check who may do what, change the chain of defaults."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from bot.members.directory import UserDirectory
from bot.model_choice.chain import (
    MAX_MODEL_NAME,
    CatalogueUnavailable,
    Choice,
    ModelChooser,
    UnknownModel,
)
from db import tool_calls

# The prompt is reposted in the channel in the caller's name; longer text belongs in a message
# of their own (mention the bot, or `[NAME]` in front), where the 40,000-character limit holds.
MAX_COMMAND_PROMPT = 4_000
SUBCOMMANDS = ("help", "reset", "workspace", "admins-only", "tools")
_SWITCH = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}
_HEAD = re.compile(r"^(\S+)(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Place:
    """Where /model was used and by whom: a channel, or the caller's DM with the bot."""

    team_id: str
    channel_id: str
    user_id: str
    is_dm: bool = False


@dataclass(frozen=True)
class Status:
    """What answers here and why, and what the caller may change."""

    here: Choice
    pending: str | None
    workspace_default: str | None
    setting_default: str
    admins_only: bool
    is_admin: bool
    is_dm: bool
    entries: dict[str, str] = field(default_factory=dict)
    catalogue_error: str | None = None
    # Whether the model may call tools here; None when no MCP server is configured.
    tools: bool | None = None

    @property
    def may_set_here(self) -> bool:
        """Whether the caller may change the default of this channel (always, in their DMs)."""
        return self.is_dm or self.is_admin or not self.admins_only


@dataclass(frozen=True)
class Changed:
    """A setting changed. `model` is None after a reset; `now` is then what applies instead."""

    scope: str  # "channel", "dm", "workspace", "next", "admins_only" or "tools"
    model: str | None = None
    name: str | None = None
    now: Choice | None = None
    existed: bool = True
    admins_only: bool | None = None
    tools: bool | None = None


@dataclass(frozen=True)
class Ask:
    """One prompt to answer with `model`, in a new thread."""

    model: str
    name: str
    prompt: str


@dataclass(frozen=True)
class Refused:
    """Bad input or no permission; nothing changed."""

    message: str


@dataclass(frozen=True)
class Help:
    """The caller asked for the syntax."""


Outcome = Status | Changed | Ask | Refused | Help


class ModelCommandService:
    """Carries out /model and its menu's buttons."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        users: UserDirectory,
        models: ModelChooser,
        has_tools: bool = False,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._models = models
        self._has_tools = has_tools  # MCP servers are configured

    def run(self, place: Place, text: str) -> Outcome:
        """Carry out `/model TEXT` typed at `place`."""
        match = _HEAD.match(text.strip())
        if match is None:
            return self.status(place)
        head, rest = match.group(1), (match.group(2) or "").strip()
        word = head.lower()
        if word in ("help", "?", "-h", "--help"):
            return Help()
        if word == "reset":
            if rest:
                return Refused(
                    f"`/model reset` takes nothing after it (got `{_clip(rest)}`). "
                    "To clear the workspace default, use `/model workspace reset`."
                )
            return self.reset_here(place)
        if word == "workspace":
            return self._workspace(place, rest)
        if word in ("admins-only", "admins_only", "adminsonly"):
            return self._admins_only(place, rest)
        if word == "tools" and (rest.lower() in _SWITCH or not rest):
            return self._tools(place, rest)
        name = head.removeprefix("[").removesuffix("]")  # people try the inline `[NAME]` form
        if rest:
            return self.ask(place, name, rest)
        return self.choose(place, name, target="here")

    def status(self, place: Place) -> Status:
        """The model that would answer here, why, and the catalogue to choose from."""
        entries: dict[str, str] = {}
        error = None
        try:
            entries = self._models.catalogue.entries()
        except CatalogueUnavailable as exc:
            error = str(exc)
        is_admin = self._users.is_admin(place.team_id, place.user_id)
        with self._sessions() as session:
            return Status(
                here=self._default_here(session, place),
                pending=self._models.peek_pending(
                    session,
                    team_id=place.team_id,
                    channel_id=place.channel_id,
                    slack_user_id=place.user_id,
                ),
                workspace_default=self._models.workspace_default(session, place.team_id),
                setting_default=self._models.default_model,
                admins_only=self._models.channel_defaults_admins_only(session, place.team_id),
                is_admin=is_admin,
                is_dm=place.is_dm,
                entries=entries,
                catalogue_error=error,
                tools=(
                    tool_calls.tools_enabled(session, place.team_id, place.channel_id)
                    if self._has_tools
                    else None
                ),
            )

    def choose(self, place: Place, name: str, *, target: str) -> Changed | Refused:
        """Use model `name` here: as this channel's (or DM's) default, or for the next message."""
        resolved = self._resolve(name)
        if isinstance(resolved, Refused):
            return resolved
        if target == "next":
            with self._sessions.begin() as session:
                self._models.set_pending(
                    session,
                    team_id=place.team_id,
                    channel_id=place.channel_id,
                    slack_user_id=place.user_id,
                    model=resolved,
                )
            return Changed("next", model=resolved, name=name)
        refused = self._may_set_here(place)
        if refused is not None:
            return refused
        scope, scope_id = self._models.scope_for(place.channel_id, place.user_id, is_dm=place.is_dm)
        with self._sessions.begin() as session:
            self._models.set_default(
                session,
                team_id=place.team_id,
                scope=scope,
                scope_id=scope_id,
                model=resolved,
                set_by=place.user_id,
            )
        return Changed("dm" if place.is_dm else "channel", model=resolved, name=name)

    def reset_here(self, place: Place) -> Changed | Refused:
        """Clear this channel's (or the caller's DM) default."""
        refused = self._may_set_here(place)
        if refused is not None:
            return refused
        scope, scope_id = self._models.scope_for(place.channel_id, place.user_id, is_dm=place.is_dm)
        with self._sessions.begin() as session:
            existed = self._models.reset_default(
                session, team_id=place.team_id, scope=scope, scope_id=scope_id
            )
            now = self._default_here(session, place)
        return Changed("dm" if place.is_dm else "channel", now=now, existed=existed)

    def ask(self, place: Place, name: str, prompt: str) -> Ask | Refused:
        """Check a one-off `/model NAME PROMPT`; the caller posts it and starts the turn."""
        if len(prompt) > MAX_COMMAND_PROMPT:
            return Refused(
                f"That prompt is {len(prompt):,} characters long; `/model NAME PROMPT` takes at "
                f"most {MAX_COMMAND_PROMPT:,}. For longer text, mention me in a message and put "
                f"`[{_clip(name, 40)}]` in front of it."
            )
        resolved = self._resolve(name)
        if isinstance(resolved, Refused):
            return resolved
        return Ask(model=resolved, name=name, prompt=prompt)

    def _workspace(self, place: Place, rest: str) -> Changed | Refused:
        args = rest.split()
        if len(args) != 1:
            return Refused(
                "Use `/model workspace NAME` to set the workspace default, or "
                "`/model workspace reset` to clear it."
            )
        if not self._users.is_admin(place.team_id, place.user_id):
            return Refused("Only workspace admins can change the workspace default.")
        if args[0].lower() == "reset":
            with self._sessions.begin() as session:
                existed = self._models.reset_default(
                    session, team_id=place.team_id, scope="workspace", scope_id=""
                )
            return Changed(
                "workspace", now=Choice(self._models.default_model, "setting"), existed=existed
            )
        resolved = self._resolve(args[0])
        if isinstance(resolved, Refused):
            return resolved
        with self._sessions.begin() as session:
            self._models.set_default(
                session,
                team_id=place.team_id,
                scope="workspace",
                scope_id="",
                model=resolved,
                set_by=place.user_id,
            )
        return Changed("workspace", model=resolved, name=args[0])

    def _admins_only(self, place: Place, rest: str) -> Changed | Refused:
        value = _SWITCH.get(rest.lower())
        if value is None:
            return Refused(
                "Use `/model admins-only on` to let only admins change channel defaults, "
                "or `/model admins-only off` to let everyone."
            )
        if not self._users.is_admin(place.team_id, place.user_id):
            return Refused("Only workspace admins can decide who may change channel defaults.")
        with self._sessions.begin() as session:
            self._models.set_channel_defaults_admins_only(
                session, place.team_id, value, set_by=place.user_id
            )
        return Changed("admins_only", admins_only=value)

    def _tools(self, place: Place, rest: str) -> Changed | Refused:
        """`/model tools on|off`: whether the model may call tools in this channel (admins)."""
        value = _SWITCH.get(rest.lower())
        if value is None:
            return Refused(
                "Use `/model tools off` to stop the model using tools in this channel, or "
                "`/model tools on` to let it again."
            )
        if not self._has_tools:
            return Refused("No tools are set up for this workspace, so there is nothing to turn.")
        if not self._users.is_admin(place.team_id, place.user_id):
            return Refused("Only workspace admins can turn tools on or off in a channel.")
        with self._sessions.begin() as session:
            tool_calls.set_tools_enabled(
                session, place.team_id, place.channel_id, enabled=value, by=place.user_id
            )
        return Changed("tools", tools=value)

    def _may_set_here(self, place: Place) -> Refused | None:
        if place.is_dm:
            return None  # a person's own DMs with the bot are theirs to set
        with self._sessions() as session:
            restricted = self._models.channel_defaults_admins_only(session, place.team_id)
        if restricted and not self._users.is_admin(place.team_id, place.user_id):
            return Refused(
                "Only workspace admins can change this channel's default model here. You can "
                "still choose a model for one message: `/model NAME PROMPT`, or `[NAME]` in "
                "front of a message."
            )
        return None

    def _resolve(self, name: str) -> str | Refused:
        """The model id `name` stands for, or why it cannot be used."""
        if not name:
            return Refused("Name a model, for example `/model NAME`. `/model help` shows more.")
        if len(name) > MAX_MODEL_NAME:
            return Refused(
                f"That model name is {len(name):,} characters long; names are at most "
                f"{MAX_MODEL_NAME}."
            )
        try:
            return self._models.catalogue.resolve(name)
        except CatalogueUnavailable as exc:
            return Refused(str(exc))
        except UnknownModel as exc:
            near = difflib.get_close_matches(name.lower(), SUBCOMMANDS, n=1, cutoff=0.75)
            if near and not exc.suggestions:
                return Refused(
                    f"`{name}` is neither a sub-command of /model nor a model I know. "
                    f"Did you mean `/model {near[0]}`? `/model help` lists them all."
                )
            if near:
                return Refused(f"{exc} Or did you mean `/model {near[0]}`?")
            return Refused(f"{exc} `/model help` shows the syntax.")

    def _default_here(self, session: Session, place: Place) -> Choice:
        return self._models.default_for(
            session,
            team_id=place.team_id,
            channel_id=place.channel_id,
            slack_user_id=place.user_id,
            is_dm=place.is_dm,
        )


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
