"""Answering: the model call, streamed into the turn's `ReplySink`, or a note instead of it.

No transaction is open here. What the model gave is gathered in an `Answer`, which sums what
every model call of a turn costs. With tools (`tooling.py`) a turn is a loop: the model asks
for calls, they run, their results go back to it, until it answers; at most MAX_TOOL_CALLS
calls, then one last model call without tools.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from bot.conversations.context import Context, estimate_tokens
from bot.conversations.tooling import ToolRunner, round_messages, tool_specs, with_tools_note
from bot.conversations.turn import ReplySink, TurnJob, redact
from bot.llm.port import ChatMessage, ChatModel, ChatStream, Completion, ModelError, TokenUsage
from bot.tools.results import CallRecord, Outcome
from bot.tools.tool_names import OfferedTool

log = logging.getLogger(__name__)

CUT_OFF_NOTE = "\n\n_(Cut off: the model reached its length limit.)_"


@dataclass(frozen=True)
class Call:
    """One model call of a turn, as the endpoint reported it (or as estimated)."""

    model: str  # the model the endpoint says it used
    usage: TokenUsage
    estimated: bool  # the endpoint reported no usage: `usage` is our estimate
    streamed: bool


@dataclass
class Answer:
    """What a turn's model calls gave, summed, as the ledger records it."""

    asked: str  # the model the turn asked for
    started: float = field(default_factory=time.monotonic)
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    first_token: float | None = None  # of the first call to write anything
    elapsed: float = 0.0  # of the whole turn's answering
    error: ModelError | None = None
    reply_ts: str | None = None
    delivered: bool = True  # whether the reply's text fully reached Slack
    tool_calls: list[CallRecord] = field(default_factory=list)  # the calls that ran

    @classmethod
    def excused(cls, model: str, error: ModelError, reply_ts: str | None) -> Answer:
        """A note given instead of a model call: free (not unpriced), and an error."""
        free = TokenUsage(0, 0, 0, cost_usd=Decimal(0))
        return cls(
            asked=model,
            calls=[Call(model, free, estimated=False, streamed=False)],
            error=error,
            reply_ts=reply_ts,
            started=0.0,
        )

    @property
    def model(self) -> str:
        """The model that answered: the last call's, as the endpoint named it."""
        return self.calls[-1].model if self.calls else self.asked

    @property
    def usage(self) -> TokenUsage:
        """The tokens of every call, summed."""
        if len(self.calls) == 1:
            return self.calls[0].usage
        usages = [call.usage for call in self.calls]
        costs = [u.cost_usd for u in usages if u.cost_usd is not None]
        return TokenUsage(
            prompt=sum(u.prompt for u in usages),
            completion=sum(u.completion for u in usages),
            total=sum(u.total for u in usages),
            cached=_sum_known(u.cached for u in usages),
            reasoning=_sum_known(u.reasoning for u in usages),
            cost_usd=sum(costs, Decimal(0)) if len(costs) == len(usages) else None,
        )

    @property
    def estimated(self) -> bool:
        """Whether any call's usage is our estimate."""
        return any(call.estimated for call in self.calls)

    @property
    def streamed(self) -> bool:
        """Whether the endpoint streamed (its first call; True before any call)."""
        return self.calls[0].streamed if self.calls else True

    @property
    def ttft(self) -> float | None:
        """Seconds from the start of answering to the first text."""
        return None if self.first_token is None else self.first_token - self.started


