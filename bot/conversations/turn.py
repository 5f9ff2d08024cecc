"""What the stages of a turn hand each other: the message as it arrives, the turn once it is
claimed, where its reply goes, and what became of it.

A turn goes intake (`intake.py`) → context (`context.py`) → answering (`answering.py`) →
ledger (`ledger.py`); `service.py` leads it through them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from bot.files.kinds import SlackFile
from bot.model_choice.chain import Choice, ModelChooser, TurnModel
from db.turns import Claimed, Work

_SECRET = re.compile(r"\b(sk|xox[abpr]|xapp)-[A-Za-z0-9_*\-]{4,}")


def redact(text: str) -> str:
    """The text with anything shaped like an API key or Slack token blanked out."""
    return _SECRET.sub("[redacted]", text)


def storable(text: str) -> str:
    """`text` without NUL characters, which PostgreSQL refuses in text columns."""
    return text.replace("\x00", "")


class Author(StrEnum):
    """Who wrote a Slack message."""

    PERSON = "person"
    APP = "app"  # another app or integration: kept as context, never answered
    SELF = "self"  # this bot


class Origin(StrEnum):
    """How the bot came into a conversation (`conversations.origin`): who it answers there."""

    DM = "dm"  # a DM with the bot: every message
    MENTION = "mention"  # a channel thread that began with a message to the bot
    CALLED_IN = "called_in"  # mentioned in a thread people had started: only its mentions


class History(StrEnum):
    """Whether a conversation holds its thread's earlier messages (`conversations.history`)."""

    COMPLETE = "complete"  # the bot was there from the start: every message came as an event
    NEEDED = "needed"  # called into a thread: read it from Slack before answering
    READ = "read"  # read from Slack once; never again
    UNREADABLE = "unreadable"  # Slack refused for good (no access, no such thread)


@dataclass(frozen=True)
class IncomingMessage:
    """A Slack message where the bot may answer, or that it keeps as a thread's context."""

    team_id: str
    channel_id: str
    user_id: str  # the person, or for an app its bot user (else its bot id)
    text: str
    ts: str
    thread_ts: str | None = None
    is_dm: bool = False
    mentions_bot: bool = False
    bot_user_id: str | None = None
    files: tuple[SlackFile, ...] = ()  # the files shared with it (read in the turn's worker)
    # Mentions someone else (a person, a user group, @here/@channel).
    mentions_others: bool = False
    author: Author = Author.PERSON
    # The name an app's message shows (people's names come from their profiles).
    author_name: str | None = None

    @property
    def conversation_ts(self) -> str:
        """The thread this message belongs to (a top-level message starts its own)."""
        return self.thread_ts or self.ts


class AcceptStatus(StrEnum):
    """What `accept` did with a message."""

    QUEUED = "queued"  # stored, its turn waits to be claimed
    STORED = "stored"  # stored as context of its thread, not answered
    DUPLICATE = "duplicate"  # stored before (a retried or doubly delivered event)
    IGNORED = "ignored"  # not for the bot


@dataclass(frozen=True)
class Accepted:
    """What `accept` did with a message."""

    status: AcceptStatus
    turn_id: int | None = None


class TurnStatus(StrEnum):
    """What became of one turn."""

    ANSWERED = "answered"
    FAILED = "failed"
    REFUSED = "refused"
    MODEL_SET = "model_set"
    EXPIRED = "expired"
    LOST = "lost"  # taken over by another process, or its message is gone


@dataclass(frozen=True)
class TurnOutcome:
    """What became of one turn."""

    status: TurnStatus
    model: str | None = None
    response_id: int | None = None


class TakenOver(Exception):
    """The turn's lease passed to another process; this attempt records nothing."""


@dataclass(frozen=True)
class ReplyTarget:
    """Where a turn's reply goes: a thread, and the person it answers."""

    team_id: str
    channel_id: str
    thread_ts: str
    user_id: str


@dataclass(frozen=True)
class TaskCard:
    """A tool call as people see it in the reply: a card in progress, then complete or error.

    Its words are ours (the tool, what it looked up, how it ended), never the tool's result.
    """

    id: str
    title: str
    status: Literal["in_progress", "complete", "error"]
    details: str | None = None
    output: str | None = None


class ReplySink(Protocol):
    """Where a reply goes while it is written (a Slack thread, in production)."""

    def waiting(self, status: str | None = None) -> None:
        """Show that an answer is on its way (`status`: at once, and what it says)."""

    def write(self, text: str) -> None:
        """Add text to the reply."""

    def task(self, card: TaskCard) -> None:
        """Show a task card in the reply, or update the one with its id (best effort)."""

    def finish(self) -> str | None:
        """Complete the reply; the id (Slack ts) of its first message, if one was posted."""

    def fail(self, message: str) -> str | None:
        """End the reply with a plain-words error, keeping what was written; as `finish`."""

    def notice(self, text: str) -> str | None:
        """Post a short message for everyone in the thread; its id."""

    def refuse(self, text: str) -> None:
        """Tell only the person who wrote why their message was not answered."""

    def title(self, text: str) -> None:
        """Name the conversation after `text`, where the place shows titles (DMs with the bot)."""

    def close_interrupted(self, reply_ts: str, note: str) -> None:
        """Close a reply an earlier attempt left open (a stream still streaming)."""

    def interrupt(self, note: str) -> None:
        """End this reply now with `note` (the process is stopping); ignore later writes."""

    @property
    def closed(self) -> bool:
        """Whether the reply is complete (finished, failed or interrupted)."""

    @property
    def delivered(self) -> bool:
        """Whether everything written reached Slack (read once the reply is closed)."""


# Builds the sink of one turn; the callback is given the id of each of the reply's messages
# as soon as it exists (the latest is the one left open should the process die).
SinkFactory = Callable[[ReplyTarget, Callable[[str], None]], ReplySink]


@dataclass(frozen=True)
class TurnJob:
    """One claimed turn on its way through the stages: its message, who holds it, its model.

    Built from the stored message (`model` by the chain of defaults, `prompt` as stored); once
    its words are read, `asked` gives the turn its model and prompt as they will be asked.
    """

    claimed: Claimed
    owner: str
    work: Work
    model: TurnModel

    @classmethod
    def of(cls, claimed: Claimed, owner: str, work: Work) -> TurnJob:
        """The turn as stored, its model the one the chain gives its message."""
        stored = ModelChooser.for_turn(work.default_model, work.override)
        return cls(claimed, owner, work, TurnModel(stored, work.text))

    def asked(self, model: TurnModel) -> TurnJob:
        """This turn, its model and prompt decided from its message's words."""
        return dataclasses.replace(self, model=model)

    @property
    def id(self) -> int:
        """The turn's id."""
        return self.claimed.id

    @property
    def choice(self) -> Choice:
        """The model that answers, and why."""
        return self.model.choice

    @property
    def prompt(self) -> str:
        """The message as it is asked (a leading `[NAME]` taken off)."""
        return self.model.prompt

    @property
    def starts_dm(self) -> bool:
        """Whether its message starts a conversation in a DM with the bot (not a reply in one).

        Slack's ids of direct messages start with D; in a DM each top-level message is a
        thread of its own, its ts the thread's.
        """
        work = self.work
        return work.channel_id.startswith("D") and work.slack_ts == work.thread_ts

    @property
    def target(self) -> ReplyTarget:
        """Where its reply goes."""
        work = self.work
        return ReplyTarget(work.team_id, work.channel_id, work.thread_ts, work.slack_user_id or "")
