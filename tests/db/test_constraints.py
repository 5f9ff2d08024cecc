"""The database, not Python, enforces identity and what deletion keeps."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.models import Conversation, Feedback, Message, Response, User


def _conversation(
    session: Session, user: User, thread_ts: str = "1700000000.000100"
) -> Conversation:
    conversation = Conversation(
        team_id="T1",
        channel_id="C1",
        thread_ts=thread_ts,
        default_model="gpt-4o-mini",
        user_id=user.id,
    )
    session.add(conversation)
    session.flush()
    return conversation


def test_duplicate_team_user_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(User(team_id="T1", slack_user_id="U1"))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(User(team_id="T1", slack_user_id="U1"))

    with sessions.begin() as session:
        session.add(User(team_id="T2", slack_user_id="U1"))  # another workspace is another person
        assert len(session.scalars(select(User)).all()) == 2


def test_one_thread_is_one_conversation(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        user = User(team_id="T1", slack_user_id="U1")
        session.add(user)
        session.flush()
        _conversation(session, user)
    with pytest.raises(IntegrityError), sessions.begin() as session:
        _conversation(session, session.scalars(select(User)).one())


def test_one_slack_message_is_one_row(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        user = User(team_id="T1", slack_user_id="U1")
        session.add(user)
        session.flush()
        conversation_id = _conversation(session, user).id
        session.add(
            Message(conversation_id=conversation_id, role="user", content="hi", slack_ts="1.1")
        )
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            Message(conversation_id=conversation_id, role="user", content="hi", slack_ts="1.1")
        )


def test_deleting_a_conversation_removes_messages_and_keeps_responses(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        user = User(team_id="T1", slack_user_id="U1")
        session.add(user)
        session.flush()
        conversation = _conversation(session, user)
        reply = Message(conversation_id=conversation.id, role="assistant", content="hello")
        session.add_all(
            [
                Message(conversation_id=conversation.id, role="user", content="hi", slack_ts="1.1"),
                reply,
            ]
        )
        session.flush()
        session.add(
            Response(
                message_id=reply.id,
                team_id="T1",
                user_id=user.id,
                conversation_id=conversation.id,
                model_used="gpt-4o-mini",
                tokens_prompt=3,
                tokens_completion=2,
                tokens_total=5,
            )
        )

    with sessions.begin() as session:
        session.delete(session.scalars(select(Conversation)).one())

    with sessions.begin() as session:
        assert session.scalars(select(Message)).all() == []
        response = session.scalars(select(Response)).one()
        assert (response.message_id, response.conversation_id) == (None, None)
        assert response.tokens_total == 5


def test_role_and_status_are_checked(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(Response(team_id="T1", model_used="m", status="maybe"))


def test_one_vote_per_person_per_answer(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        response = Response(team_id="T1", model_used="m")
        session.add(response)
        session.flush()
        response_id = response.id
        session.add(
            Feedback(response_id=response_id, team_id="T1", slack_user_id="U1", rating="up")
        )
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            Feedback(response_id=response_id, team_id="T1", slack_user_id="U1", rating="down")
        )
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            Feedback(response_id=response_id, team_id="T1", slack_user_id="U2", rating="meh")
        )
    with sessions.begin() as session:
        # The same user id in another workspace (a shared channel) is another person.
        session.add(
            Feedback(response_id=response_id, team_id="T2", slack_user_id="U1", rating="up")
        )
        session.delete(session.get_one(Response, response_id))
    with sessions() as session:
        assert session.scalars(select(Feedback)).all() == []  # votes go with their answer