def _sum_known(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


class Answerer:
    """Asks the model and streams its answer into the turn's reply, running the tools it asks
    for in between (when a `ToolRunner` is given and the turn may use tools)."""

    def __init__(self, chat_model: ChatModel, tools: ToolRunner | None = None) -> None:
        self._chat_model = chat_model
        self._tools = tools

    def answer(
        self,
        job: TurnJob,
        context: Context,
        sink: ReplySink,
        *,
        tools: bool = True,
        note: str | None = None,
    ) -> Answer:
        """Call the model with no transaction open and stream its answer into `sink`; a
        `note` (one line about what the model was not shown) ends the reply."""
        sink.waiting()
        answer = Answer(asked=job.choice.model)
        try:
            if context.notes:
                # Files that could not be read, or only in part: said before the answer.
                sink.write("_" + " ".join(context.notes) + "_\n\n")
            if self._tools is not None and tools:
                self._loop(answer, context, sink, self._tools)
            else:
                self._call(answer, context, sink, context.messages)
            if note and answer.error is None and answer.text:
                sink.write(f"\n\n_{note}_")  # in the reply, not in the stored answer
        except Exception as exc:
            # Between model calls (a tool round, a note): the reply is still closed below
            # and the calls made so far are still recorded.
            log.exception("turn failed between model calls")
            answer.error = answer.error or ModelError(
                "Something went wrong on our side while writing the answer.",
                retryable=True,
                detail=f"{type(exc).__name__}: {exc}",
            )
        answer.elapsed = time.monotonic() - answer.started
        if answer.error is None and not answer.text:
            answer.error = ModelError(
                "The model sent back an empty answer; another model may do better.",
                retryable=True,
            )
        answer.reply_ts = _close_reply(sink, answer.error)
        answer.delivered = sink.delivered
        if context.first_question and job.work.channel_id.startswith("D"):
            # A new conversation in the Messages tab is named after its first question, from
            # our own copy, after the answer: no second model call, nothing before the answer.
            sink.title(job.prompt)
        return answer

    def _loop(self, answer: Answer, context: Context, sink: ReplySink, runner: ToolRunner) -> None:
        """Model calls and tool calls in turn until the model answers in words."""
        limits = runner.limits
        deadline = answer.started + limits.turn_timeout
        offered: tuple[OfferedTool, ...] = runner.offered(answer.asked)
        messages = with_tools_note(context.messages) if offered else list(context.messages)
        made = 0
        while True:
            before = len(answer.text)
            completion = self._call(answer, context, sink, messages, offered)
            if offered and made == 0 and _refused_tools(answer, completion, before):
                # The endpoint will not take `tools` (HTTP 400 before any text): ask again
                # without them; if that works, this model goes without tools for a while.
                # Only the first call can say so: a 400 after tool rounds (their results
                # outgrew the context) is an error of its own, not a refusal of tools.
                answer.error, offered = None, ()
                answer.calls.pop()
                messages = list(context.messages)
                completion = self._call(answer, context, sink, messages, offered)
                if answer.error is None:
                    log.info("%s refused tools; asking it without them", answer.asked)
                    runner.refused(answer.asked)
            calls = completion.tool_calls if completion is not None else ()
            if answer.error is not None or not calls or not offered:
                return
            results = runner.run(
                calls, offered, sink, allowed=limits.max_calls - made, deadline=deadline
            )
            answer.tool_calls.extend(
                r.record for r in results if r.record.outcome is not Outcome.SKIPPED
            )
            made += len(calls)  # asked-for calls count even when not run: the loop must end
            messages += round_messages(answer.text[before:], calls, results)
            if made >= limits.max_calls or time.monotonic() >= deadline:
                offered = ()  # one last call, without tools: the model must answer now

    def _call(
        self,
        answer: Answer,
        context: Context,
        sink: ReplySink,
        messages: list[ChatMessage],
        offered: tuple[OfferedTool, ...] = (),
    ) -> Completion | None:
        """One model call: its text into `sink` and `answer`, its usage into `answer`."""
        model = answer.asked
        parts: list[str] = []
        stream: ChatStream | None = None
        try:
            stream = self._chat_model.stream(
                model, messages, tools=tool_specs(offered) if offered else None
            )
            for delta in stream:
                if answer.first_token is None:
                    answer.first_token = time.monotonic()
                parts.append(delta)
                sink.write(delta)
            if stream.completion.finish_reason == "length":
                sink.write(CUT_OFF_NOTE)
        except ModelError as exc:
            answer.error = exc
            log.warning("model call failed for %s: %s", model, redact(exc.detail))
        except Exception as exc:
            # Whatever broke (Slack refusing our text, a bug), the turn is still accounted for.
            log.exception("turn failed while the answer was being written")
            answer.error = ModelError(
                "Something went wrong on our side while writing the answer.",
                retryable=True,
                detail=f"{type(exc).__name__}: {exc}",
            )
        text = "".join(parts)
        answer.text += text
        completion = stream.completion if stream is not None else None
        if not answer.calls and answer.first_token is None and completion is not None:
            answer.first_token = completion.first_chunk  # a first call that only asked for tools
        usage = completion.usage if completion else None
        estimated = usage is None
        if usage is None:
            if answer.error is not None and not text:
                # Refused before any text came (bad key, rate limit, timeout): nothing to bill,
                # so it cost nothing, whether the model has a price or not: an error, never
                # "unpriced" (which says a price is missing).
                usage = TokenUsage(prompt=0, completion=0, total=0, cost_usd=Decimal(0))
                estimated = False
            else:
                prompt_tokens = context.prompt_tokens
                completion_tokens = estimate_tokens(text) if text else 0
                usage = TokenUsage(
                    prompt_tokens, completion_tokens, prompt_tokens + completion_tokens
                )
        answer.calls.append(
            Call(
                model=(completion.model if completion else "") or model,
                usage=usage,
                estimated=estimated,
                streamed=completion.streamed if completion else True,
            )
        )
        return completion

    @staticmethod
    def excuse(
        job: TurnJob, sink: ReplySink, note: str, *, detail: str, private: bool = False
    ) -> Answer:
        """Answer with `note` instead of the model (to the author only when `private`)."""
        reply_ts = None
        try:
            if private:
                sink.refuse(note)
            else:
                reply_ts = sink.notice(note)
        except Exception:
            log.exception("could not post a note in Slack")
        error = ModelError(note, retryable=False, detail=detail)
        return Answer.excused(job.choice.model, error, reply_ts)


def _refused_tools(answer: Answer, completion: Completion | None, before: int) -> bool:
    """Whether the last call failed as an endpoint refusing `tools` does: HTTP 400, no text."""
    error = answer.error
    return (
        error is not None
        and error.detail.startswith("HTTP 400")
        and len(answer.text) == before
        and not (completion is not None and completion.tool_calls)
    )


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
