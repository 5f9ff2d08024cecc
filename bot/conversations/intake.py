"""Intake: accept a message before Slack gets its acknowledgement.

Nothing slow happens here: the message (and its turn, when the bot answers it) is stored in
one transaction, or an exception goes up so that Slack delivers the event again. A unique
constraint on (conversation, message ts) makes retries and several processes storing one
event harmless. Reading a thread the bot was called into is left to the turn's worker: here
the conversation is only marked as needing its history.

Whom the bot answers (`handling`):
- in a DM with it, every message;
- in a channel thread that began by mentioning it (or with `/model NAME PROMPT`), every
  message, unless it mentions someone else and not the bot;
- in a thread it was called into (mentioned in a thread people had started), only the
  messages that mention it;
- anywhere else, mentions of it (a new thread, or a thread it is then called into).
Other messages in threads it is part of are stored as context; other apps' messages are never
answered.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.context import strip_mentions
from bot.conversations.turn import (
    Accepted,
    AcceptStatus,
    Author,
    History,
    IncomingMessage,
    Origin,
    storable,
)
from bot.files.service import new_files
from bot.members.directory import UserDirectory
from bot.model_choice.chain import ModelChooser
from db import files, queries, turns


class Handling(StrEnum):
    """What the bot does with a message."""

    ANSWER = "answer"  # store it and queue its turn
    CONTEXT = "context"  # store it, for the thread's later answers
    IGNORE = "ignore"  # not for the bot: nothing stored


def handling(message: IncomingMessage, origin: Origin | None) -> Handling:
    """Whether the bot answers `message`, in a conversation begun as `origin` (None: none)."""
    if message.author is not Author.PERSON:
        return Handling.IGNORE if origin is None else Handling.CONTEXT
    if message.is_dm or message.mentions_bot:
        return Handling.ANSWER
    if origin is None:
        return Handling.IGNORE
    if origin is Origin.CALLED_IN or message.mentions_others:
        return Handling.CONTEXT
    return Handling.ANSWER


def origin_of(message: IncomingMessage) -> Origin:
    """How a conversation begun by `message` began."""
    if message.is_dm:
        return Origin.DM
    return Origin.CALLED_IN if message.thread_ts not in (None, message.ts) else Origin.MENTION


class Intake:
    """Stores the messages the bot answers, each once with its turn, and their threads' context."""

    def __init__(
        self, sessions: sessionmaker[Session], *, users: UserDirectory, models: ModelChooser
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._models = models

    def accept(self, message: IncomingMessage, *, override: str | None = None) -> Accepted:
        """Store `message` (and queue its turn when the bot answers it), once however often
        it is delivered.

        Raises when the database cannot be reached: Slack must then not be told the event
        arrived.
        """
        thread = self._existing_thread(message)
        handled = handling(message, None if thread is None else Origin(thread.origin))
        if handled is Handling.IGNORE:
            return Accepted(AcceptStatus.IGNORED)
        text = storable(strip_mentions(message.text, message.bot_user_id))
        if handled is Handling.CONTEXT and not text and not message.files:
            return Accepted(AcceptStatus.IGNORED)  # nothing the model could read
        with self._sessions.begin() as session:
            user_row_id = self._users.row_id(session, message.team_id, message.user_id)
            if message.author_name:
                queries.name_unnamed_user(session, user_row_id, message.author_name)
            if thread is not None:
                conversation_id = thread.id
            else:
                conversation_id = self._start_conversation(session, message, user_row_id, text)
            message_id = queries.add_message_once(
                session,
                conversation_id=conversation_id,
                user_id=user_row_id,
                role="user",
                content=text,
                slack_ts=message.ts,
                model=override,
            )
            if message_id is None:
                # Retried or doubly delivered: its turn is queued already, or done. A mention
                # that came without its files gets them from the message event (file_share).
                if message.files:
                    stored = files.stored_message_id(session, conversation_id, message.ts)
                    if stored is not None:
                        files.add_files(
                            session, message_id=stored, team_id=message.team_id,
                            files=new_files(message.files),
                        )  # fmt: skip
                return Accepted(AcceptStatus.DUPLICATE)
            if message.files:
                files.add_files(
                    session, message_id=message_id, team_id=message.team_id,
                    files=new_files(message.files),
                )  # fmt: skip
            if handled is Handling.CONTEXT:
                return Accepted(AcceptStatus.STORED)
            if override is None:
                pending = self._models.take_pending(
                    session,
                    team_id=message.team_id,
                    channel_id=message.channel_id,
                    slack_user_id=message.user_id,
                )
                if pending is not None:
                    queries.set_message_model(session, message_id, pending)
            turn_id = turns.add_turn(
                session, message_id=message_id, conversation_id=conversation_id
            )
        return Accepted(AcceptStatus.QUEUED, turn_id)

    def _existing_thread(self, message: IncomingMessage) -> queries.Thread | None:
        """The conversation of the thread `message` replies in, if there is one."""
        if message.thread_ts is None:
            return None
        with self._sessions() as session:
            return queries.get_thread(
                session, message.team_id, message.channel_id, message.thread_ts
            )

    def _start_conversation(
        self, session: Session, message: IncomingMessage, user_row_id: int, title: str
    ) -> int:
        """The id of the thread's conversation, created here unless someone just did.

        A conversation begun by a reply in a thread (called into it, or a DM thread whose
        start is not stored) needs the thread's earlier messages, read when its turn runs.
        """
        default = self._models.default_for(
            session,
            team_id=message.team_id,
            channel_id=message.channel_id,
            slack_user_id=message.user_id,
            is_dm=message.is_dm,
        )
        begun_before = message.thread_ts not in (None, message.ts)
        created = queries.start_conversation(
            session,
            team_id=message.team_id,
            channel_id=message.channel_id,
            thread_ts=message.conversation_ts,
            default_model=default.model,
            user_id=user_row_id,
            title=title,
            origin=origin_of(message),
            history=History.NEEDED if begun_before else History.COMPLETE,
        )
        if created is not None:
            return created.id
        # Someone else (a retry, another process) created it a moment ago.
        found = queries.get_thread(
            session, message.team_id, message.channel_id, message.conversation_ts
        )
        assert found is not None
        return found.id
