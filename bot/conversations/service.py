"""Conversation turns: accept a message (store it, queue its turn), then answer it exactly once.

`accept` runs before Slack gets its acknowledgement and does nothing slow: it stores the
message and its turn in one transaction, or raises, so that Slack delivers the event again.
`run` answers a turn some process claimed (see `pipeline.py`): it reads the message back, asks
the model with no transaction open, streams the reply, and records the outcome, the reply and
its accounting in one transaction that only the turn's lease holder can commit.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.gate import Admission, BudgetGate, Limit, Notice
from bot.conversations.context import Turn, build_context, estimate_tokens, strip_mentions
from bot.llm.port import ChatModel, ChatStream, ModelError, TokenUsage
from bot.llm.pricing import ModelPrice, cost_usd
from bot.members.directory import UserDirectory
from bot.model_choice.chain import (
    CatalogueUnavailable,
    ModelChooser,
    UnknownModel,
    parse_thread_command,
)
from db import queries, retention, turns
from db.models import Conversation, Message, utcnow
from db.turns import Claimed, Work

log = logging.getLogger(__name__)
_SECRET = re.compile(r"\b(sk|xox[abpr]|xapp)-[A-Za-z0-9_*\-]{4,}")

MAX_PROMPT_CHARS = 40_000
INTERRUPTED_NOTE = "_(Interrupted: I am answering again below.)_"


def redact(text: str) -> str:
    """The text with anything shaped like an API key or Slack token blanked out."""
    return _SECRET.sub("[redacted]", text)


def storable(text: str) -> str:
    """`text` without NUL characters, which PostgreSQL refuses in text columns."""
    return text.replace("\x00", "")


@dataclass(frozen=True)
class IncomingMessage:
    """A message someone wrote where the bot may answer."""

    team_id: str
    channel_id: str
    user_id: str
    text: str
    ts: str
    thread_ts: str | None = None
    is_dm: bool = False
    mentions_bot: bool = False
    bot_user_id: str | None = None

    @property
    def conversation_ts(self) -> str:
        """The thread this message belongs to (a top-level message starts its own)."""
        return self.thread_ts or self.ts


@dataclass(frozen=True)
class ReplyTarget:
    """Where a turn's reply goes: a thread, and the person it answers."""

    team_id: str
    channel_id: str
    thread_ts: str
    user_id: str


class ReplySink(Protocol):
    """Where a reply goes while it is written (a Slack thread, in production)."""

    def waiting(self) -> None:
        """Show that an answer is on its way."""

    def write(self, text: str) -> None:
        """Add text to the reply."""

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


# Builds the sink of one turn; the callback is given the id of each of the reply's messages
# as soon as it exists (the latest is the one left open should the process die).
SinkFactory = Callable[[ReplyTarget, Callable[[str], None]], ReplySink]


@dataclass(frozen=True)
class Accepted:
    """What `accept` did with a message: "queued", "claimed", "duplicate" or "ignored"."""

    status: str
    turn_id: int | None = None
    claimed: Claimed | None = None  # when "claimed": the turn, leased to the caller


@dataclass(frozen=True)
class TurnOutcome:
    """What became of one turn."""

    # "answered", "failed", "refused", "model_set", "expired", or "lost" (taken over)
    status: str
    model: str | None = None
    response_id: int | None = None


class TakenOver(Exception):
    """The turn's lease passed to another process; this attempt records nothing."""


@dataclass
class _Reply:
    """A finished attempt at answering, as it will be recorded."""

    text: str
    reply_ts: str | None
    model: str
    usage: TokenUsage
    estimated: bool
    elapsed: float
    ttft: float | None
    is_streaming: bool
    error: ModelError | None


