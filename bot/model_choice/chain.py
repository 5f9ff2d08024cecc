"""Which model answers: the catalogue people choose from, and the chain of defaults.

The one place that decides the model of a turn (`ModelChooser.for_turn`, then `for_words`)
and of a new conversation (`ModelChooser.default_for`), and says why (`Choice.level`).
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from db import model_defaults

log = logging.getLogger(__name__)

MAX_MODEL_NAME = 255
_RETRY_AFTER_FAILURE = 30.0
_INLINE = re.compile(r"^\s*\[([^\[\]\s]{1,255})\]\s*(.*)$", re.DOTALL)
_THREAD_COMMAND = re.compile(r"^\s*model\s+(\S+)\s*$", re.IGNORECASE)

# Where a model choice came from, most specific first (the /model issue's chain), in the words
# members read: never a setting's name. "setting" is the operator's DEFAULT_MODEL, which to a
# member is simply the workspace's default; "workspace" is one an admin chose with /model.
LEVEL_LABELS = {
    "message": "an override on this message",
    "conversation": "this conversation's default",
    "channel": "this channel's default",
    "dm": "your default for DMs with me",
    "workspace": "the workspace's default, chosen by an admin",
    "setting": "the workspace's default model",
}


class UnknownModel(ValueError):
    """A name that is not in the catalogue."""

    def __init__(self, name: str, suggestions: list[str], choices: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        self.choices = choices
        hint = f" Did you mean {' or '.join(f'`{s}`' for s in suggestions)}?" if suggestions else ""
        listed = ", ".join(f"`{c}`" for c in choices[:30]) or "(none)"
        more = f" and {len(choices) - 30} more" if len(choices) > 30 else ""
        super().__init__(
            f"`{name}` is not a model you can choose here.{hint} Choices: {listed}{more}."
        )


class CatalogueUnavailable(RuntimeError):
    """The endpoint's model list could not be fetched and none is cached."""


# Members read this; the log line beside it names the setting for the operator.
_UNAVAILABLE = (
    "I could not get the list of models right now. Try again in a minute; if it keeps "
    "happening, tell whoever runs Switchboard."
)


class Catalogue:
    """The models people may choose: ALLOWED_MODELS, or the endpoint's own list, cached."""

    def __init__(
        self,
        allowed: tuple[tuple[str, str], ...],
        list_models: Callable[[], list[str]],
        *,
        max_age: float = 600.0,
        wait: float = 10.0,
    ) -> None:
        self._allowed = dict(allowed)
        self._list_models = list_models
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: list[str] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._wait = wait
        # Set while one caller fetches the endpoint's list; the others wait on it.
        self._fetching: threading.Event | None = None

    def entries(self) -> dict[str, str]:
        """Name or alias -> model id."""
        if self._allowed:
            return dict(self._allowed)
        return {model: model for model in self._endpoint_models()}

    def resolve(self, name: str) -> str:
        """The model id a name or alias stands for; `UnknownModel` when there is none."""
        entries = self.entries()
        if name in entries:
            return entries[name]
        folded = {key.lower(): model for key, model in entries.items()}
        if name.lower() in folded:
            return folded[name.lower()]
        if name in entries.values():
            return name
        choices = list(entries)
        suggestions = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        raise UnknownModel(name, suggestions, choices)

    def split_override(self, text: str) -> tuple[str | None, str]:
        """(model id, prompt) when `text` starts with `[NAME]` naming a model, else (None, text).

        `[WIP] can you review…` is a prompt, not a request for a model called WIP. When the
        endpoint's list cannot be had (no ALLOWED_MODELS, nothing cached), the brackets stay in
        the prompt: answering with the default model beats refusing every bracketed message.
        """
        name, rest = parse_inline_override(text)
        if name is None:
            return None, text
        try:
            return self.resolve(name), rest
        except (UnknownModel, CatalogueUnavailable):
            return None, text

    def _endpoint_models(self) -> list[str]:
        # The lock guards the cache, never the network call: callers with a list (even a stale
        # one) get it at once while one of them fetches; without a list they wait for that
        # one fetch, at most `wait` seconds, not for the whole timeout and retries.
        with self._lock:
            now = time.monotonic()
            fresh = now - self._fetched_at < self._max_age
            # After a failure, wait a while before asking the endpoint again rather than make
            # every /model wait for it to time out; meanwhile serve a stale list, if any.
            backing_off = (
                self._failed_at is not None and now - self._failed_at < _RETRY_AFTER_FAILURE
            )
            if self._cached is not None and (fresh or backing_off or self._fetching is not None):
                return self._cached
            if backing_off:
                raise CatalogueUnavailable(_UNAVAILABLE)
            fetching = self._fetching
            if fetching is None:
                self._fetching = threading.Event()
        if fetching is not None:
            return self._wait_for(fetching)
        try:
            models = self._list_models()
        except Exception as exc:
            # For the operator (members are told in plain words): name the setting that helps.
            log.warning(
                "could not fetch the model endpoint's list of models (%s: %s); ALLOWED_MODELS "
                "lists the models people may choose without asking the endpoint",
                type(exc).__name__,
                exc,
            )
            with self._lock:
                self._failed_at = time.monotonic()
                cached = self._cached
            if cached is None:
                raise CatalogueUnavailable(_UNAVAILABLE) from exc
            return cached
        else:
            with self._lock:
                self._cached, self._fetched_at, self._failed_at = models, time.monotonic(), None
            return models
        finally:
            with self._lock:
                done, self._fetching = self._fetching, None
            if done is not None:
                done.set()

    def _wait_for(self, fetch: threading.Event) -> list[str]:
        """The list another caller is fetching, when it comes within `wait` seconds."""
        fetch.wait(self._wait)
        with self._lock:
            if self._cached is None:
                raise CatalogueUnavailable(_UNAVAILABLE)
            return self._cached


