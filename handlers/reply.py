"""A reply that grows in a Slack thread while the model writes it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.conversations.service import ReplyTarget
from handlers.feedback_blocks import feedback_blocks

log = logging.getLogger(__name__)

# Slack takes at most 12,000 characters of markdown_text per call; a longer reply goes on
# in a further message rather than being cut.
MESSAGE_LIMIT = 12_000
# appendStream is rate tier 4 (about 100 calls a minute per workspace): after the first text,
# which is sent at once, send at most one batch a second.
FLUSH_INTERVAL = 1.0
FLUSH_SIZE = 4_000
# A model that starts answering at once needs no "thinking" status: it would cost one more
# Web API call per reply for nothing.
STATUS_DELAY = 0.3
# Shown in turn while the model thinks; Slack clears the status when the reply arrives.
LOADING_MESSAGES = ["Reading the thread…", "Thinking it over…", "Writing an answer…"]
# Slack's limit for a thread title is not documented; Slack shows about this much.
TITLE_LIMIT = 60
# Slack errors that mean a stream is already closed: nothing left to stop.
_NOT_STREAMING = ("message_not_in_streaming_state", "message_not_found", "cant_update_message")


class SlackReplies:
    """Makes the reply writer of each turn (the pipeline's `SinkFactory`)."""

    def __init__(self, client_for: Callable[[str], WebClient]) -> None:
        self._client_for = client_for  # a workspace's id -> a client with its bot token
        # The "thinking" delay is waited out on a few reused threads: a `threading.Timer` per
        # reply made each reply 1.3 ms slower on bench/conversations.py (median 5.8-9.4 ms
        # against 4.5-7.2 ms), the cost of starting a thread under load. When every waiter is
        # busy, a status is only shown late.
        self._status_waits = ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="switchboard-status"
        )

    def __call__(self, target: ReplyTarget, on_start: Callable[[str], None]) -> SlackReplyWriter:
        return SlackReplyWriter(
            self._client_for(target.team_id),
            target,
            on_start=on_start,
            status_waits=self._status_waits,
        )

    def close(self) -> None:
        """Let go of the waiting threads."""
        self._status_waits.shutdown(wait=False, cancel_futures=True)