class ConversationService:
    """Answers messages in threads, one persisted conversation per thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        users: UserDirectory,
        models: ModelChooser,
        chat_model: ChatModel,
        system_prompt: str,
        max_context_tokens: int,
        model_prices: Sequence[ModelPrice] = (),
        answer_within: float = 600.0,
        max_attempts: int = 3,
        record_retry_for: float = 600.0,
        budgets: BudgetGate | None = None,
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._models = models
        self._chat_model = chat_model
        self._system_prompt = system_prompt
        self._max_context_tokens = max_context_tokens
        self._model_prices = tuple(model_prices)
        self._answer_within = timedelta(seconds=answer_within)
        self._max_attempts = max_attempts
        self._record_retry_for = record_retry_for
        self._budgets = budgets
        # Set when the process stops for good: a record still failing is then logged whole.
        self.give_up = threading.Event()

    # --- before the acknowledgement -------------------------------------------------------
    def accept(
        self,
        message: IncomingMessage,
        *,
        override: str | None = None,
        claim_for: tuple[str, datetime] | None = None,
    ) -> Accepted:
        """Store `message` and queue its turn, once however often it is delivered.

        The bot answers DMs, mentions, and replies in the threads it is part of. Raises when
        the database cannot be reached: Slack must then not be told the event arrived. With
        `claim_for` (owner, lease end), the turn of a message that starts a conversation is
        claimed for that owner in the same transaction: it has nothing to wait for.
        """
        thread = self._existing_thread(message)
        if thread is None and not (message.is_dm or message.mentions_bot):
            return Accepted("ignored")
        text = storable(strip_mentions(message.text, message.bot_user_id))
        with self._sessions.begin() as session:
            user_row_id = self._users.row_id(session, message.team_id, message.user_id)
            started = False
            if thread is not None:
                conversation_id = thread.id
            else:
                conversation_id, started = self._start_conversation(
                    session, message, user_row_id, text
                )
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
                # Retried or doubly delivered: its turn is queued already, or done.
                return Accepted("duplicate")
            if override is None:
                pending = self._models.take_pending(
                    session,
                    team_id=message.team_id,
                    channel_id=message.channel_id,
                    slack_user_id=message.user_id,
                )
                if pending is not None:
                    session.execute(
                        update(Message).where(Message.id == message_id).values(model=pending)
                    )
            if started and claim_for is not None:
                owner, until = claim_for
                turn_id = turns.add_turn(
                    session,
                    message_id=message_id,
                    conversation_id=conversation_id,
                    owner=owner,
                    until=until,
                )
                return Accepted("claimed", turn_id, Claimed(turn_id, 1, None))
            turn_id = turns.add_turn(
                session, message_id=message_id, conversation_id=conversation_id
            )
        return Accepted("queued", turn_id)

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
    ) -> tuple[int, bool]:
        """The thread's conversation, and whether this transaction created it."""
        scope, scope_id = self._models.scope_for(
            message.channel_id, message.user_id, is_dm=message.is_dm
        )
        created = queries.start_conversation(
            session,
            team_id=message.team_id,
            channel_id=message.channel_id,
            thread_ts=message.conversation_ts,
            scope=scope,
            scope_id=scope_id,
            setting_default=self._models.default_model,
            user_id=user_row_id,
            title=title,
        )
        if created is not None:
            return created.id, True
        # Someone else (a retry, another process) created it a moment ago.
        found = queries.get_thread(
            session, message.team_id, message.channel_id, message.conversation_ts
        )
        assert found is not None
        return found.id, False

    # --- on a worker, once the turn is claimed -------------------------------------------
    def run(self, claimed: Claimed, *, owner: str, sinks: SinkFactory) -> TurnOutcome:
        """Answer a claimed turn, or refuse or excuse it, and record what became of it."""
        with self._sessions() as session:
            work = turns.work(session, claimed.id)
        if work is None:
            # Its message was deleted after a crash left the turn running: nothing to answer.
            with self._sessions.begin() as session:
                turns.finish(
                    session, turn_id=claimed.id, owner=owner, outcome="deleted", now=utcnow()
                )
            return TurnOutcome("lost")
        target = ReplyTarget(
            work.team_id, work.channel_id, work.thread_ts, work.slack_user_id or ""
        )
        sink = sinks(target, lambda ts: self._save_reply_ts(claimed.id, owner, ts))
        if claimed.reply_ts and claimed.attempts > 1:
            sink.close_interrupted(claimed.reply_ts, INTERRUPTED_NOTE)
        try:
            return self._run(claimed, work, sink, owner=owner)
        except TakenOver:
            log.warning("turn %s was taken over by another process; not recorded here", claimed.id)
            return TurnOutcome("lost")

    def _run(self, claimed: Claimed, work: Work, sink: ReplySink, *, owner: str) -> TurnOutcome:
        model = work.override or work.default_model
        if _age(work.stored_at) > self._answer_within:
            minutes = round(self._answer_within.total_seconds() / 60)
            apology = (
                f"Sorry, I could not answer this in time (within {minutes} minutes), and a late "
                "answer would only confuse the thread. Please ask again."
            )
            return self._excuse(claimed, work, sink, owner, model, apology, "expired")
        if claimed.attempts > self._max_attempts:
            note = (
                f"Sorry, answering this failed {self._max_attempts} times; I have given up on "
                "it. Please ask again, perhaps in other words."
            )
            return self._excuse(claimed, work, sink, owner, model, note, "failed")

        text = work.text
        new_default = parse_thread_command(text)
        inline = None
        if new_default is None:  # `[NAME] …` only when NAME is a model: `[WIP] …` is a prompt
            inline, text = self._models.catalogue.split_override(text)
            model = inline or model
        refusal = self._refusal(text, new_default)
        if refusal is None and new_default is not None:
            try:
                model = self._models.catalogue.resolve(new_default)
            except (UnknownModel, CatalogueUnavailable) as exc:
                refusal = str(exc)
        if refusal is not None:
            try:  # Slack may refuse an ephemeral (the author left the channel): still refused
                sink.refuse(refusal)
            except Exception:
                log.exception("could not tell the author why turn %s was refused", claimed.id)
            self._finish(claimed.id, owner, "refused")
            return TurnOutcome("refused")
        if new_default is not None:
            return self._set_conversation_model(claimed, work, sink, owner, model)
        if inline is not None:
            model_source: str | None = model
        else:
            model_source = work.override
        context, first_question = self._context(work, text)
        limits: tuple[Limit, ...] = ()
        if self._budgets is not None:
            admission = self._admit(claimed, work, owner, model, context)
            if admission.lost:
                raise TakenOver(claimed.id)
            if not admission.admitted:
                assert admission.refusal is not None
                return self._excuse(
                    claimed, work, sink, owner, model, admission.refusal, "refused",
                    detail="not answered: over budget", private=admission.private,
                )  # fmt: skip
            limits = admission.limits
        reply = self._answer(work, text, model, sink, context, first_question=first_question)
        response_id = self._record(
            claimed.id, owner, work, reply, outcome="failed" if reply.error else "answered",
            prompt=(text, model_source), limits=limits,
        )  # fmt: skip
        return TurnOutcome(
            "failed" if reply.error else "answered", model=reply.model, response_id=response_id
        )

    @staticmethod
    def _refusal(text: str, new_default: str | None) -> str | None:
        if not text and new_default is None:
            return "Ask me something after the mention, for example `@Switchboard hello`."
        if len(text) > MAX_PROMPT_CHARS:
            return (
                f"That message is {len(text):,} characters long; I take at most "
                f"{MAX_PROMPT_CHARS:,}. Attach less text, or split it over several messages."
            )
        return None

    def _context(self, work: Work, text: str) -> tuple[list[dict[str, str]], bool]:
        """What the model is shown: the thread up to this message, as it is to be asked; and
        whether the message is the thread's first question."""
        if work.slack_user_id:  # refreshes the name the model sees, when it is stale
            self._users.member(work.team_id, work.slack_user_id)
        with self._sessions() as session:
            said = queries.thread_history(session, work.conversation_id, upto=work.message_id)
        history = [Turn(s.role, s.content, s.author) for s in said]
        if history and history[-1].role == "user":  # this message, as it is to be asked
            history[-1] = Turn("user", text, history[-1].author)
        context = build_context(self._system_prompt, history, max_tokens=self._max_context_tokens)
        return context, len(history) == 1

    def _admit(
        self, claimed: Claimed, work: Work, owner: str, model: str, context: list[dict[str, str]]
    ) -> Admission:
        """Check the turn against the budgets before the model is called."""
        assert self._budgets is not None
        provider = self._chat_model.provider

        def price(prompt_tokens: int, completion_tokens: int) -> Decimal | None:
            usage = TokenUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
            return cost_usd(model, provider, usage, prices=self._model_prices)

        return self._budgets.admit(
            turn_id=claimed.id,
            owner=owner,
            team_id=work.team_id,
            channel_id=work.channel_id,
            member=work.slack_user_id,
            prompt_tokens=sum(estimate_tokens(m["content"]) for m in context),
            price=price,
        )

    def _answer(
        self,
        work: Work,
        text: str,
        model: str,
        sink: ReplySink,
        context: list[dict[str, str]],
        *,
        first_question: bool,
    ) -> _Reply:
        """Call the model with no transaction open and stream its answer into `sink`."""
        sink.waiting()
        started = time.monotonic()
        first_token: float | None = None
        parts: list[str] = []
        error: ModelError | None = None
        stream: ChatStream | None = None
        try:
            stream = self._chat_model.stream(model, context)
            for delta in stream:
                if first_token is None:
                    first_token = time.monotonic()
                parts.append(delta)
                sink.write(delta)
            if stream.completion.finish_reason == "length":
                sink.write("\n\n_(Cut off: the model reached its length limit.)_")
        except ModelError as exc:
            error = exc
            log.warning("model call failed for %s: %s", model, redact(exc.detail))
        except Exception as exc:
            # Whatever broke (Slack refusing our text, a bug), the turn is still accounted for.
            log.exception("turn failed while the answer was being written")
            error = ModelError(
                "Something went wrong on our side while writing the answer.",
                retryable=True,
                detail=f"{type(exc).__name__}: {exc}",
            )
        elapsed = time.monotonic() - started
        reply = "".join(parts)
        if error is None and not reply:
            error = ModelError(
                "The model sent back an empty answer; another model may do better.",
                retryable=True,
            )
        reply_ts = self._close_reply(sink, error)
        if first_question and work.channel_id.startswith("D"):
            # A new conversation in the Messages tab is named after its first question, from
            # our own copy, after the answer: no second model call, nothing before the answer.
            sink.title(text)
        completion = stream.completion if stream is not None else None
        model_used = (completion.model if completion else "") or model
        usage = completion.usage if completion else None
        estimated = usage is None
        if usage is None:
            if error is not None and not reply:
                # Refused before any text came (bad key, rate limit, timeout): nothing to bill.
                usage = TokenUsage(prompt=0, completion=0, total=0)
            else:
                prompt_tokens = sum(estimate_tokens(m["content"]) for m in context)
                completion_tokens = estimate_tokens(reply) if reply else 0
                usage = TokenUsage(
                    prompt_tokens, completion_tokens, prompt_tokens + completion_tokens
                )
        return _Reply(
            text=reply,
            reply_ts=reply_ts,
            model=model_used,
            usage=usage,
            estimated=estimated,
            elapsed=elapsed,
            ttft=None if first_token is None else first_token - started,
            is_streaming=completion.streamed if completion else True,
            error=error,
        )

    @staticmethod
    def _close_reply(sink: ReplySink, error: ModelError | None) -> str | None:
        """Finish the reply, or end it with the error in plain words; its first message's id."""
        try:
            if error is None:
                return sink.finish()
            retry = " You can try again." if error.retryable else ""
            return sink.fail(f"{error.message}{retry}")
        except Exception:
            log.exception("could not close the reply in Slack")
            return None

    def _excuse(
        self,
        claimed: Claimed,
        work: Work,
        sink: ReplySink,
        owner: str,
        model: str,
        text: str,
        outcome: str,
        *,
        detail: str | None = None,
        private: bool = False,
    ) -> TurnOutcome:
        """Answer with a note instead of the model: the turn ends as an accounted error.

        A `private` note is shown to the author only (it is about their own limit).
        """
        reply_ts = None
        try:
            if private:
                sink.refuse(text)
            else:
                reply_ts = sink.notice(text)
        except Exception:
            log.exception("could not post a note in Slack")
        reply = _Reply(
            text="",
            reply_ts=reply_ts,
            model=model,
            usage=TokenUsage(0, 0, 0, cost_usd=Decimal(0)),  # no model call: free, not unpriced
            estimated=False,
            elapsed=0.0,
            ttft=None,
            is_streaming=False,
            error=ModelError(text, retryable=False, detail=detail or f"not answered: {outcome}"),
        )
        response_id = self._record(claimed.id, owner, work, reply, outcome=outcome)
        return TurnOutcome(outcome, model=model, response_id=response_id)

    def _record(
        self,
        turn_id: int,
        owner: str,
        work: Work,
        reply: _Reply,
        *,
        outcome: str,
        prompt: tuple[str, str | None] | None = None,
        limits: Sequence[Limit] = (),
    ) -> int | None:
        """Write the reply, its accounting and the turn's end in one transaction.

        Retried with back-off while the database is unreachable (the answer was given; its
        accounting must not be lost); logged whole when the process stops for good first.
        """
        provider = self._chat_model.provider
        cost: Decimal | None = None
        if reply.text or not reply.estimated:
            cost = cost_usd(reply.model, provider, reply.usage, prices=self._model_prices)
        error = reply.error
        response = {
            "team_id": work.team_id,
            "user_id": work.user_row_id,
            "conversation_id": work.conversation_id,
            "channel_id": work.channel_id,
            "model_used": reply.model,
            "provider": provider,
            "tokens_prompt": reply.usage.prompt,
            "tokens_completion": reply.usage.completion,
            "tokens_total": reply.usage.total,
            "tokens_cached": reply.usage.cached,
            "tokens_reasoning": reply.usage.reasoning,
            "tokens_estimated": reply.estimated,
            "completion_time_ms": round(reply.elapsed * 1000),
            "time_to_first_token_ms": None if reply.ttft is None else round(reply.ttft * 1000),
            "cost_usd": cost,
            "is_streaming": reply.is_streaming,
            "query_size": len(prompt[0]) if prompt else len(work.text),
            "response_size": len(reply.text),
            "status": "error" if error else "ok",
            "error": redact(error.detail)[:2000] if error else None,
            "created_at": utcnow(),
        }

        notices: list[Notice] = []

        def write(session: Session) -> int:
            notices.clear()  # a retried transaction finds them again
            if turns.finish(session, turn_id=turn_id, owner=owner, outcome=outcome, now=utcnow()):
                asked = retention.message_exists(session, work.message_id)
            elif retention.turn_exists(session, turn_id):
                raise TakenOver(turn_id)
            else:
                asked = False  # its conversation was purged meanwhile, the turn with it
            if not asked:
                # The message was deleted while it was answered: the model was still called,
                # so the accounting is kept (and counts against budgets); the reply's text is not.
                kept = response
                if not retention.conversation_exists(session, work.conversation_id):
                    kept = response | {"conversation_id": None}
                response_id = queries.add_response(
                    session, message_id=None, slack_user_id=work.slack_user_id, **kept
                )
                notices.extend(self._crossed(session, work, limits, response["created_at"]))
                return response_id
            if prompt is not None and (prompt[0] != work.text or prompt[1] != work.override):
                session.execute(
                    update(Message)
                    .where(Message.id == work.message_id)
                    .values(content=prompt[0], model=prompt[1])
                )
            reply_id = None
            if reply.text:
                reply_id = queries.add_message_once(
                    session,
                    conversation_id=work.conversation_id,
                    user_id=None,
                    role="assistant",
                    content=storable(reply.text),
                    slack_ts=reply.reply_ts,
                    model=reply.model,
                    reply_to_id=work.message_id,
                )
            response_id = queries.add_response(
                session, message_id=reply_id, slack_user_id=work.slack_user_id, **response
            )
            notices.extend(self._crossed(session, work, limits, response["created_at"]))
            return response_id

        response_id = self._write_patiently(write, what=f"turn {turn_id}", record=response)
        if notices and self._budgets is not None:
            self._budgets.send(notices)
        return response_id

    def _crossed(
        self, session: Session, work: Work, limits: Sequence[Limit], at: datetime
    ) -> list[Notice]:
        if not limits or self._budgets is None:
            return []
        return self._budgets.crossed(session, team_id=work.team_id, limits=limits, at=at)

    def _finish(self, turn_id: int, owner: str, outcome: str) -> None:
        def write(session: Session) -> None:
            if not turns.finish(
                session, turn_id=turn_id, owner=owner, outcome=outcome, now=utcnow()
            ):
                raise TakenOver(turn_id)

        self._write_patiently(write, what=f"turn {turn_id}", record={"outcome": outcome})

    def _write_patiently(
        self, write: Callable[[Session], Any], *, what: str, record: dict[str, Any]
    ) -> Any:
        delay = 0.25
        deadline = time.monotonic() + self._record_retry_for
        while True:
            try:
                with self._sessions.begin() as session:
                    return write(session)
            except (DBAPIError, PoolTimeout) as exc:
                # A pool with no free connection (the database frozen) is worth waiting out too.
                if isinstance(exc, DBAPIError) and not (
                    exc.connection_invalidated or _is_operational(exc)
                ):
                    raise
                if self.give_up.is_set() or time.monotonic() >= deadline:
                    log.error(
                        "could not record %s; its record follows whole: %s",
                        what,
                        json.dumps(record, default=str),
                    )
                    return None
                log.warning(
                    "could not record %s yet (%s); retrying in %.1f s",
                    what,
                    getattr(exc, "orig", exc),
                    delay,
                )
                self.give_up.wait(delay)
                delay = min(delay * 2, 10.0)

    def _save_reply_ts(self, turn_id: int, owner: str, reply_ts: str) -> None:
        try:
            with self._sessions.begin() as session:
                turns.set_reply_ts(session, turn_id=turn_id, owner=owner, reply_ts=reply_ts)
        except DBAPIError:
            # Only a crash in the next seconds would need it; the reply goes on regardless.
            log.warning("could not note where turn %s replies", turn_id, exc_info=True)

    def _set_conversation_model(
        self, claimed: Claimed, work: Work, sink: ReplySink, owner: str, model: str
    ) -> TurnOutcome:
        """`model NAME` in a thread: change that conversation's default, not sent to the model."""
        who = work.slack_user_id or "someone"

        def write(session: Session) -> None:
            if not turns.finish(
                session, turn_id=claimed.id, owner=owner, outcome="model_set", now=utcnow()
            ):
                raise TakenOver(claimed.id)
            session.execute(
                update(Conversation)
                .where(Conversation.id == work.conversation_id)
                .values(default_model=model)
            )
            # Kept as a note, left out of what the model is shown.
            session.execute(
                update(Message)
                .where(Message.id == work.message_id)
                .values(
                    role="system", content=f"<@{who}> set this conversation's model to {model}."
                )
            )

        self._write_patiently(write, what=f"turn {claimed.id}", record={"model_set": model})
        sink.notice(f"From now on, `{model}` answers in this thread (set by <@{who}>).")
        return TurnOutcome("model_set", model=model)


def _age(stored_at: datetime) -> timedelta:
    now = utcnow()
    if stored_at.tzinfo is None:  # SQLite hands back naive datetimes (stored in UTC)
        now = now.replace(tzinfo=None)
    return now - stored_at


def _is_operational(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)
