"""Queries on the files shared with messages. They take a Session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from db.dialects import rowcount
from db.models import Message, MessageFile
from db.queries import insert_unless_exists


@dataclass(frozen=True)
class FileRow:
    """A message's file as stored: what Slack said of it, and what was read of it."""

    id: int
    message_id: int
    team_id: str
    slack_file_id: str
    name: str
    mimetype: str
    filetype: str
    pretty_type: str
    size: int | None
    url: str | None
    needs_info: bool
    kind: str
    state: str
    text: str | None
    note: str | None
    width: int | None
    height: int | None


_COLUMNS = [getattr(MessageFile, name) for name in FileRow.__dataclass_fields__]


@dataclass(frozen=True)
class NewFile:
    """A file to store with its message."""

    slack_file_id: str
    name: str
    mimetype: str
    filetype: str
    pretty_type: str
    size: int | None
    url: str | None
    needs_info: bool
    kind: str
    state: str = "pending"
    note: str | None = None


def add_files(session: Session, *, message_id: int, team_id: str, files: Sequence[NewFile]) -> int:
    """Store the files of a message, each once however often it is delivered; how many new."""
    added = 0
    for file in files:
        values = {
            "message_id": message_id,
            "team_id": team_id,
            "slack_file_id": file.slack_file_id,
            "name": file.name,
            "mimetype": file.mimetype,
            "filetype": file.filetype,
            "pretty_type": file.pretty_type,
            "size": file.size,
            "url": file.url,
            "needs_info": file.needs_info,
            "kind": file.kind,
            "state": file.state,
            "note": file.note,
        }
        if insert_unless_exists(
            session, MessageFile, values, unique=("message_id", "slack_file_id")
        ):
            added += 1
    return added


def message_files(session: Session, message_ids: Sequence[int]) -> list[FileRow]:
    """The files of these messages, in the order they were stored."""
    if not message_ids:
        return []
    rows = session.execute(
        select(*_COLUMNS)
        .where(MessageFile.message_id.in_(list(message_ids)))
        .order_by(MessageFile.id)
    )
    return [FileRow(*row) for row in rows]


def conversation_files(
    session: Session, conversation_id: int, *, upto: int, upto_ts: str | None
) -> list[FileRow]:
    """The files of a conversation's messages up to message `upto` (included), in the
    thread's order as `queries.thread_history` reads it: by Slack ts (messages read from
    Slack after the bot was called in are stored after the mention, and came before it)."""
    rows = session.execute(
        select(*_COLUMNS)
        .join(Message, Message.id == MessageFile.message_id)
        .where(Message.conversation_id == conversation_id, _upto(upto, upto_ts))
        .order_by(MessageFile.id)
    )
    return [FileRow(*row) for row in rows]


def _upto(upto: int, upto_ts: str | None) -> ColumnElement[bool]:
    """Messages no later than message `upto` (Slack ts `upto_ts`; by id without a ts)."""
    if upto_ts is None:
        return Message.id <= upto
    return or_(Message.slack_ts < upto_ts, Message.id == upto)


def set_read(
    session: Session,
    file_id: int,
    *,
    state: str,
    text: str | None = None,
    note: str | None = None,
    size: tuple[int, int] | None = None,
    kind: str | None = None,
) -> bool:
    """Record what was read of a pending file (and its kind, when its bytes said otherwise than
    Slack); False when it is no longer pending (deleted meanwhile, or read by another attempt)."""
    width, height = size if size is not None else (None, None)
    values: dict[str, object] = dict(state=state, text=text, note=note, width=width, height=height)
    if kind is not None:
        values["kind"] = kind
    result = session.execute(
        update(MessageFile)
        .where(MessageFile.id == file_id, MessageFile.state == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) > 0


def set_described(
    session: Session, file_id: int, *, name: str, mimetype: str, filetype: str,
    pretty_type: str, size: int | None, url: str | None, kind: str,
) -> None:  # fmt: skip
    """Fill in what files.info said of a file whose event gave only its id."""
    session.execute(
        update(MessageFile)
        .where(MessageFile.id == file_id)
        .values(
            name=name,
            mimetype=mimetype,
            filetype=filetype,
            pretty_type=pretty_type,
            size=size,
            url=url,
            kind=kind,
            needs_info=False,
        )
        .execution_options(synchronize_session=False)
    )


def forget_file(session: Session, *, team_id: str, slack_file_id: str) -> int:
    """A file deleted in Slack: drop what was read of it and its link; how many rows."""
    result = session.execute(
        update(MessageFile)
        .where(MessageFile.team_id == team_id, MessageFile.slack_file_id == slack_file_id)
        .values(state="deleted", text=None, url=None, note=None, width=None, height=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def stored_message_id(session: Session, conversation_id: int, slack_ts: str) -> int | None:
    """The id of the stored message with this Slack ts in the conversation."""
    return session.scalar(
        select(Message.id).where(
            Message.conversation_id == conversation_id, Message.slack_ts == slack_ts
        )
    )