class SlackReplyWriter:
    """`ReplySink` on Slack's chat streaming API, falling back to messages updated in place.

    Every stream it starts it stops, whatever fails: an `appendStream` refused mid-reply stops
    the stream and goes on in a new message.
    """

    def __init__(
        self,
        client: WebClient,
        target: ReplyTarget,
        *,
        on_start: Callable[[str], None] = lambda ts: None,
        status_waits: Executor | None = None,
    ) -> None:
        self._client = client
        self._channel = target.channel_id
        self._thread_ts = target.thread_ts
        self._team_id = target.team_id
        self._user_id = target.user_id
        self._on_start = on_start
        self._status_waits = status_waits
        self._streaming = True
        self._pending = ""  # written by the model, not yet sent
        self._sent = ""  # sent in the current message
        self._ts: str | None = None  # the current message
        self._first_ts: str | None = None
        self._last_flush = 0.0
        self._closed = False  # interrupted: later writes go nowhere
        self._lock = threading.Lock()  # the status, the writer and `interrupt` race
        self._answered = threading.Event()  # text arrived or the reply ended: no status

    @property
    def closed(self) -> bool:
        """Whether the reply is complete (finished, failed or interrupted)."""
        return self._closed

    def waiting(self) -> None:
        """Show a status in the thread unless the first text arrives very soon."""
        if self._status_waits is not None:
            self._status_waits.submit(self._set_status, time.monotonic() + STATUS_DELAY)

    def _set_status(self, due: float) -> None:
        if self._answered.wait(due - time.monotonic()):
            return
        with self._lock:
            if self._ts is not None or self._first_ts is not None or self._closed:
                return
            try:
                self._client.assistant_threads_setStatus(
                    channel_id=self._channel,
                    thread_ts=self._thread_ts,
                    status="is thinking…",
                    loading_messages=LOADING_MESSAGES,
                )
            except SlackApiError as exc:
                # Apps without the assistant feature cannot set a status; the reply still comes.
                log.debug("no thread status: %s", _error(exc))
            except Exception:  # a cosmetic call on a side thread must never take anything down
                log.warning("setting the thread status failed", exc_info=True)

    def write(self, text: str) -> None:
        """Buffer text; send it when the reply starts, or when enough time or text piled up."""
        with self._lock:
            if self._closed:
                return
            self._pending += text
            due = time.monotonic() - self._last_flush >= FLUSH_INTERVAL
            if self._ts is None or due or len(self._pending) >= FLUSH_SIZE:
                self._flush()

    def finish(self) -> str | None:
        """Send what is left and close the message, with the feedback buttons under it."""
        return self._end(feedback=True)

    def fail(self, message: str) -> str | None:
        """Keep what was written, and say in plain words what went wrong (no buttons)."""
        with self._lock:
            if not self._closed:
                started = self._sent or self._pending or self._first_ts
                self._pending += f"\n\n:warning: {message}" if started else message
        return self._end(feedback=False)

    def _end(self, *, feedback: bool) -> str | None:
        self._answered.set()
        with self._lock:
            if not self._closed:
                # The last words ride along with chat.stopStream: one call fewer. So do the
                # buttons: no Web API call of their own.
                self._flush(keep_last=True)
                last, self._pending = self._pending, ""
                blocks = None
                if feedback and self._streaming and self._ts is not None:
                    later = self._ts != self._first_ts
                    blocks = feedback_blocks(self._first_ts if later else None)
                self._close(last, blocks=blocks)
                self._closed = True
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
        title = " ".join(text.split())
        if len(title) > TITLE_LIMIT:
            title = title[: TITLE_LIMIT - 1].rsplit(" ", 1)[0] + "…"
        try:
            self._client.assistant_threads_setTitle(
                channel_id=self._channel, thread_ts=self._thread_ts, title=title or "Question"
            )
        except (SlackApiError, OSError) as exc:
            log.debug("no thread title: %s", _error(exc))

    def close_interrupted(self, reply_ts: str, note: str) -> None:
        """Stop a stream an earlier attempt left open, with `note` at its end."""
        self._stop_stream(reply_ts, note)

    def interrupt(self, note: str) -> None:
        """End the reply now with `note`; whatever is written afterwards is dropped."""
        self._answered.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._ts is None:
                return
            if self._streaming:
                self._stop_stream(self._ts, f"{self._pending}\n\n{note}")
            else:
                self._sent += f"{self._pending}\n\n{note}"
                self._update()

    def _flush(self, *, keep_last: bool = False) -> None:
        """Send the pending text, closing messages that reach the limit.

        With `keep_last`, text that fits in the open message stays pending for `_close`.
        """
        while len(self._sent) + len(self._pending) > MESSAGE_LIMIT:
            room = MESSAGE_LIMIT - len(self._sent)
            cut = _break_before(self._pending, room)
            self._send(self._pending[:cut])
            self._pending = self._pending[cut:]
            self._close()
        if self._pending and not (keep_last and self._ts is not None and self._streaming):
            self._send(self._pending)
            self._pending = ""
        self._last_flush = time.monotonic()

    def _send(self, text: str) -> None:
        if self._ts is None:
            self._answered.set()  # the text is about to show; no status needed
            self._ts = self._start(text)
            self._sent = text
            if self._first_ts is None:
                self._first_ts = self._ts
            # Each message, not only the first: the open one is what a successor must close.
            self._on_start(self._ts)
        elif self._streaming:
            try:
                self._client.chat_appendStream(
                    channel=self._channel, ts=self._ts, markdown_text=text
                )
                self._sent += text
            except (SlackApiError, OSError) as exc:
                # Stop the stream, then go on in a message of its own, updated in place.
                log.info("appendStream failed (%s); going on in a new message", _error(exc))
                self._stop_stream(self._ts, None)
                self._streaming = False
                self._ts = None
                self._send(text)
        else:
            self._sent += text
            self._update()

    def _start(self, text: str) -> str:
        if self._streaming:
            try:
                response = self._client.chat_startStream(
                    channel=self._channel,
                    thread_ts=self._thread_ts,
                    recipient_team_id=self._team_id,
                    recipient_user_id=self._user_id,
                    markdown_text=text,
                )
                return str(response["ts"])
            except SlackApiError as exc:
                log.info("startStream refused (%s); posting and updating instead", _error(exc))
                self._streaming = False
        response = self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, markdown_text=text
        )
        return str(response["ts"])

    def _update(self) -> None:
        assert self._ts is not None
        try:
            self._client.chat_update(channel=self._channel, ts=self._ts, markdown_text=self._sent)
        except SlackApiError as exc:
            log.warning("chat.update failed: %s", _error(exc))

    def _close(self, last: str = "", *, blocks: list[dict[str, Any]] | None = None) -> None:
        """Close the open message; `last` and `blocks` ride along with chat.stopStream."""
        if self._ts is not None and self._streaming:
            if not self._stop_stream(self._ts, last or None, blocks=blocks) and last:
                self._sent += last
                self._update()
        elif self._ts is not None and last:
            self._sent += last
            self._update()
        self._ts = None
        self._sent = ""

    def _stop_stream(
        self, ts: str, text: str | None, *, blocks: list[dict[str, Any]] | None = None
    ) -> bool:
        """chat.stopStream; whether the stream took `text` (a stopped one cannot)."""
        try:
            self._client.chat_stopStream(
                channel=self._channel, ts=ts, markdown_text=text or None, blocks=blocks
            )
            return True
        except SlackApiError as exc:
            level = logging.DEBUG if _error(exc) in _NOT_STREAMING else logging.WARNING
            log.log(level, "stopStream failed: %s", _error(exc))
        except OSError as exc:
            log.warning("stopStream failed: %s", exc)
        return False


def _break_before(text: str, limit: int) -> int:
    """Where to cut `text` at or before `limit`: a paragraph, a line, a word, or hard."""
    if len(text) <= limit:
        return len(text)
    for separator in ("\n\n", "\n", " "):
        at = text.rfind(separator, limit // 2, limit)
        if at > 0:
            return at + len(separator)
    return limit


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", exc))
    return str(exc)
