"""A reply that grows in a Slack thread while the model writes it.

Each message of a reply streams through slack_sdk's `ChatStream` (`WebClient.chat_stream()`),
which starts, appends to and stops it; the model's Markdown goes through `markdown.py` on its
way, so that Slack draws it (tables, headings). What this module adds is what that helper lacks:
sending the first text at once and the rest about once a second, going on in a further
message past 12,000 characters, the feedback buttons on the final stop, a message updated
in place when streaming is refused, the waiting status, titles, interruption notes, and an
end Slack shows as finished whatever fails (see `_end_message`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.messages.chunk import TaskUpdateChunk
from slack_sdk.web.chat_stream import ChatStream

from bot.conversations.service import ReplyTarget
from bot.conversations.turn import TaskCard
from bot.slack.assistant import set_status, set_title
from bot.slack.feedback_blocks import feedback_blocks
from bot.slack.markdown import SlackMarkdown, Table
from bot.slack.pacing import AppendPace
from bot.slack.stops import STOP_RETRIES, error_code, stop_helper, stop_stream

log = logging.getLogger(__name__)

# The WebClient of a workspace, by team id.
ClientFor = Callable[[str], WebClient]

# Slack takes at most 12,000 characters of markdown_text per call; a longer reply goes on
# in a further message rather than being cut.
MESSAGE_LIMIT = 12_000
# appendStream is rate tier 4 (about 100 calls a minute per workspace): after the first text,
# which is sent at once, send at most one batch a second, less often while other replies
# stream in the workspace (`bot.slack.pacing`). ChatStream batches by size only
# (`buffer_size`, 256 characters by default), so the writer keeps its own batch and hands the
# helper whole batches (buffer_size=1). Measured on the fake Slack (2026-12-07): with the
# default, a 2,000-character answer written at once took 8 calls instead of 2, the first text
# of a model writing 200 characters a second showed after 1.31 s instead of at once, and one
# writing 1,000 a second made 4 calls a second (16 for 4,000 characters, against 6).
FLUSH_SIZE = 4_000
# A model that starts answering at once needs no "thinking" status: it would cost one more
# Web API call per reply for nothing.
STATUS_DELAY = 0.3
# Slack shows at most 256 characters of a task card's details and output.
TASK_TEXT_LIMIT = 256
# Posted at the end of a reply some of whose text Slack would not take.
LOST_NOTE = "_(Part of this answer could not be shown.)_"


class SlackReplies:
    """Makes the reply writer of each turn (the pipeline's `SinkFactory`)."""

    def __init__(self, client_for: ClientFor) -> None:
        self._client_for = client_for
        # The "thinking" delay is waited out on a few reused threads: a `threading.Timer` per
        # reply made each reply 1.3 ms slower on bench/conversations.py (median 5.8-9.4 ms
        # against 4.5-7.2 ms), the cost of starting a thread under load. When every waiter is
        # busy, a status is only shown late.
        self._status_waits = ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="switchboard-status"
        )
        self._pace = AppendPace()

    def __call__(self, target: ReplyTarget, on_start: Callable[[str], None]) -> SlackReplyWriter:
        return SlackReplyWriter(
            self._client_for(target.team_id),
            target,
            on_start=on_start,
            status_waits=self._status_waits,
            pace=self._pace,
        )

    def close(self) -> None:
        """Let go of the waiting threads."""
        self._status_waits.shutdown(wait=False, cancel_futures=True)


