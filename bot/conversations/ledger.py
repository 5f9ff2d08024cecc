"""The ledger: what a turn costs and what became of it, written under the turn's lease.

Before the model is called, a turn is admitted against the budgets (its estimate is held on
its turn row). Afterwards one transaction writes the reply, its `responses` row (which adds
to the running totals), the turn's end and the release of its estimate; only the process
holding the turn's lease can commit it. That write is retried with back-off while the
database is unreachable (the answer was given: its accounting must not be lost), and logged
whole when the process stops for good first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from bot.budgets.gate import Admission, BudgetGate, Limit, Notice
from bot.conversations.answering import Answer
from bot.conversations.context import Context
from bot.conversations.turn import TakenOver, TurnJob, redact, storable
from bot.llm.port import TokenUsage
from bot.llm.pricing import ModelPrice, cost_usd
from bot.metrics.recorder import Metrics
from db import model_defaults, queries, retention, tool_calls, turns
from db.models import utcnow
from db.queries import ResponseRecord
from db.tool_calls import ToolCallRecord
from db.turns import Claimed, Ending

log = logging.getLogger(__name__)
_T = TypeVar("_T")

NOT_DELIVERED = "the reply did not fully reach Slack"


class Ledger:
    """Admits turns against the budgets and records how each ended."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        provider: str | None,
        model_prices: Sequence[ModelPrice] = (),
        budgets: BudgetGate | None = None,
        record_retry_for: float = 600.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics or Metrics()
        self._provider = provider
        self._model_prices = tuple(model_prices)
        self._budgets = budgets
        self._record_retry_for = record_retry_for
        # Set when the process stops for good: a record still failing is then logged whole.
        self.give_up = threading.Event()

    @property
    def checks_budgets(self) -> bool:
        """Whether turns are admitted against budgets."""
        return self._budgets is not None

    def admit(self, job: TurnJob, context: Context) -> Admission:
        """Check the turn against the budgets before the model is called; hold its estimate."""
        assert self._budgets is not None
        model = job.choice.model

        def price(prompt_tokens: int, completion_tokens: int) -> Decimal | None:
            usage = TokenUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
            return cost_usd(model, self._provider, usage, prices=self._model_prices)

        work = job.work
        return self._budgets.admit(
            turn_id=job.id,
            owner=job.owner,
            team_id=work.team_id,
            channel_id=work.channel_id,
            member=work.slack_user_id,
            prompt_tokens=context.prompt_tokens,
            price=price,
            conversation_id=work.conversation_id,
        )

    def response(self, job: TurnJob, answer: Answer, *, asked: bool) -> ResponseRecord:
        """The `responses` row of a turn's answer (`asked`: the model was asked its prompt)."""
        # Every call is priced from its usage, as reported or estimated; a call refused before
        # any text costs nothing (answering gives it a cost of 0). So the cost is None
        # ("unpriced") only when a model that answered has no known price.
        cost: Decimal | None = None
        costs = [
            cost_usd(call.model, self._provider, call.usage, prices=self._model_prices)
            for call in answer.calls
        ]
        known = [c for c in costs if c is not None]
        if known and len(known) == len(costs):
            cost = known[0] if len(known) == 1 else sum(known, Decimal(0))
        error = answer.error.detail if answer.error else None
        if error is None and not answer.delivered:
            error = NOT_DELIVERED
        usage, work = answer.usage, job.work
        return ResponseRecord(
            team_id=work.team_id,
            user_id=work.user_row_id,
            conversation_id=work.conversation_id,
            channel_id=work.channel_id,
            model_used=answer.model,
            provider=self._provider,
            tokens_prompt=usage.prompt,
            tokens_completion=usage.completion,
            tokens_total=usage.total,
            tokens_cached=usage.cached,
            tokens_reasoning=usage.reasoning,
            tokens_estimated=answer.estimated,
            completion_time_ms=round(answer.elapsed * 1000),
            time_to_first_token_ms=None if answer.ttft is None else round(answer.ttft * 1000),
            cost_usd=cost,
            is_streaming=answer.streamed,
            query_size=len(job.prompt if asked else work.text),
            response_size=len(answer.text),
            status="error" if error is not None else "ok",
            error=redact(error)[:2000] if error is not None else None,
            created_at=utcnow(),
        )

    def record(
        self,
        job: TurnJob,
        answer: Answer,
        *,
        outcome: Ending,
        limits: Sequence[Limit] = (),
        asked: bool = True,
    ) -> int | None:
        """Write the reply, its accounting and the turn's end in one transaction; the
        response's id (None when it could not be written before the process stopped).

        `asked`: the turn's prompt was asked of the model (its message is stored as asked);
        otherwise a note answered it instead.
        """
        response = self.response(job, answer, asked=asked)
        work = job.work
        notices: list[Notice] = []

        def write(session: Session) -> int:
            notices.clear()  # a retried transaction finds them again
            if turns.finish(
                session, turn_id=job.id, owner=job.owner, outcome=outcome, now=utcnow()
            ):
                kept = retention.message_exists(session, work.message_id)
            elif retention.turn_exists(session, job.id):
                raise TakenOver(job.id)
            else:
                kept = False  # its conversation was purged meanwhile, the turn with it
            if not kept:
                # The message was deleted while it was answered: the model was still called,
                # so the accounting is kept (and counts against budgets); the reply's text is not.
                row = response
                if not retention.conversation_exists(session, work.conversation_id):
                    row = dataclasses.replace(response, conversation_id=None)
                response_id = queries.add_response(session, row, slack_user_id=work.slack_user_id)
                tool_calls.add_tool_calls(session, _calls(job, answer, response_id, kept=None))
                notices.extend(self._crossed(session, job, limits, response.created_at))
                return response_id
            override = job.model.override
            if asked and (job.prompt != work.text or override != work.override):
                queries.set_message_asked(
                    session, work.message_id, content=job.prompt, model=override
                )
            reply_id = None
            if answer.text:
                reply_id = queries.add_message_once(
                    session,
                    conversation_id=work.conversation_id,
                    user_id=None,
                    role="assistant",
                    content=storable(answer.text),
                    slack_ts=answer.reply_ts,
                    model=answer.model,
                    reply_to_id=work.message_id,
                )
            response_id = queries.add_response(
                session,
                dataclasses.replace(response, message_id=reply_id),
                slack_user_id=work.slack_user_id,
            )
            content = (work.message_id, reply_id)
            tool_calls.add_tool_calls(session, _calls(job, answer, response_id, kept=content))
            notices.extend(self._crossed(session, job, limits, response.created_at))
            return response_id

        response_id = self._write_patiently(
            write, what=f"turn {job.id}", record=dataclasses.asdict(response)
        )
        if response_id is not None:
            self._metrics.answer_cost(
                model=response.model_used, team_id=work.team_id, usd=response.cost_usd
            )
        if notices and self._budgets is not None:
            self._budgets.send(notices)
        return response_id

    def _crossed(
        self, session: Session, job: TurnJob, limits: Sequence[Limit], at: datetime | None
    ) -> list[Notice]:
        if not limits or self._budgets is None or at is None:
            return []
        return self._budgets.crossed(session, team_id=job.work.team_id, limits=limits, at=at)

    def finish(self, job: TurnJob, outcome: Ending) -> None:
        """End a turn that has no `responses` row (it was refused before anything was asked)."""

        def write(session: Session) -> None:
            if not turns.finish(
                session, turn_id=job.id, owner=job.owner, outcome=outcome, now=utcnow()
            ):
                raise TakenOver(job.id)

        self._write_patiently(write, what=f"turn {job.id}", record={"outcome": outcome})

    def forget(self, claimed: Claimed, owner: str) -> None:
        """End a turn whose message was deleted after a crash left it running."""
        with self._sessions.begin() as session:
            turns.finish(session, turn_id=claimed.id, owner=owner, outcome="deleted", now=utcnow())

    def set_conversation_model(
        self, job: TurnJob, *, model: str, note: str, dm_owner: str | None = None
    ) -> None:
        """`model NAME` in a thread: the conversation's new default; its message becomes `note`.

        With `dm_owner` (a Slack user id), that person's default for DMs with the bot is set
        too, in the same transaction.
        """
        work = job.work

        def write(session: Session) -> None:
            if not turns.finish(
                session, turn_id=job.id, owner=job.owner, outcome="model_set", now=utcnow()
            ):
                raise TakenOver(job.id)
            queries.set_conversation_model(
                session,
                conversation_id=work.conversation_id,
                message_id=work.message_id,
                model=model,
                note=note,
            )
            if dm_owner is not None:
                model_defaults.set_default(
                    session,
                    team_id=work.team_id,
                    scope="user",
                    scope_id=dm_owner,
                    model=model,
                    set_by=dm_owner,
                )

        self._write_patiently(write, what=f"turn {job.id}", record={"model_set": model})

    def save_reply_ts(self, turn_id: int, owner: str, reply_ts: str) -> None:
        """Note where the turn's reply is written, so a successor after a crash can close it.

        Written on the reply's own path, once per Slack message of the reply: one short
        UPDATE (a separate thread for it saved nothing measurable on bench/conversations.py).
        """
        try:
            with self._sessions.begin() as session:
                turns.set_reply_ts(session, turn_id=turn_id, owner=owner, reply_ts=reply_ts)
        except SQLAlchemyError:
            # Only a crash in the next seconds would need it; the reply goes on regardless
            # (this runs on the reply's path: nothing may escape into the Slack writer).
            log.warning("could not note where turn %s replies", turn_id, exc_info=True)

    def _write_patiently(
        self, write: Callable[[Session], _T], *, what: str, record: dict[str, Any]
    ) -> _T | None:
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


def _calls(
    job: TurnJob, answer: Answer, response_id: int, *, kept: tuple[int, int | None] | None
) -> list[ToolCallRecord]:
    """The `tool_calls` rows of a turn; their content only when its messages are `kept`
    (the question's and the reply's ids), as message content is."""
    now = utcnow()
    question_id, reply_id = kept if kept is not None else (None, None)
    return [
        ToolCallRecord(
            response_id=response_id,
            team_id=job.work.team_id,
            channel_id=job.work.channel_id,
            question_id=question_id,
            reply_id=reply_id,
            tool=call.tool[:255],
            server=call.server[:64],
            outcome=call.outcome.value,
            duration_ms=round(call.duration * 1000),
            arguments_size=len(call.arguments),
            result_size=len(call.result),
            arguments=storable(call.arguments) if kept is not None else None,
            result=storable(call.result) if kept is not None else None,
            created_at=now,
        )
        for call in answer.tool_calls
    ]


def _is_operational(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)
