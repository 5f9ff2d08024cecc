"""Conversation turns: accept a message (store it, queue its turn), then answer it exactly once.

`accept` runs before Slack gets its acknowledgement (`intake.py`). `run` answers a turn some
process claimed (see `pipeline.py`), top to bottom: its model and prompt from its message's
words (`bot.model_choice.chain`), what the model is shown (`context.py`), the budgets and the
record (`ledger.py`), the model call streamed into the reply (`answering.py`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.gate import BudgetGate, Limit
from bot.conversations.answering import Answerer
from bot.conversations.context import ContextReader
from bot.conversations.history import ThreadHistory, ThreadSource
from bot.conversations.intake import Intake
from bot.conversations.ledger import Ledger
from bot.conversations.tooling import ToolRunner
from bot.conversations.turn import (
    Accepted,
    AcceptStatus,
    Author,
    History,
    IncomingMessage,
    Origin,
    ReplySink,
    ReplyTarget,
    SinkFactory,
    TakenOver,
    TurnJob,
    TurnOutcome,
    TurnStatus,
    redact,
    storable,
)
from bot.files.service import FileService
from bot.llm.port import ChatModel
from bot.llm.pricing import ModelPrice
from bot.members.directory import UserDirectory
from bot.metrics.recorder import Metrics
from bot.model_choice.chain import ModelChooser
from db import tool_calls, turns
from db.models import utcnow
from db.turns import Claimed, Ending

__all__ = [
    "INTERRUPTED_NOTE",
    "MAX_PROMPT_CHARS",
    "AcceptStatus",
    "Accepted",
    "Author",
    "ConversationService",
    "IncomingMessage",
    "ReplySink",
    "ReplyTarget",
    "SinkFactory",
    "TurnOutcome",
    "TurnStatus",
    "redact",
    "storable",
]

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 40_000
INTERRUPTED_NOTE = "_(Interrupted: I am answering again below.)_"
FILES_STATUS = "is reading the files…"
# What a mention with no words asks in a thread the bot was called into.
ABOUT_THE_THREAD = "What is this thread about, and what would help here?"
# The thread status while a thread the bot was called into is read from Slack.
THREAD_STATUS = "is reading the thread…"
# What each end of a turn writes in `turns.outcome`.
_ENDINGS: dict[TurnStatus, Ending] = {
    TurnStatus.ANSWERED: "answered",
    TurnStatus.FAILED: "failed",
    TurnStatus.REFUSED: "refused",
    TurnStatus.MODEL_SET: "model_set",
    TurnStatus.EXPIRED: "expired",
}


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
        metrics: Metrics | None = None,
        files: FileService | None = None,
        tools: ToolRunner | None = None,
        threads: ThreadSource | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self._sessions = sessions
        self._models = models
        self._answer_within = timedelta(seconds=answer_within)
        self._max_attempts = max_attempts
        self._intake = Intake(sessions, users=users, models=models)
        self._files = files
        self._context = ContextReader(
            sessions,
            users=users,
            system_prompt=system_prompt,
            max_tokens=max_context_tokens,
            files=files,
        )
        self._answerer = Answerer(chat_model, tools)
        self._has_tools = tools is not None
        # Threads the bot is called into are read from Slack once (none without a source).
        self._history = None
        if threads is not None:
            self._history = ThreadHistory(sessions, threads, users=users, retention=retention)
        self._ledger = Ledger(
            sessions,
            provider=chat_model.provider,
            model_prices=model_prices,
            budgets=budgets,
            record_retry_for=record_retry_for,
            metrics=metrics,
        )
        # Set when the process stops for good: a record still failing is then logged whole.
        self.give_up = self._ledger.give_up

    def accept(self, message: IncomingMessage, *, override: str | None = None) -> Accepted:
        """Store `message` and queue its turn, once however often it is delivered (raises
        when the database cannot be reached: Slack must then deliver the event again)."""
        return self._intake.accept(message, override=override)

    def run(self, claimed: Claimed, *, owner: str, sinks: SinkFactory) -> TurnOutcome:
        """Answer a claimed turn, or refuse or excuse it, and record what became of it."""
        with self._sessions() as session:
            work = turns.work(session, claimed.id)
        if work is None:
            # Its message was deleted after a crash left the turn running: nothing to answer.
            self._ledger.forget(claimed, owner)
            return TurnOutcome(TurnStatus.LOST)
        job = TurnJob.of(claimed, owner, work)
        sink = sinks(job.target, lambda ts: self._ledger.save_reply_ts(claimed.id, owner, ts))
        if claimed.reply_ts and claimed.attempts > 1:
            sink.close_interrupted(claimed.reply_ts, INTERRUPTED_NOTE)
        try:
            return self._run(job, sink)
        except TakenOver:
            log.warning("turn %s was taken over by another process; not recorded here", job.id)
            return TurnOutcome(TurnStatus.LOST)

    def _run(self, job: TurnJob, sink: ReplySink) -> TurnOutcome:
        if _age(job.work.stored_at) > self._answer_within:
            minutes = round(self._answer_within.total_seconds() / 60)
            apology = (
                f"Sorry, I could not answer this in time (within {minutes} minutes), and a late "
                "answer would only confuse the thread. Please ask again."
            )
            return self._excuse(job, sink, apology, TurnStatus.EXPIRED)
        if job.claimed.attempts > self._max_attempts:
            note = (
                f"Sorry, answering this failed {self._max_attempts} times; I have given up on "
                "it. Please ask again, perhaps in other words."
            )
            return self._excuse(job, sink, note, TurnStatus.FAILED)

        job = job.asked(self._models.for_words(job.choice, job.work.text, starts_dm=job.starts_dm))
        if not job.prompt and job.work.origin == Origin.CALLED_IN:
            # "@Switchboard" alone in a people's thread: a question about the thread.
            job = job.asked(dataclasses.replace(job.model, prompt=ABOUT_THE_THREAD))
        files = self._files
        work = job.work
        shared = []
        if files is not None and work.has_files:
            shared = files.shared(work.conversation_id, upto=work.message_id, upto_ts=work.slack_ts)
        with_files = any(row.message_id == work.message_id for row in shared)
        refusal = _refusal(job.prompt, with_files=with_files) or job.model.unknown
        if refusal is not None:
            try:  # Slack may refuse an ephemeral (the author left the channel): still refused
                sink.refuse(refusal)
            except Exception:
                log.exception("could not tell the author why turn %s was refused", job.id)
            self._ledger.finish(job, _ENDINGS[TurnStatus.REFUSED])
            return TurnOutcome(TurnStatus.REFUSED)
        if job.model.sets_default is not None:
            return self._set_conversation_model(job, sink, job.model.sets_default)

        unread: str | None = None  # why the thread could not be read, if it could not
        if job.work.history == History.NEEDED and self._history is not None:
            sink.waiting(THREAD_STATUS)
            unread = self._history.read(job.work).note
            if files is not None:  # the files of the messages just read
                shared = files.shared(
                    work.conversation_id, upto=work.message_id, upto_ts=work.slack_ts
                )
        if files is not None and any(row.state == "pending" for row in shared):
            # Downloads and extraction happen here, in the turn's worker, after the ack; they
            # may take seconds, so the thread shows what is going on.
            sink.waiting(FILES_STATUS)
            shared = files.read_pending(shared)
        context = self._context.for_turn(job, shared)
        limits: tuple[Limit, ...] = ()
        if self._ledger.checks_budgets and job.work.has_budgets:
            admission = self._ledger.admit(job, context)
            if admission.lost:
                raise TakenOver(job.id)
            if not admission.admitted:
                assert admission.refusal is not None
                return self._excuse(
                    job, sink, admission.refusal, TurnStatus.REFUSED,
                    detail="not answered: over budget", private=admission.private,
                )  # fmt: skip
            limits = admission.limits
        answer = self._answerer.answer(
            job, context, sink, tools=self._tools_allowed(job), note=unread
        )
        ok = answer.error is None and answer.delivered
        status = TurnStatus.ANSWERED if ok else TurnStatus.FAILED
        response_id = self._ledger.record(job, answer, outcome=_ENDINGS[status], limits=limits)
        return TurnOutcome(status, model=answer.model, response_id=response_id)

    def _tools_allowed(self, job: TurnJob) -> bool:
        """Whether this turn may use tools: some are configured, and its channel allows them."""
        if not self._has_tools:
            return False
        with self._sessions() as session:
            return tool_calls.tools_enabled(session, job.work.team_id, job.work.channel_id)

    def _excuse(
        self,
        job: TurnJob,
        sink: ReplySink,
        note: str,
        status: TurnStatus,
        *,
        detail: str | None = None,
        private: bool = False,
    ) -> TurnOutcome:
        """Answer with a note instead of the model: the turn ends as an accounted error.

        A `private` note is shown to the author only (it is about their own limit).
        """
        detail = detail or f"not answered: {status.value}"
        answer = self._answerer.excuse(job, sink, note, detail=detail, private=private)
        outcome = _ENDINGS[status]
        response_id = self._ledger.record(job, answer, outcome=outcome, asked=False)
        return TurnOutcome(status, model=job.choice.model, response_id=response_id)

    def _set_conversation_model(self, job: TurnJob, sink: ReplySink, model: str) -> TurnOutcome:
        """`model NAME`: change the conversation's default (at the top of a DM, the person's
        DM default too); not sent to the model."""
        who = job.work.slack_user_id or "someone"
        if job.model.for_dms and job.work.slack_user_id:
            note = f"<@{who}> set their model for DMs with me to {model}."
            self._ledger.set_conversation_model(job, model=model, note=note, dm_owner=who)
            sink.notice(
                f"From now on, your DMs with me use `{model}`. `model NAME` changes it again; "
                "in a thread it changes that thread only."
            )
            return TurnOutcome(TurnStatus.MODEL_SET, model=model)
        note = f"<@{who}> set this conversation's model to {model}."
        self._ledger.set_conversation_model(job, model=model, note=note)  # ends "model_set"
        sink.notice(f"From now on, `{model}` answers in this thread (set by <@{who}>).")
        return TurnOutcome(TurnStatus.MODEL_SET, model=model)


def _refusal(prompt: str, *, with_files: bool = False) -> str | None:
    """Why a message is not sent to the model, if it is not (files alone are a question)."""
    if not prompt and not with_files:
        return "Ask me something after the mention, for example `@Switchboard hello`."
    if len(prompt) > MAX_PROMPT_CHARS:
        return (
            f"That message is {len(prompt):,} characters long; I take at most "
            f"{MAX_PROMPT_CHARS:,}. Attach less text, or split it over several messages."
        )
    return None


def _age(stored_at: datetime) -> timedelta:
    now = utcnow()
    if stored_at.tzinfo is None:  # SQLite hands back naive datetimes (stored in UTC)
        now = now.replace(tzinfo=None)
    return now - stored_at