@dataclass(frozen=True)
class Choice:
    """A model and the level of the chain that chose it."""

    model: str
    level: str

    @property
    def reason(self) -> str:
        """Why this model, in words."""
        return LEVEL_LABELS[self.level]


def parse_inline_override(text: str) -> tuple[str | None, str]:
    """Split a leading `[NAME]` off a message: (NAME or None, the rest)."""
    match = _INLINE.match(text)
    if match is None:
        return None, text
    return match.group(1), match.group(2).strip()


def parse_thread_command(text: str) -> str | None:
    """NAME when the message is just `model NAME`."""
    match = _THREAD_COMMAND.match(text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class TurnModel:
    """The model of one turn, why, and what its message asks once a choice is taken off it."""

    choice: Choice
    prompt: str
    # `model NAME` in a thread: the model that becomes the conversation's default. Nothing is
    # asked of it; `choice` is that model, at the conversation's level.
    sets_default: str | None = None
    # `model NAME` as a new message in a DM with the bot: it also becomes the person's DM
    # default (in a DM each top-level message starts a conversation of its own, so a thread's
    # default alone would be forgotten by the next message).
    for_dms: bool = False
    # Why `model NAME` cannot be done (no such model, or no list of models to look it up in).
    unknown: str | None = None

    @property
    def override(self) -> str | None:
        """The model this one message asked for (stored on it), if it asked for one."""
        return self.choice.model if self.choice.level == "message" else None


class ModelChooser:
    """Decides which model answers, and reads and writes the chain of defaults.

    The chain, most specific first: an override on the message (`/model` for the next message,
    `/model NAME PROMPT`, or a leading `[NAME]`), the conversation's default (fixed by
    `default_for` when the thread starts, changed by `model NAME` in it), the channel's (in a DM,
    the person's), the workspace's, the DEFAULT_MODEL setting. Every method that takes a
    session works inside the caller's transaction.
    """

    def __init__(self, catalogue: Catalogue, default_model: str) -> None:
        self.catalogue = catalogue
        self.default_model = default_model

    def default_for(
        self, session: Session, *, team_id: str, channel_id: str, slack_user_id: str, is_dm: bool
    ) -> Choice:
        """The model a new conversation here starts with (channel or DM, workspace, setting)."""
        scope, scope_id = self.scope_for(channel_id, slack_user_id, is_dm=is_dm)
        here, workspace = model_defaults.defaults_here(
            session, team_id=team_id, scope=scope, scope_id=scope_id
        )
        if here is not None:
            return Choice(here, "dm" if is_dm else "channel")
        if workspace is not None:
            return Choice(workspace, "workspace")
        return Choice(self.default_model, "setting")

    @staticmethod
    def for_turn(conversation_default: str, override: str | None) -> Choice:
        """The model for one stored message of a conversation: its override, else the thread's."""
        if override:
            return Choice(override, "message")
        return Choice(conversation_default, "conversation")

    def for_words(self, stored: Choice, text: str, *, starts_dm: bool = False) -> TurnModel:
        """What the message's own words make of `stored` (`for_turn`'s choice).

        `model NAME` alone sets the conversation's default, and when the message starts a
        conversation in a DM with the bot (`starts_dm`), the person's DM default too; a leading
        `[NAME]` naming a model answers this message with it (`[WIP] …` is a prompt). Either
        beats a stored override.
        """
        new_default = parse_thread_command(text)
        if new_default is not None:
            try:
                model = self.catalogue.resolve(new_default)
            except (UnknownModel, CatalogueUnavailable) as exc:
                return TurnModel(stored, text, unknown=str(exc))
            level = "dm" if starts_dm else "conversation"
            return TurnModel(Choice(model, level), text, sets_default=model, for_dms=starts_dm)
        inline, prompt = self.catalogue.split_override(text)
        if inline is not None:
            return TurnModel(Choice(inline, "message"), prompt)
        return TurnModel(stored, text)

    @staticmethod
    def scope_for(channel_id: str, slack_user_id: str, *, is_dm: bool) -> tuple[str, str]:
        """The (scope, scope_id) a channel-level default is stored under."""
        return ("user", slack_user_id) if is_dm else ("channel", channel_id)

    def set_default(
        self, session: Session, *, team_id: str, scope: str, scope_id: str, model: str, set_by: str
    ) -> None:
        """Set (or replace) the default of a workspace, channel or user's DMs."""
        model_defaults.set_default(
            session, team_id=team_id, scope=scope, scope_id=scope_id, model=model, set_by=set_by
        )

    def reset_default(self, session: Session, *, team_id: str, scope: str, scope_id: str) -> bool:
        """Clear a default; whether there was one."""
        return model_defaults.delete_default(
            session, team_id=team_id, scope=scope, scope_id=scope_id
        )

    def set_pending(
        self, session: Session, *, team_id: str, channel_id: str, slack_user_id: str, model: str
    ) -> None:
        """Choose the model of a person's next message in a channel (the latest choice wins)."""
        model_defaults.set_pending(
            session,
            team_id=team_id,
            channel_id=channel_id,
            slack_user_id=slack_user_id,
            model=model,
        )

    def take_pending(
        self, session: Session, *, team_id: str, channel_id: str, slack_user_id: str
    ) -> str | None:
        """The model chosen for this person's next message here, used up by reading it."""
        return model_defaults.take_pending(
            session, team_id=team_id, channel_id=channel_id, slack_user_id=slack_user_id
        )

    def peek_pending(
        self, session: Session, *, team_id: str, channel_id: str, slack_user_id: str
    ) -> str | None:
        """The model chosen for this person's next message here, left in place."""
        return model_defaults.peek_pending(
            session, team_id=team_id, channel_id=channel_id, slack_user_id=slack_user_id
        )

    def workspace_default(self, session: Session, team_id: str) -> str | None:
        """The workspace default an admin set, if any."""
        return model_defaults.workspace_default(session, team_id)

    def channel_defaults_admins_only(self, session: Session, team_id: str) -> bool:
        """Whether only admins may change channel defaults in this workspace."""
        return model_defaults.channel_defaults_admins_only(session, team_id)

    def set_channel_defaults_admins_only(
        self, session: Session, team_id: str, value: bool, *, set_by: str
    ) -> None:
        """Restrict (or open up) channel-default changes."""
        model_defaults.set_channel_defaults_admins_only(session, team_id, value, set_by=set_by)
