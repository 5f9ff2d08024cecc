"""The turn service on a real database with a small fake model and sink: fast, no HTTP."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.pipeline import TAKEN_OVER_NOTE, TurnPipeline
from bot.conversations.service import (
    INTERRUPTED_NOTE,
    ConversationService,
    IncomingMessage,
    ReplyTarget,
    TurnOutcome,
)
from bot.conversations.turn import TaskCard
from bot.llm.port import ChatMessage, ChatStream, Completion, ModelError, TokenUsage, ToolSpec
from bot.members.directory import Profile, UserDirectory
from bot.model_choice.chain import Catalogue, ModelChooser
from db import turns
from db.models import Conversation, Message, Response, Turn, utcnow

TEAM = "T1"
_timestamps = itertools.count(1)
OWNER = "test-process"


class FakeChatModel:
    """A `ChatModel` answering from a queue; `history` holds what it was asked."""

    provider: str | None = "openai"

    def __init__(self) -> None:
        self.queued: list[str | ModelError] = []
        self.history: list[tuple[str, list[ChatMessage]]] = []

    def enqueue(self, *answers: str | ModelError) -> None:
        """Queue answers (text, or an error to raise after no text)."""
        self.queued.extend(answers)

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ChatStream:
        self.history.append((model, list(messages)))
        answer = self.queued.pop(0) if self.queued else "ok"
        completion = Completion(model=model)

        def deltas() -> Iterator[str]:
            if isinstance(answer, ModelError):
                raise answer
            yield from answer.split(" ")
            completion.usage = TokenUsage(prompt=10, completion=5, total=15)
            completion.finish_reason = "stop"

        return ChatStream(deltas=deltas(), completion=completion)

    def list_models(self) -> list[str]:
        return ["gpt-4o", "gpt-4o-mini"]


@dataclass
class ListSink:
    """A `ReplySink` that remembers what it was told."""

    target: ReplyTarget
    written: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    closings: list[tuple[str, str]] = field(default_factory=list)
    closed: bool = False
    titles: list[str] = field(default_factory=list)
    delivered: bool = True
    tasks: list[TaskCard] = field(default_factory=list)

    def waiting(self, status: str | None = None) -> None:
        pass

    def write(self, text: str) -> None:
        self.written.append(text)

    def task(self, card: TaskCard) -> None:
        self.tasks.append(card)

    def finish(self) -> str | None:
        return f"1700000099.{next(_timestamps):06d}"

    def fail(self, message: str) -> str | None:
        self.failures.append(message)
        return None

    def notice(self, text: str) -> str | None:
        self.notices.append(text)
        return f"1700000099.{next(_timestamps):06d}"

    def refuse(self, text: str) -> None:
        self.refusals.append(text)

    def title(self, text: str) -> None:
        self.titles.append(text)

    def close_interrupted(self, reply_ts: str, note: str) -> None:
        self.closings.append((reply_ts, note))

    def interrupt(self, note: str) -> None:
        self.closings.append(("", note))


class Profiles:
    def fetch(self, team_id: str, slack_user_id: str) -> Profile | None:
        return Profile(slack_user_id.lower(), f"Person {slack_user_id}")


@pytest.fixture
def chat() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def service(sessions: sessionmaker[Session], chat: FakeChatModel) -> ConversationService:
    return ConversationService(
        sessions,
        users=UserDirectory(sessions, Profiles()),
        models=ModelChooser(Catalogue((), chat.list_models), "gpt-4o-mini"),
        chat_model=chat,
        system_prompt="Be brief.",
        max_context_tokens=4000,
        answer_within=600,
        record_retry_for=1,
    )


class Runner:
    """Claims queued turns as a process would, and runs them with list sinks."""

    def __init__(self, sessions: sessionmaker[Session], service: ConversationService) -> None:
        self.sessions = sessions
        self.service = service
        self.sinks: list[ListSink] = []
        self.undelivered = False  # the sinks made say some of their text never reached Slack

    def run_all(self) -> list[TurnOutcome]:
        outcomes = []
        while claimed := self.claim():
            for turn in claimed:
                outcomes.append(self.service.run(turn, owner=OWNER, sinks=self.sink))
        return outcomes

    def claim(self, owner: str = OWNER) -> list[turns.Claimed]:
        now = utcnow()
        with self.sessions.begin() as session:
            return turns.claim(
                session, owner=owner, now=now, until=now + timedelta(seconds=30), limit=10
            )

    def sink(self, target: ReplyTarget, on_start: Any) -> ListSink:
        sink = ListSink(target, delivered=not self.undelivered)
        self.sinks.append(sink)
        return sink


@pytest.fixture
def runner(sessions: sessionmaker[Session], service: ConversationService) -> Runner:
    return Runner(sessions, service)


def mention(text: str, ts: str, **kwargs: Any) -> IncomingMessage:
    fields: dict[str, Any] = {
        "team_id": TEAM,
        "channel_id": "C1",
        "user_id": "U1",
        "bot_user_id": "UBOT",
        "mentions_bot": True,
    }
    return IncomingMessage(text=f"<@UBOT> {text}", ts=ts, **(fields | kwargs))


def answer_one(sessions: sessionmaker[Session], pipeline: TurnPipeline) -> None:
    """Run `pipeline` until a mention it accepts is done (10 s at most), then stop it."""
    pipeline.start()
    try:
        pipeline.accept(mention("hello", "1.000001"))
        deadline = time.monotonic() + 10
        while rows(sessions, Turn.state) != [("done",)] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pipeline.stop(0)


def rows(sessions: sessionmaker[Session], *columns: Any) -> list[Any]:
    with sessions() as session:
        return list(session.execute(select(*columns)).all())


def test_accept_stores_the_message_and_queues_its_turn_once(
    service: ConversationService, sessions: sessionmaker[Session]
) -> None:
    first = service.accept(mention("hello", "1.000001"))
    again = service.accept(mention("hello", "1.000001"))
    assert first.status == "queued" and again.status == "duplicate"
    assert rows(sessions, Message.content, Message.role) == [("hello", "user")]
    assert rows(sessions, Turn.state) == [("queued",)]


def test_a_channel_message_outside_the_bots_threads_is_ignored(
    service: ConversationService, sessions: sessionmaker[Session]
) -> None:
    message = IncomingMessage(team_id=TEAM, channel_id="C1", user_id="U1", text="hi", ts="1.1")
    assert service.accept(message).status == "ignored"
    assert rows(sessions, Message.id) == []


def test_a_turn_is_answered_and_accounted_once(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    chat.enqueue("Hello there")
    service.accept(mention("hello", "1.000001"))
    [outcome] = runner.run_all()
    assert outcome.status == "answered"
    assert "".join(runner.sinks[0].written) == "Hellothere"
    assert rows(sessions, Response.tokens_total, Response.status) == [(15, "ok")]
    assert rows(sessions, Turn.state, Turn.outcome) == [("done", "answered")]
    assert runner.run_all() == []  # nothing left to claim


def test_follow_ups_wait_for_the_turn_before_them_and_see_its_answer(
    service: ConversationService, runner: Runner, chat: FakeChatModel
) -> None:
    chat.enqueue("A1", "A2", "A3")
    service.accept(mention("q1", "1.000001"))
    runner.run_all()
    thread = {"thread_ts": "1.000001", "mentions_bot": False}
    service.accept(mention("q2", "1.000002", **thread))
    service.accept(mention("q3", "1.000003", **thread))
    first = runner.claim()
    assert len(first) == 1  # one turn of a conversation at a time
    assert runner.claim(owner="another process") == []
    runner.service.run(first[0], owner=OWNER, sinks=runner.sink)
    runner.run_all()
    asked = [[m["content"] for m in messages[1:]] for _, messages in chat.history]
    assert asked[-1] == ["q1", "A1", "q2", "A2", "q3"]


def test_a_model_error_is_a_failed_turn_with_an_error_row(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    chat.enqueue(ModelError("The model is down.", retryable=True, detail="503"))
    service.accept(mention("hello", "1.000001"))
    [outcome] = runner.run_all()
    assert outcome.status == "failed"
    assert runner.sinks[0].failures == ["The model is down. You can try again."]
    assert rows(sessions, Response.status, Response.error) == [("error", "503")]


def test_an_answer_that_did_not_fully_reach_slack_is_a_failed_turn_still_accounted(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    chat.enqueue("Hello there")
    service.accept(mention("hello", "1.000001"))
    runner.undelivered = True
    [outcome] = runner.run_all()
    assert outcome.status == "failed"
    assert rows(sessions, Response.status, Response.error, Response.tokens_total) == [
        ("error", "the reply did not fully reach Slack", 15)
    ]
    assert rows(sessions, Response.cost_usd) != [(None,)]  # the model was called: it costs
    assert rows(sessions, Turn.outcome) == [("failed",)]


def test_a_bracket_that_names_no_model_is_part_of_the_prompt(
    service: ConversationService, runner: Runner, chat: FakeChatModel
) -> None:
    service.accept(mention("[WIP] can you review this?", "1.000001"))
    service.accept(mention("[gpt-4o] and this?", "1.000002"))
    assert [o.status for o in runner.run_all()] == ["answered", "answered"]
    (first_model, first), (second_model, second) = chat.history
    assert (first_model, first[-1]["content"]) == ("gpt-4o-mini", "[WIP] can you review this?")
    assert (second_model, second[-1]["content"]) == ("gpt-4o", "and this?")


def test_an_unknown_model_in_a_thread_command_is_refused_and_left_out_of_context(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    service.accept(mention("hello", "1.000001"))
    runner.run_all()
    service.accept(mention("model nonsense-model", "1.000002", thread_ts="1.000001"))
    [outcome] = runner.run_all()
    assert outcome.status == "refused"
    assert "nonsense-model" in runner.sinks[-1].refusals[0]
    service.accept(mention("now properly", "1.000003", thread_ts="1.000001"))
    runner.run_all()
    asked = [m["content"] for m in chat.history[-1][1][1:]]
    assert asked == ["hello", "ok", "now properly"]


def test_model_in_a_thread_changes_its_model_and_is_not_sent_to_the_model(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    service.accept(mention("hello", "1.000001"))
    runner.run_all()
    service.accept(mention("model gpt-4o", "1.000002", thread_ts="1.000001"))
    [outcome] = runner.run_all()
    assert outcome.status == "model_set"
    assert rows(sessions, Conversation.default_model) == [("gpt-4o",)]
    service.accept(mention("and now?", "1.000003", thread_ts="1.000001"))
    runner.run_all()
    model, messages = chat.history[-1]
    assert model == "gpt-4o"
    assert [m["content"] for m in messages[1:]] == ["hello", "ok", "and now?"]


def test_an_old_message_gets_an_apology_instead_of_a_late_answer(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    service.accept(mention("hello", "1.000001"))
    with sessions.begin() as session:
        session.execute(update(Turn).values(created_at=utcnow() - timedelta(hours=1)))
    [outcome] = runner.run_all()
    assert outcome.status == "expired"
    assert chat.history == []
    assert "could not answer this in time" in runner.sinks[0].notices[0]
    assert rows(sessions, Response.status) == [("error",)]


def test_a_turn_taken_up_again_closes_the_reply_left_open_and_answers(
    service: ConversationService, runner: Runner, chat: FakeChatModel, sessions: Any
) -> None:
    service.accept(mention("hello", "1.000001"))
    [claimed] = runner.claim(owner="a process that died")
    with sessions.begin() as session:
        turns.set_reply_ts(session, turn_id=claimed.id, owner="a process that died", reply_ts="1.5")
        session.execute(update(Turn).values(lease_until=utcnow() - timedelta(seconds=1)))
    [outcome] = runner.run_all()
    assert outcome.status == "answered"
    assert runner.sinks[0].closings == [("1.5", INTERRUPTED_NOTE)]
    assert rows(sessions, Turn.attempts) == [(2,)]
    assert len(rows(sessions, Response.id)) == 1


def test_a_turn_whose_lease_passed_to_another_process_records_nothing(
    service: ConversationService, runner: Runner, sessions: Any
) -> None:
    service.accept(mention("hello", "1.000001"))
    [claimed] = runner.claim()
    with sessions.begin() as session:  # as if the lease ran out and another took the turn
        session.execute(update(Turn).values(lease_owner="another process"))
    outcome = service.run(claimed, owner=OWNER, sinks=runner.sink)
    assert outcome.status == "lost"
    assert rows(sessions, Response.id) == []


def test_a_nul_character_is_stored_without_it(
    service: ConversationService, sessions: sessionmaker[Session]
) -> None:
    service.accept(mention("nul\x00here", "1.000001"))
    assert rows(sessions, Message.content) == [("nulhere",)]


class RefusingSink(ListSink):
    """A sink whose ephemeral refusal Slack rejects (say, `user_not_in_channel`)."""

    def refuse(self, text: str) -> None:
        raise RuntimeError("user_not_in_channel")


class BrokenSink(ListSink):
    """A sink that breaks before the answer starts (a bug, a closed executor)."""

    def waiting(self, status: str | None = None) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")


def test_a_turn_that_raised_is_not_stranded_under_this_processs_own_lease(
    sessions: sessionmaker[Session], service: ConversationService
) -> None:
    # One process alone: a turn whose run raised must not wait for a restart (its lease is
    # this process's own, which the claim never takes back), nor block its conversation.
    sinks: list[ListSink] = []

    def make(target: ReplyTarget, on_start: Any) -> ListSink:
        sinks.append(BrokenSink(target))
        return sinks[-1]

    pipeline = TurnPipeline(
        sessions, service, make, workers=1, lease_seconds=0.3, poll_seconds=0.05
    )
    answer_one(sessions, pipeline)
    assert rows(sessions, Turn.state, Turn.outcome) == [("done", "failed")]
    assert sinks[-1].notices  # given up on after the attempts, and told so
    assert len(rows(sessions, Response.id)) == 1


def test_the_dispatcher_survives_an_error_that_is_not_the_drivers(
    sessions: sessionmaker[Session],
    service: ConversationService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pool waiting out its timeout raises sqlalchemy.exc.TimeoutError, not a DBAPIError.
    claim = turns.claim
    failures = iter([PoolTimeout("QueuePool limit reached")])

    def flaky_claim(*args: Any, **kwargs: Any) -> list[turns.Claimed]:
        for failure in failures:
            raise failure
        return claim(*args, **kwargs)

    monkeypatch.setattr(turns, "claim", flaky_claim)
    runner_sinks: list[ListSink] = []

    def make(target: ReplyTarget, on_start: Any) -> ListSink:
        runner_sinks.append(ListSink(target))
        return runner_sinks[-1]

    pipeline = TurnPipeline(sessions, service, make, workers=1, poll_seconds=0.05)
    answer_one(sessions, pipeline)
    assert rows(sessions, Turn.state, Turn.outcome) == [("done", "answered")]


def test_a_record_is_retried_when_the_pool_has_no_connection_for_it(
    service: ConversationService,
    runner: Runner,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finish = turns.finish
    failures = iter([PoolTimeout("QueuePool limit reached")])

    def flaky_finish(*args: Any, **kwargs: Any) -> bool:
        for failure in failures:
            raise failure
        return finish(*args, **kwargs)

    monkeypatch.setattr(turns, "finish", flaky_finish)
    service.accept(mention("hello", "1.000001"))
    [outcome] = runner.run_all()
    assert outcome.status == "answered"
    assert len(rows(sessions, Response.id)) == 1


def test_a_refusal_slack_will_not_show_still_ends_the_turn_as_refused(
    service: ConversationService, sessions: sessionmaker[Session]
) -> None:
    service.accept(mention("", "1.000001"))  # nothing after the mention
    runner = Runner(sessions, service)
    # This one runner's sinks refuse; mypy forbids replacing a method, on purpose, as here.
    runner.sink = lambda target, on_start: RefusingSink(target)  # type: ignore[method-assign]
    [outcome] = runner.run_all()
    assert outcome.status == "refused"
    assert rows(sessions, Turn.state, Turn.outcome) == [("done", "refused")]


def test_turns_claimed_while_the_pipeline_stops_are_given_back(
    sessions: sessionmaker[Session],
    service: ConversationService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dispatcher was inside its claim when stop() looked at what runs here.
    claim = turns.claim
    claiming, release = threading.Event(), threading.Event()

    def slow_claim(*args: Any, **kwargs: Any) -> list[turns.Claimed]:
        claiming.set()
        release.wait(10)
        return claim(*args, **kwargs)

    monkeypatch.setattr(turns, "claim", slow_claim)
    pipeline = TurnPipeline(
        sessions, service, lambda target, on_start: ListSink(target), workers=1, poll_seconds=60
    )
    pipeline.start()
    service.accept(mention("hello", "1.000001"))  # stored, left for the dispatcher to claim
    pipeline.wake()
    assert claiming.wait(10)
    stopping = threading.Thread(target=pipeline.stop, args=(0,))
    stopping.start()
    while not pipeline._stopping:
        time.sleep(0.01)
    release.set()
    stopping.join(10)
    assert rows(sessions, Turn.state, Turn.lease_owner) == [("queued", None)]


def test_a_long_host_name_still_makes_a_lease_owner_the_database_takes(
    sessions: sessionmaker[Session],
    service: ConversationService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fully qualified names run to 253 characters; lease_owner holds 64.
    monkeypatch.setattr(socket, "gethostname", lambda: "ip-10-0-12-34." + "a" * 60 + ".internal")
    pipeline = TurnPipeline(
        sessions, service, lambda target, on_start: ListSink(target), workers=1, poll_seconds=0.05
    )
    answer_one(sessions, pipeline)
    assert rows(sessions, Turn.state, Turn.outcome) == [("done", "answered")]


def test_a_turn_whose_lease_passed_to_another_process_stops_its_reply_here(
    sessions: sessionmaker[Session], service: ConversationService, chat: FakeChatModel
) -> None:
    # This process lost touch with the database long enough for another to take the turn.
    release = threading.Event()
    stream = chat.stream

    def blocked(
        model: str, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] | None = None
    ) -> ChatStream:
        result = stream(model, messages, tools=tools)
        deltas = result.deltas

        def slow() -> Iterator[str]:
            yield "Partly "
            release.wait(10)
            yield from deltas

        result.deltas = slow()
        return result

    # This one model blocks mid-answer; mypy forbids replacing a method, on purpose, as here.
    chat.stream = blocked  # type: ignore[method-assign]
    sinks: list[ListSink] = []

    def sink(target: ReplyTarget, on_start: Any) -> ListSink:
        sinks.append(ListSink(target))
        return sinks[-1]

    pipeline = TurnPipeline(sessions, service, sink, workers=1, lease_seconds=0.3)
    pipeline.start()
    try:
        pipeline.accept(mention("hello", "1.000001"))
        deadline = time.monotonic() + 10
        while not (sinks and sinks[0].written):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with sessions.begin() as session:
            session.execute(update(Turn).values(lease_owner="another process"))
        while not sinks[0].closings:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert sinks[0].closings == [("", TAKEN_OVER_NOTE)]
    finally:
        release.set()
        pipeline.stop(grace=5)
    assert rows(sessions, Response.id) == []  # the other process accounts for its answer
