"""A conversation turn: record the message, ask the model, stream the answer, account for it."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.context import Turn, build_context, estimate_tokens, strip_mentions
from bot.llm.port import ChatMessage, ChatModel, ChatStream, ModelError, TokenUsage
from bot.llm.pricing import cost_usd
from bot.members.directory import Member, UserDirectory
from bot.model_choice.chain import (
    CatalogueUnavailable,
    Choice,
    ModelChooser,
    UnknownModel,
    parse_inline_override,
    parse_thread_command,
)
from db import queries
from db.models import Conversation, Message

log = logging.getLogger(__name__)
_SECRET = re.compile(r"\b(sk|xox[abpr]|xapp)-[A-Za-z0-9_*\-]{4,}")


def redact(text: str) -> str:
    """The text with anything shaped like an API key or Slack token blanked out."""
    return _SECRET.sub("[redacted]", text)


MAX_PROMPT_CHARS = 40_000


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

    def notice(self, text: str) -> None:
        """Post a short message for everyone in the thread (confirmations)."""

    def refuse(self, text: str) -> None:
        """Tell only the person who wrote why their message was not answered."""


@dataclass(frozen=True)
class TurnOutcome:
    """What became of one incoming message."""

    status: str  # "answered", "failed", "duplicate", "ignored", "refused", "model_set"
    model: str | None = None
    response_id: int | None = None


@dataclass
class _Prepared:
    conversation_id: int
    user_row_id: int
    message_id: int
    query_size: int
    choice: Choice
    context: list[ChatMessage]


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
    ) -> None:
        self._sessions = sessions
        self._users = users
        self._models = models
        self._chat_model = chat_model
        self._system_prompt = system_prompt
        self._max_context_tokens = max_context_tokens

    def handle(
        self, message: IncomingMessage, sink: ReplySink, *, override: str | None = None
    ) -> TurnOutcome:
        """Answer `message` once, however often it is delivered.

        The bot answers DMs, mentions, and replies in the threads it is part of.
        """
        thread = self._existing_thread(message)
        if thread is None and not (message.is_dm or message.mentions_bot):
            return TurnOutcome("ignored")
        text = strip_mentions(message.text, message.bot_user_id)
        new_default = parse_thread_command(text)
        inline, text = parse_inline_override(text)
        if not text and new_default is None:
            sink.refuse("Ask me something after the mention, for example `@Switchboard hello`.")
            return TurnOutcome("refused")
        if len(text) > MAX_PROMPT_CHARS:
            sink.refuse(
                f"That message is {len(text):,} characters long; I take at most "
                f"{MAX_PROMPT_CHARS:,}. Attach less text, or split it over several messages."
            )
            return TurnOutcome("refused")
        try:
            requested = new_default or inline or override
            model = self._models.catalogue.resolve(requested) if requested else None
        except (UnknownModel, CatalogueUnavailable) as exc:
            sink.refuse(str(exc))
            return TurnOutcome("refused")
        if new_default is not None:
            return self._set_conversation_model(message, thread, model or new_default, sink)
        member = self._users.member(message.team_id, message.user_id)
        prepared = self._prepare(message, thread, text, member, override=model)
        if prepared is None:
            return TurnOutcome("duplicate")
        return self._answer(message, prepared, sink)

    def _existing_thread(self, message: IncomingMessage) -> queries.Thread | None:
        """The conversation of the thread `message` replies in, if there is one."""
        if message.thread_ts is None:
            return None
        with self._sessions() as session:
            return queries.get_thread(
                session, message.team_id, message.channel_id, message.thread_ts
            )

    def _prepare(
        self,
        message: IncomingMessage,
        thread: queries.Thread | None,
        text: str,
        member: Member,
        *,
        override: str | None,
    ) -> _Prepared | None:
        """Record the message and read the context, in one short transaction."""
        with self._sessions.begin() as session:
            conversation_id, default_model, is_new = self._conversation(
                session, message, thread, member.id, title=text
            )
            message_id = queries.add_message_once(
                session,
                conversation_id=conversation_id,
                user_id=member.id,
                role="user",
                content=text,
                slack_ts=message.ts,
                model=override,
            )
            if message_id is None:
                # Retried or doubly delivered: whoever stored it first answers it.
                return None
            if override is None:
                override = self._models.take_pending(
                    session,
                    team_id=message.team_id,
                    channel_id=message.channel_id,
                    slack_user_id=message.user_id,
                )
                if override is not None:
                    session.get_one(Message, message_id).model = override
            if is_new:
                turns = [Turn("user", text, member.name)]
            else:
                turns = [
                    Turn(said.role, said.content, said.author)
                    for said in queries.thread_history(session, conversation_id)
                ]
            return _Prepared(
                conversation_id=conversation_id,
                user_row_id=member.id,
                message_id=message_id,
                query_size=len(text),
                choice=self._models.for_turn(default_model, override),
                context=build_context(
                    self._system_prompt, turns, max_tokens=self._max_context_tokens
                ),
            )

    def _conversation(
        self,
        session: Session,
        message: IncomingMessage,
        thread: queries.Thread | None,
        user_row_id: int,
        *,
        title: str,
    ) -> tuple[int, str, bool]:
        """The thread's conversation (id, default model, whether it was created just now)."""
        if thread is not None:
            return thread.id, thread.default_model, False
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
            return created.id, created.default_model, True
        # Someone else (a retry, another process) created it a moment ago.
        found = queries.get_thread(
            session, message.team_id, message.channel_id, message.conversation_ts
        )
        assert found is not None
        return found.id, found.default_model, False

    def _answer(
        self, message: IncomingMessage, prepared: _Prepared, sink: ReplySink
    ) -> TurnOutcome:
        """Call the model with no transaction open, then record the reply and its accounting."""
        sink.waiting()
        started = time.monotonic()
        first_token: float | None = None
        parts: list[str] = []
        error: ModelError | None = None
        stream: ChatStream | None = None
        try:
            stream = self._chat_model.stream(prepared.choice.model, prepared.context)
            for delta in stream:
                if first_token is None:
                    first_token = time.monotonic()
                parts.append(delta)
                sink.write(delta)
            if stream.completion.finish_reason == "length":
                sink.write("\n\n_(Cut off: the model reached its length limit.)_")
        except ModelError as exc:
            error = exc
            log.warning("model call failed for %s: %s", prepared.choice.model, redact(exc.detail))
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
                "The model sent back an empty answer. Try again, or pick another model.",
                retryable=True,
            )
        reply_ts = self._close_reply(sink, error)
        completion = stream.completion if stream is not None else None
        model_used = (completion.model if completion else "") or prepared.choice.model
        usage = completion.usage if completion else None
        response_id = self._record(
            message,
            prepared,
            reply=reply,
            reply_ts=reply_ts,
            model_used=model_used,
            usage=usage,
            elapsed=elapsed,
            ttft=None if first_token is None else first_token - started,
            error=error,
        )
        status = "failed" if error else "answered"
        return TurnOutcome(status, model=model_used, response_id=response_id)

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

    def _record(
        self,
        message: IncomingMessage,
        prepared: _Prepared,
        *,
        reply: str,
        reply_ts: str | None,
        model_used: str,
        usage: TokenUsage | None,
        elapsed: float,
        ttft: float | None,
        error: ModelError | None,
    ) -> int:
        estimated = usage is None
        provider = self._chat_model.provider
        cost: Decimal | None = None
        if usage is None and error is not None and not reply:
            # Refused before any text came (bad key, rate limit, timeout): nothing to bill.
            usage = TokenUsage(prompt=0, completion=0, total=0)
        elif usage is None:
            prompt = sum(estimate_tokens(m["content"]) for m in prepared.context)
            completion = estimate_tokens(reply) if reply else 0
            usage = TokenUsage(prompt=prompt, completion=completion, total=prompt + completion)
            cost = cost_usd(model_used, provider, usage)
        else:
            cost = cost_usd(model_used, provider, usage)
        with self._sessions.begin() as session:
            reply_id = None
            if reply:
                reply_id = queries.add_message_once(
                    session,
                    conversation_id=prepared.conversation_id,
                    user_id=None,
                    role="assistant",
                    content=reply,
                    slack_ts=reply_ts,
                    model=model_used,
                )
            return queries.add_response(
                session,
                message_id=reply_id,
                team_id=message.team_id,
                user_id=prepared.user_row_id,
                conversation_id=prepared.conversation_id,
                channel_id=message.channel_id,
                model_used=model_used,
                provider=provider,
                tokens_prompt=usage.prompt,
                tokens_completion=usage.completion,
                tokens_total=usage.total,
                tokens_cached=usage.cached,
                tokens_reasoning=usage.reasoning,
                tokens_estimated=estimated,
                completion_time_ms=round(elapsed * 1000),
                time_to_first_token_ms=None if ttft is None else round(ttft * 1000),
                cost_usd=cost,
                is_streaming=True,
                query_size=prepared.query_size,
                response_size=len(reply),
                status="error" if error else "ok",
                error=redact(error.detail)[:2000] if error else None,
            )

    def _set_conversation_model(
        self, message: IncomingMessage, thread: queries.Thread | None, model: str, sink: ReplySink
    ) -> TurnOutcome:
        """`model NAME` in a thread: change that conversation's default, not sent to the model."""
        member = self._users.member(message.team_id, message.user_id)
        with self._sessions.begin() as session:
            conversation_id, _, _ = self._conversation(
                session, message, thread, member.id, title=f"model {model}"
            )
            # Record the command too, so a retried delivery does not confirm twice.
            stored = queries.add_message_once(
                session,
                conversation_id=conversation_id,
                user_id=member.id,
                role="system",
                content=f"{member.name} set this conversation's model to {model}.",
                slack_ts=message.ts,
            )
            if stored is None:
                return TurnOutcome("duplicate")
            session.get_one(Conversation, conversation_id).default_model = model
        sink.notice(f"From now on, `{model}` answers in this thread (set by <@{message.user_id}>).")
        return TurnOutcome("model_set", model=model)