class SlackReplyWriter:
    """`ReplySink` on Slack's chat streaming API, falling back to messages updated in place.

    Every stream it starts it stops, whatever fails: an `appendStream` refused mid-reply stops
    the stream and goes on in a new message; a stop refused for good is replaced by
    `chat.update` of the message. Text Slack takes in no way makes `delivered` false.
    """

    def __init__(
        self,
        client: WebClient,
        target: ReplyTarget,
        *,
        on_start: Callable[[str], None] = lambda ts: None,
        status_waits: Executor | None = None,
        pace: AppendPace | None = None,
    ) -> None:
        self._client = client
        self._channel = target.channel_id
        self._thread_ts = target.thread_ts
        self._team_id = target.team_id
        self._user_id = target.user_id
        self._on_start = on_start
        self._status_waits = status_waits
        self._pace = pace if pace is not None else AppendPace()
        self._streaming = True  # until Slack refuses a stream: then messages updated in place
        self._pending = ""  # written by the model, not yet sent
        # The open message: its ts, its stream (None when updated in place), the text it
        # should show and the text Slack took (they differ after a refused update).
        self._ts: str | None = None
        self._stream: ChatStream | None = None
        self._text = ""
        self._shown = ""
        self._first_ts: str | None = None
        self._last_flush = 0.0
        self._lost = False  # some text never reached Slack
        self._closed = False  # finished, failed or interrupted: later writes go nowhere
        self._lock = threading.Lock()  # the status, the writer and `interrupt` race
        self._answered = threading.Event()  # text arrived or the reply ended: no status
        self._markdown = SlackMarkdown()  # the model's Markdown, as Slack draws it

    @property
    def closed(self) -> bool:
        """Whether the reply is complete (finished, failed or interrupted)."""
        return self._closed

    @property
    def delivered(self) -> bool:
        """Whether Slack shows all the text written (read it once the reply is closed)."""
        return not self._lost and not self._pending

    def waiting(self, status: str | None = None) -> None:
        """Show a status in the thread: `status` at once, else "is thinking…" unless the
        first text arrives very soon."""
        if self._status_waits is not None:
            due = time.monotonic() + (0.0 if status else STATUS_DELAY)
            self._status_waits.submit(self._set_status, due, status)

    def _set_status(self, due: float, status: str | None = None) -> None:
        if self._answered.wait(due - time.monotonic()):
            return
        with self._lock:
            if self._ts is None and self._first_ts is None and not self._closed:
                set_status(self._client, self._channel, self._thread_ts, status)

    def write(self, text: str) -> None:
        """Buffer text; send it when the reply starts, or when enough time or text piled up."""
        with self._lock:
            if self._closed:
                return
            text = self._markdown.feed(text)
            if not text:
                return  # held back (a heading or table not yet complete)
            self._pending += text
            due = self._pace.due(self._team_id, self._last_flush)
            if self._ts is None or due or len(self._pending) >= FLUSH_SIZE:
                self._flush()

    def task(self, card: TaskCard) -> None:
        """A task card (`task_update` chunk) in the streamed reply, after the text so far.

        A card in progress also says in the thread's status which tool runs. Best effort: a
        reply that could not stream shows no cards, and a refused card loses nothing else.
        """
        if card.status == "in_progress":
            self._status_now(f"is using {card.title}…")
        chunk = TaskUpdateChunk(
            id=card.id,
            title=card.title[:TASK_TEXT_LIMIT],
            status=card.status,
            details=card.details[:TASK_TEXT_LIMIT] if card.details else None,
            output=card.output[:TASK_TEXT_LIMIT] if card.output else None,
        )
        with self._lock:
            if self._closed or not self._streaming:
                return
            try:
                if self._pending:
                    self._flush()  # the text written so far comes before the card
                if self._ts is None:
                    self._answered.set()
                    opened = self._open("", chunks=[chunk])
                    if self._first_ts is None:
                        self._first_ts = opened
                    self._on_start(opened)
                elif self._stream is not None:
                    self._stream.append(chunks=[chunk])
            except (SlackApiError, OSError) as exc:
                # Cosmetic: the answer's text (written again by `finish`) still comes.
                log.info("a task card was refused (%s)", error_code(exc))

    def _status_now(self, status: str) -> None:
        with self._lock:
            if self._closed:  # a late card must not leave a status nothing will clear
                return
        set_status(self._client, self._channel, self._thread_ts, status)

    def finish(self) -> str | None:
        """Send what is left and close the message, with the feedback buttons under it."""
        return self._end(feedback=True)

    def fail(self, message: str) -> str | None:
        """Keep what was written, and say in plain words what went wrong (no buttons)."""
        with self._lock:
            if not self._closed:
                self._pending += self._markdown.end().as_text()
                started = self._text or self._pending or self._first_ts
                self._pending += f"\n\n:warning: {message}" if started else message
        return self._end(feedback=False)

    def _end(self, *, feedback: bool) -> str | None:
        self._answered.set()
        with self._lock:
            if not self._closed:
                # The last words ride along with chat.stopStream: one call fewer. So do the
                # buttons, and a table that ends the reply: no Web API call of their own.
                tail = self._markdown.end()
                self._pending += tail.text
                table = tail.table if feedback and self._streaming else None
                if tail.table is not None and table is None:
                    self._pending += tail.table.code()
                self._flush(keep_last=True)
                if table is not None and self._ts is None:  # nothing to put it under
                    self._pending, table = table.code(), None
                    self._flush(keep_last=True)
                last, self._pending = self._pending, ""
                self._end_message(last, feedback=feedback, table=table)
                self._closed = True
                self._unpace()
                if self._lost:
                    self._post_lost_note()
        return self._first_ts

    def notice(self, text: str) -> str | None:
        """A short message in the thread; its ts."""
        response = self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, markdown_text=text
        )
        return str(response["ts"])

    def refuse(self, text: str) -> None:
        """A message in the thread only its author sees."""
        self._client.chat_postEphemeral(
            channel=self._channel, user=self._user_id, thread_ts=self._thread_ts, markdown_text=text
        )

    def title(self, text: str) -> None:
        """Name the conversation in the Messages tab after `text` (best effort)."""
        set_title(self._client, self._channel, self._thread_ts, text)

    def close_interrupted(self, reply_ts: str, note: str) -> None:
        """Stop a stream an earlier attempt left open, with `note` at its end."""
        # Its text is not known here, so a stop refused for good cannot be replaced by an
        # update: Slack ends the stream by itself after a while.
        stop_stream(self._client, self._channel, reply_ts, note)

    def interrupt(self, note: str) -> None:
        """End the reply now with `note`; whatever is written afterwards is dropped."""
        self._answered.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._unpace()
            if self._ts is None:
                return
            held = self._markdown.end().as_text()
            last, self._pending = f"{self._pending}{held}\n\n{note}", ""
            if self._stream is None:
                self._text += last
                self._update()
            else:
                # Not retried: the process is stopping, and the turn will be answered again.
                self._stop_directly(last, retries=0)
            self._next_message()

    def _flush(self, *, keep_last: bool = False) -> None:
        """Send the pending text, closing messages that reach the limit.

        With `keep_last`, text that fits in the open message stays pending for `_end_message`.
        """
        while len(self._text) + len(self._pending) > MESSAGE_LIMIT:
            cut = _break_before(self._pending, MESSAGE_LIMIT - len(self._text))
            piece, self._pending = self._pending[:cut], self._pending[cut:]
            if self._ts is None:
                self._send(piece)
                piece = ""
            self._end_message(piece)  # what fills the message rides along with its stop
        if self._pending and not (keep_last and self._stream is not None):
            self._send(self._pending)
            self._pending = ""
        self._last_flush = self._pace.clock()

    def _send(self, text: str) -> None:
        """Add `text` to the open message, or open one with it."""
        if self._ts is None:
            self._answered.set()  # the text is about to show; no status needed
            opened = self._open(text)
            if self._first_ts is None:
                self._first_ts = opened
            # Each message, not only the first: the open one is what a successor must close.
            self._on_start(opened)
        elif self._stream is not None:
            try:
                self._stream.append(markdown_text=text)  # chat.appendStream (buffer_size=1)
                self._text += text
                self._shown += text
            except (SlackApiError, OSError) as exc:
                # Stop the stream, then go on in a message of its own, updated in place.
                log.info("appendStream failed (%s); going on in a new message", error_code(exc))
                self._streaming = False
                self._stop_directly("")
                self._next_message()
                self._send(text)
        else:
            self._text += text
            self._update()

    def _open(self, text: str, *, chunks: list[TaskUpdateChunk] | None = None) -> str:
        """Start a message with `text` (or task `chunks`): a stream, or a plain message when
        streaming is refused."""
        if self._streaming:
            stream = self._client.chat_stream(
                channel=self._channel,
                thread_ts=self._thread_ts,
                recipient_team_id=self._team_id,
                recipient_user_id=self._user_id,
                buffer_size=1,  # the writer batches; each append is one call
                # Each tool call a card of its own, in the order they ran.
                task_display_mode="timeline" if chunks else None,
            )
            try:
                if chunks:
                    stream.append(chunks=chunks)  # chat.startStream with the first card
                else:
                    stream.append(markdown_text=text)  # chat.startStream with the first text
                self._ts, self._stream = str(stream.ts), stream
                self._pace.opened(self._team_id, self)  # one of the workspace's streams
                self._text = self._shown = text
                return self._ts
            except SlackApiError as exc:
                log.info("startStream refused (%s); posting and updating instead", error_code(exc))
                self._streaming = False
                if chunks:
                    raise  # a card cannot be posted as a message; the text that follows can
        response = self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, markdown_text=text
        )
        self._ts, self._stream = str(response["ts"]), None
        self._text = self._shown = text
        return self._ts

    def _update(self) -> bool:
        """Make the open message show its whole text with chat.update; whether Slack took it."""
        assert self._ts is not None
        try:
            self._client.chat_update(channel=self._channel, ts=self._ts, markdown_text=self._text)
        except (SlackApiError, OSError) as exc:
            # A later update sends the whole text again; only the last one's failure loses text.
            log.warning("chat.update failed: %s", error_code(exc))
            return False
        self._shown = self._text
        return True

    def _end_message(
        self, last: str, *, feedback: bool = False, table: Table | None = None
    ) -> None:
        """Close the open message with `last` at its end, and `table` and the buttons under a
        stream (a table Slack refuses goes on as text).

        A stop Slack refuses is retried within its rate tier; when it is refused for good, the
        message is closed by chat.update with its whole text. Text too long for Slack's count
        goes on in a new message. What Slack takes in no way is lost (`delivered`).
        """
        if self._ts is None:
            return  # nothing was opened, and `_flush` leaves nothing pending without a message
        if self._stream is None:  # streaming was refused on the way: no block can go
            self._text += last + (table.code() if table is not None else "")
            if self._text != self._shown:
                self._update()
            self._next_message()
            return
        buttons = self._feedback_blocks() if feedback else []
        blocks = [table.block(), *buttons] if table is not None else buttons
        error = stop_helper(self._stream, last, blocks or None)
        if table is not None and error is not None and error_code(error) != "msg_too_long":
            # Refused (invalid_blocks, say) or never answered: the table goes on as text.
            log.info("stopStream with a table failed (%s); the table as text", error_code(error))
            error = stop_helper(self._stream, table.code(), buttons or None)
            last += table.code()
        elif table is not None and error is not None:
            last += table.code()  # too long with it: the rest goes on in a new message
        if error is not None and error_code(error) == "msg_too_long" and last:
            # Slack counts a text's length its own way (entities, emoji): the writer's count can
            # pass where Slack's does not. Stop without it; it goes on in a new message.
            self._stop_directly("")
            self._next_message()
            self._go_on(last, feedback=feedback)
            return
        self._text += last
        if error is None:
            self._shown = self._text
        else:
            log.warning("stopStream failed (%s); closing with chat.update", error_code(error))
            self._update()
        self._next_message()

    def _stop_directly(self, last: str, *, retries: int = STOP_RETRIES) -> None:
        """Stop the open stream with `last` at its end, else close it with chat.update.

        Not through the helper: after a refused call its buffer still holds that call's text,
        which its stop() would send.
        """
        assert self._ts is not None
        self._text += last
        if stop_stream(self._client, self._channel, self._ts, last, retries=retries) is None:
            self._shown = self._text
        else:
            self._update()

    def _go_on(self, text: str, *, feedback: bool) -> None:
        """Put `text` in a message of its own and close it (the end of a reply)."""
        try:
            self._send(text)
        except (SlackApiError, OSError) as exc:
            log.warning("the rest of a reply could not be posted: %s", error_code(exc))
            self._lost = True
            return
        self._end_message("", feedback=feedback)

    def _next_message(self) -> None:
        """Forget the closed message (noting lost text); the next text opens a new one."""
        if self._text != self._shown:
            self._lost = True
        self._ts, self._stream = None, None
        self._text = self._shown = ""

    def _unpace(self) -> None:
        """The reply has ended: no longer one of the workspace's streaming replies."""
        self._pace.closed(self._team_id, self)

    def _feedback_blocks(self) -> list[dict[str, Any]]:
        later = self._ts != self._first_ts
        return feedback_blocks(self._first_ts if later else None)

    def _post_lost_note(self) -> None:
        try:
            self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, markdown_text=LOST_NOTE
            )
        except (SlackApiError, OSError) as exc:
            log.warning("could not say that part of a reply is missing: %s", error_code(exc))


def _break_before(text: str, limit: int) -> int:
    """Where to cut `text` at or before `limit`: a paragraph, a line, a word, or hard."""
    if len(text) <= limit:
        return len(text)
    for separator in ("\n\n", "\n", " "):
        at = text.rfind(separator, limit // 2, limit)
        if at > 0:
            return at + len(separator)
    return limit
